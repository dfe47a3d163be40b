// The open streams and long polls of one event loop: who listens on which channel, delivery of
// formatted events with one write per stream per batch, heartbeats, slow-client eviction and
// draining. Owned by its event loop; every method runs there.
import HeraldProtocol
import Logging
import NIOCore
import SSE

/// One open event stream or waiting long poll.
final class Subscriber {
    enum Kind {
        /// An SSE stream: prologue written, events follow until the client leaves.
        case stream
        /// A long poll: one JSON answer, then the request ends.
        case poll
    }

    let id: UInt64
    /// Where its bytes go: straight to the socket, or queued in the channel.
    let output: StreamOutput
    var channel: Channel { output.channel }
    let requestID: UInt16
    let channels: [String]
    let kind: Kind
    var multiChannel: Bool { channels.count > 1 }
    /// Until the hub's `subscribed` arrives, events are already part of the coming start.
    var awaitingStart = true
    /// The last sequence this subscriber received: anything not newer is skipped.
    var lastSequence: UInt64 = 0
    /// For a poll: the id to answer with when nothing arrives.
    var resumeID: EventID?
    var timeout: Scheduled<Void>?
    /// Records of the current delivery batch for this stream, sent as one write at its end.
    var staged: ByteBuffer?
    var stagedEvents = 0
    /// Fell behind on state changes only: events are skipped until the socket drains, then a
    /// fresh `init` of every channel catches it up on the same connection.
    var catchingUp = false
    /// The channel's writability as its last `channelWritabilityChanged` said (NIO tells it
    /// inside the write that crosses the high-water mark): a stored Bool for the hot path
    /// instead of a call into the channel per delivery.
    var writable = true

    /// A subscriber writing to `channel`, and straight to its socket `fd` when there is one.
    init(id: UInt64, channel: Channel, fd: Int32? = nil, requestID: UInt16, channels: [String], kind: Kind) {
        self.id = id
        output = StreamOutput(channel: channel, fd: fd)
        self.requestID = requestID
        self.channels = channels
        self.kind = kind
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
    private(set) var slowClientsCaughtUp: UInt64 = 0
    /// Asks the hub for a fresh start of a stream (its channels' inits): set by WorkerCore,
    /// which owns the hub link.
    var restart: ((_ stream: UInt64, _ channels: [String]) -> Void)?

    /// The worker's streams per channel, which the hub hears of (presence).
    let occupancy: OccupancyCounter

    init(
        eventLoop: EventLoop, logger: Logger, maxQueuedBytes: Int, corsOrigin: String,
        occupancy: OccupancyCounter = OccupancyCounter()
    ) {
        self.occupancy = occupancy
        self.eventLoop = eventLoop
        self.logger = logger
        self.maxQueuedBytes = maxQueuedBytes
        self.corsOrigin = corsOrigin
    }

    /// Open streams (long polls not counted).
    var count: Int { streams.values.count { $0.kind == .stream } }

    /// The open stream or waiting poll `id`, if it is still here.
    func subscriber(_ id: UInt64) -> Subscriber? { streams[id] }

    /// Long polls waiting for an event.
    var pollsWaiting: Int { streams.values.count { $0.kind == .poll } }

    /// Open streams per channel.
    var countsByChannel: [String: Int] {
        byChannel.compactMapValues { listeners in
            let count = listeners.values.count { $0.kind == .stream }
            return count == 0 ? nil : count
        }
    }

    /// Registers a stream and writes its `prologue` (headers and `retry`), or registers a poll
    /// (which ends after `pollTimeout`).
    func add(_ subscriber: Subscriber, prologue: ByteBuffer? = nil, pollTimeout: TimeAmount? = nil) {
        streams[subscriber.id] = subscriber
        for name in subscriber.channels { byChannel[name, default: [:]][subscriber.id] = subscriber }
        if subscriber.kind == .stream { occupancy.add(subscriber.channels, by: 1) }
        if let pollTimeout {
            let registry = NIOLoopBound(self, eventLoop: eventLoop)
            let id = subscriber.id
            subscriber.timeout = eventLoop.scheduleTask(in: pollTimeout) {
                guard let subscriber = registry.value.streams[id] else { return }
                registry.value.answerPoll(subscriber, entries: [], epoch: nil)
            }
        }
        // Last: a peer already gone is removed again at once.
        if let prologue { write(prologue, to: subscriber, events: 0) }
    }

    /// Forgets a stream (its connection closed). Safe to call twice.
    func remove(_ id: UInt64) {
        guard let subscriber = streams.removeValue(forKey: id) else { return }
        subscriber.timeout?.cancel()
        if subscriber.kind == .stream { occupancy.add(subscriber.channels, by: -1) }
        for name in subscriber.channels {
            byChannel[name]?[id] = nil
            if byChannel[name]?.isEmpty == true { byChannel[name] = nil }
        }
    }

    /// Every stream waits for a new start (the hub lost or cannot replay what it missed).
    /// Returns the streams to subscribe again.
    func awaitAll() -> [(id: UInt64, channels: [String])] {
        streams.values.map { subscriber in
            subscriber.awaitingStart = true
            return (subscriber.id, subscriber.channels)
        }
    }

    /// The hub answered a subscription: write the missed events and the inits, then go live.
    func start(_ id: UInt64, epoch: Epoch, sequence: UInt64, replay: [FormattedEvent], snapshots: [ChannelSnapshot]) {
        guard let subscriber = streams[id], subscriber.awaitingStart else { return }
        subscriber.awaitingStart = false
        if subscriber.kind == .poll {
            var entries = replay.filter { $0.sequence > subscriber.lastSequence }.map {
                PollEntry(event: $0, multiChannel: subscriber.multiChannel)
            }
            entries += snapshots.map {
                PollEntry(initOf: $0, sequence: sequence, epoch: epoch, multiChannel: subscriber.multiChannel)
            }
            subscriber.lastSequence = max(subscriber.lastSequence, sequence)
            subscriber.resumeID = EventID(epoch: epoch, sequence: subscriber.lastSequence)
            if !entries.isEmpty { answerPoll(subscriber, entries: entries, epoch: epoch) }
            return
        }
        for event in replay where event.sequence > subscriber.lastSequence {
            write(event.record(requestID: subscriber.requestID, multiChannel: subscriber.multiChannel), to: subscriber)
        }
        for snapshot in snapshots {
            let sse = EventFormatter.initEvent(
                channel: snapshot.channel, state: snapshot.state, sequence: sequence, epoch: epoch,
                multiChannel: subscriber.multiChannel)
            write(FastCGIRecords.stdout(requestID: subscriber.requestID, content: sse), to: subscriber)
        }
        subscriber.lastSequence = max(subscriber.lastSequence, sequence)
    }

    /// Writes a batch of events to every live stream on their channels, one write per stream
    /// per batch, and answers the long polls waiting on them.
    func deliver(_ events: [FormattedEvent]) {
        // Streams given records in this batch, written once each at the end (no per-stream
        // hashing or allocation beyond this one array's growth).
        var touched: [Subscriber] = []
        var polls: [UInt64: (Subscriber, [PollEntry])] = [:]
        let single = events.count == 1
        for event in events {
            guard let listeners = byChannel[event.channel] else { continue }
            // The multi-channel variant is formatted at most once per event, and only if needed.
            var multiRecord: ByteBuffer?
            for subscriber in listeners.values
            where !subscriber.awaitingStart && event.sequence > subscriber.lastSequence {
                subscriber.lastSequence = event.sequence
                if subscriber.kind == .poll {
                    polls[subscriber.id, default: (subscriber, [])].1.append(
                        PollEntry(event: event, multiChannel: subscriber.multiChannel))
                    continue
                }
                if subscriber.catchingUp || !subscriber.writable {
                    fellBehind(subscriber, on: event)
                    continue
                }
                let bytes: ByteBuffer
                if subscriber.multiChannel, subscriber.requestID == 1 {
                    if multiRecord == nil { multiRecord = event.multiRecord }
                    bytes = multiRecord!
                } else {
                    bytes = event.record(requestID: subscriber.requestID, multiChannel: subscriber.multiChannel)
                }
                if single {
                    // One event in the batch (the common case at light load): written at once.
                    write(bytes, to: subscriber)
                } else if subscriber.staged == nil {
                    // The shared record itself; copied only if a second one follows.
                    subscriber.staged = bytes
                    subscriber.stagedEvents = 1
                    touched.append(subscriber)
                } else {
                    subscriber.staged!.writeImmutableBuffer(bytes)
                    subscriber.stagedEvents += 1
                }
            }
        }
        for subscriber in touched {
            guard let bytes = subscriber.staged else { continue }
            subscriber.staged = nil
            write(bytes, to: subscriber, events: subscriber.stagedEvents)
        }
        for (subscriber, entries) in polls.values { answerPoll(subscriber, entries: entries, epoch: nil) }
    }

    /// A stream past its queued-bytes bound, `event` not written. A state change (a merge
    /// patch or a replacement) can be made up for by a fresh `init` once the socket drains,
    /// so the stream skips events until then; a plain event cannot, so the stream is closed
    /// (the client resumes from history), also while it is catching up.
    private func fellBehind(_ subscriber: Subscriber, on event: FormattedEvent) {
        guard event.changesState, restart != nil else {
            drop(subscriber)
            return
        }
        guard !subscriber.catchingUp else { return }
        subscriber.catchingUp = true
        slowClientsCaughtUp += 1
        logSlow(subscriber, "slow client: skipping state changes until its socket drains, then a fresh init")
    }

    private func logSlow(_ subscriber: Subscriber, _ message: Logger.Message) {
        logger.notice(
            message,
            metadata: [
                "stream.id": "\(subscriber.id)", "stream.channels": "\(subscriber.channels.joined(separator: ","))",
                "stream.limit": "\(maxQueuedBytes)",
            ])
    }

    /// The stream's writability changed. Once its socket has taken what was queued (below half
    /// the bound again), a catching-up stream asks the hub for its channels' states and goes on
    /// from there.
    func writabilityChanged(_ id: UInt64, writable: Bool) {
        guard let subscriber = streams[id] else { return }
        subscriber.writable = writable
        guard writable, subscriber.catchingUp else { return }
        subscriber.catchingUp = false
        subscriber.awaitingStart = true
        restart?(id, subscriber.channels)
    }

    private func drop(_ subscriber: Subscriber) {
        slowClientsDropped += 1
        logSlow(subscriber, "dropping slow client: more than the queued-bytes limit is waiting to be written")
        remove(subscriber.id)
        subscriber.channel.close(promise: nil)
    }

    /// Writes `bytes` (holding `events` events) unless the stream is too far behind, in which
    /// case it is closed, as it is when its peer is gone.
    @discardableResult
    private func write(_ bytes: ByteBuffer, to subscriber: Subscriber, events: Int = 1) -> Bool {
        guard subscriber.writable else {
            // Past the high-water mark: more than maxQueuedBytes wait for this client.
            drop(subscriber)
            return false
        }
        eventsSent += UInt64(events)
        bytesSent += UInt64(bytes.readableBytes)
        guard subscriber.output.write(bytes) != .failed else {
            remove(subscriber.id)
            subscriber.channel.close(promise: nil)
            return false
        }
        return true
    }

    /// Ends a long poll with `entries` (possibly none) as its JSON answer.
    private func answerPoll(_ subscriber: Subscriber, entries: [PollEntry], epoch: Epoch?) {
        remove(subscriber.id)  // first: ending the request completes writes at once and would re-enter
        var lastEventID = subscriber.resumeID?.description
        if let last = entries.last { lastEventID = last.id }
        var body = ByteBufferAllocator().buffer(capacity: 256)
        body.writeString(
            CGIResponseHead.encode(
                status: 200, headers: ["Content-Type: application/json"], caching: .liveFeed, corsOrigin: corsOrigin))
        body.writeString("{\"events\":[")
        for (index, entry) in entries.enumerated() {
            if index > 0 { body.writeString(",") }
            body.writeString(entry.json)
        }
        body.writeString("],\"lastEventId\":\(lastEventID.map(JSONValue.quoted) ?? "null")}\n")
        var bytes = FastCGIRecords.stdout(requestID: subscriber.requestID, content: body)
        var end = FastCGIRecords.end(requestID: subscriber.requestID)
        bytes.writeBuffer(&end)
        eventsSent += UInt64(entries.count)
        bytesSent += UInt64(bytes.readableBytes)
        let channel = subscriber.channel
        channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
    }

    /// The CORS origin polls answer with (`--cors-origin`; streams carry it in their prologue).
    let corsOrigin: String

    /// Starts the heartbeat: a `: ping` comment on every stream every `interval`.
    func startHeartbeat(every interval: TimeAmount) {
        let registry = NIOLoopBound(self, eventLoop: eventLoop)
        heartbeat = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            registry.value.sendHeartbeat()
        }
    }

    private func sendHeartbeat() {
        var records: [UInt16: ByteBuffer] = [:]
        // A stream with a full queue has bytes on their way: a ping would add nothing, and the
        // events decide whether it is caught up or dropped.
        for subscriber in Array(streams.values)
        where subscriber.kind == .stream && !subscriber.catchingUp && subscriber.writable {
            let record =
                records[subscriber.requestID]
                ?? FastCGIRecords.stdout(requestID: subscriber.requestID, content: EventFormatter.ping)
            records[subscriber.requestID] = record
            write(record, to: subscriber)
        }
    }

    /// Ends every stream: a `retry` of `retryMilliseconds` plus up to `jitterMilliseconds` so
    /// clients do not come back all at once, then the end of the FastCGI response. Waiting
    /// polls are answered with no events.
    func drain(retryMilliseconds: Int, jitterMilliseconds: Int) -> EventLoopFuture<Void> {
        let subscribers = Array(streams.values)
        // Remove first: ending a stream completes writes at once and would re-enter the registry.
        for subscriber in subscribers { remove(subscriber.id) }
        var closes: [EventLoopFuture<Void>] = []
        for subscriber in subscribers {
            if subscriber.kind == .poll {
                answerPoll(subscriber, entries: [], epoch: nil)
                continue
            }
            let retry = retryMilliseconds + Int.random(in: 0...max(0, jitterMilliseconds))
            var bytes = FastCGIRecords.stdout(
                requestID: subscriber.requestID, content: ByteBuffer(bytes: SSEEncoder.retry(milliseconds: retry)))
            var end = FastCGIRecords.end(requestID: subscriber.requestID)
            bytes.writeBuffer(&end)
            let channel = subscriber.channel
            closes.append(channel.writeAndFlush(bytes).flatMap { channel.close() }.recover { _ in })
        }
        return EventLoopFuture.andAllComplete(closes, on: eventLoop)
    }

    /// Ends stream `id` when its subscriber token expires: `event: token-expired` (data
    /// `{"exp":…}`), then the end of the FastCGI response. The client fetches a fresh token and
    /// resumes after its last event id (herald.js's `token` option); EventSource by itself
    /// would reconnect with the expired token and give up on the `401`.
    func endAtExpiry(_ id: UInt64, _ expiry: TokenExpiry) {
        guard let subscriber = streams[id] else { return }
        let registry = NIOLoopBound(self, eventLoop: eventLoop)
        subscriber.timeout = eventLoop.scheduleTask(in: .nanoseconds(expiry.remainingNanoseconds)) {
            guard let subscriber = registry.value.streams[id] else { return }
            registry.value.expire(subscriber, exp: expiry.exp)
        }
    }

    private func expire(_ subscriber: Subscriber, exp: Int64) {
        remove(subscriber.id)  // first: ending the request completes writes at once and would re-enter
        logger.info(
            "stream ended: subscriber token expired",
            metadata: [
                "stream.id": "\(subscriber.id)", "stream.channels": "\(subscriber.channels.joined(separator: ","))",
            ])
        var bytes = FastCGIRecords.stdout(
            requestID: subscriber.requestID, content: EventFormatter.tokenExpired(exp: exp))
        var end = FastCGIRecords.end(requestID: subscriber.requestID)
        bytes.writeBuffer(&end)
        let channel = subscriber.channel
        channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Stops the heartbeat (on shutdown).
    func stopHeartbeat() {
        heartbeat?.cancel()
        heartbeat = nil
    }
}

/// One event in a long-poll answer.
struct PollEntry {
    let id: String
    let json: String

    init(event: FormattedEvent, multiChannel: Bool) {
        id = event.id
        let name = multiChannel ? "\(event.channel):\(event.name)" : event.name
        json =
            "{\"id\":\(JSONValue.quoted(event.id)),\"event\":\(JSONValue.quoted(name)),\"data\":\(JSONValue.quoted(event.data))}"
    }

    init(initOf snapshot: ChannelSnapshot, sequence: UInt64, epoch: Epoch, multiChannel: Bool) {
        id = EventID(epoch: epoch, sequence: sequence).description
        let name = multiChannel ? "\(snapshot.channel):init" : "init"
        json =
            "{\"id\":\(JSONValue.quoted(id)),\"event\":\(JSONValue.quoted(name)),\"data\":\(JSONValue.quoted(snapshot.state))}"
    }
}
