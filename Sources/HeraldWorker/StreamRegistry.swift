// The open streams of one event loop: who listens on which channel, delivery of formatted
// events with one flush per stream per batch, heartbeats, slow-client eviction and draining.
// Owned by its event loop; every method runs there.
import HeraldProtocol
import Logging
import NIOCore
import SSE

/// One open event stream.
final class Subscriber {
    let id: UInt64
    let channel: Channel
    let requestID: UInt16
    let channels: [String]
    var multiChannel: Bool { channels.count > 1 }
    /// Until the hub's `subscribed` arrives, events are already part of the coming init.
    var awaitingStart = true

    init(id: UInt64, channel: Channel, requestID: UInt16, channels: [String]) {
        self.id = id
        self.channel = channel
        self.requestID = requestID
        self.channels = channels
    }
}

/// The streams on one event loop.
final class StreamRegistry {
    let eventLoop: EventLoop
    let logger: Logger
    private let maxQueuedBytes: Int
    private var streams: [UInt64: Subscriber] = [:]
    private var byChannel: [String: [UInt64: Subscriber]] = [:]
    private var heartbeat: RepeatedTask?
    private(set) var eventsSent: UInt64 = 0
    private(set) var bytesSent: UInt64 = 0
    private(set) var slowClientsDropped: UInt64 = 0

    init(eventLoop: EventLoop, logger: Logger, maxQueuedBytes: Int) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.maxQueuedBytes = maxQueuedBytes
    }

    var count: Int { streams.count }

    /// Open streams per channel.
    var countsByChannel: [String: Int] { byChannel.mapValues(\.count) }

    /// Registers a stream whose prologue was just written.
    func add(_ subscriber: Subscriber) {
        streams[subscriber.id] = subscriber
        for name in subscriber.channels { byChannel[name, default: [:]][subscriber.id] = subscriber }
    }

    /// Forgets a stream (its connection closed). Safe to call twice.
    func remove(_ id: UInt64) {
        guard let subscriber = streams.removeValue(forKey: id) else { return }
        for name in subscriber.channels {
            byChannel[name]?[id] = nil
            if byChannel[name]?.isEmpty == true { byChannel[name] = nil }
        }
    }

    /// The hub answered a stream's subscription: write the missed events and the inits, then go live.
    func start(_ id: UInt64, epoch: Epoch, sequence: UInt64, replay: [FormattedEvent], snapshots: [ChannelSnapshot]) {
        guard let subscriber = streams[id], subscriber.awaitingStart else { return }
        subscriber.awaitingStart = false
        for event in replay {
            write(event.record(requestID: subscriber.requestID, multiChannel: subscriber.multiChannel), to: subscriber)
        }
        for snapshot in snapshots {
            let sse = EventFormatter.initEvent(
                channel: snapshot.channel, state: snapshot.state, sequence: sequence, epoch: epoch,
                multiChannel: subscriber.multiChannel)
            write(FastCGIRecords.stdout(requestID: subscriber.requestID, content: sse), to: subscriber)
        }
        subscriber.channel.flush()
    }

    /// Writes a batch of events to every live stream on their channels, flushing each stream once.
    func deliver(_ events: [FormattedEvent]) {
        var touched: [UInt64: Subscriber] = [:]
        for event in events {
            guard let listeners = byChannel[event.channel] else { continue }
            for subscriber in listeners.values where !subscriber.awaitingStart {
                let bytes = event.record(requestID: subscriber.requestID, multiChannel: subscriber.multiChannel)
                if write(bytes, to: subscriber) { touched[subscriber.id] = subscriber }
            }
        }
        for subscriber in touched.values { subscriber.channel.flush() }
    }

    /// Writes `bytes` unless the stream is too far behind, in which case it is closed.
    @discardableResult
    private func write(_ bytes: ByteBuffer, to subscriber: Subscriber) -> Bool {
        guard subscriber.channel.isWritable else {
            // Past the high-water mark: more than maxQueuedBytes wait for this client.
            slowClientsDropped += 1
            logger.notice(
                "dropping slow client: more than the queued-bytes limit is waiting to be written",
                metadata: [
                    "stream.id": "\(subscriber.id)", "stream.channels": "\(subscriber.channels.joined(separator: ","))",
                    "stream.limit": "\(maxQueuedBytes)",
                ])
            remove(subscriber.id)
            subscriber.channel.close(promise: nil)
            return false
        }
        eventsSent += 1
        bytesSent += UInt64(bytes.readableBytes)
        subscriber.channel.write(bytes, promise: nil)
        return true
    }

    /// Starts the heartbeat: a `: ping` comment on every stream every `interval`.
    func startHeartbeat(every interval: TimeAmount) {
        let registry = NIOLoopBound(self, eventLoop: eventLoop)
        heartbeat = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            registry.value.sendHeartbeat()
        }
    }

    private func sendHeartbeat() {
        var records: [UInt16: ByteBuffer] = [:]
        for subscriber in Array(streams.values) {
            let record =
                records[subscriber.requestID]
                ?? FastCGIRecords.stdout(requestID: subscriber.requestID, content: EventFormatter.ping)
            records[subscriber.requestID] = record
            if write(record, to: subscriber) { subscriber.channel.flush() }
        }
    }

    /// Ends every stream: a `retry` of `retryMilliseconds` plus up to `jitterMilliseconds` so
    /// clients do not come back all at once, then the end of the FastCGI response.
    func drain(retryMilliseconds: Int, jitterMilliseconds: Int) -> EventLoopFuture<Void> {
        heartbeat?.cancel()
        heartbeat = nil
        let subscribers = Array(streams.values)
        // Remove first: ending a stream completes writes at once and would re-enter the registry.
        for subscriber in subscribers { remove(subscriber.id) }
        var closes: [EventLoopFuture<Void>] = []
        for subscriber in subscribers {
            let retry = retryMilliseconds + Int.random(in: 0...max(0, jitterMilliseconds))
            var bytes = ByteBuffer(bytes: SSEEncoder.retry(milliseconds: retry))
            bytes = FastCGIRecords.stdout(requestID: subscriber.requestID, content: bytes)
            var end = FastCGIRecords.end(requestID: subscriber.requestID)
            bytes.writeBuffer(&end)
            let channel = subscriber.channel
            closes.append(channel.writeAndFlush(bytes).flatMap { channel.close() }.recover { _ in })
        }
        return EventLoopFuture.andAllComplete(closes, on: eventLoop)
    }
}
