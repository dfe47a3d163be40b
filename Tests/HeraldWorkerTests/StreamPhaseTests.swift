// The stream phase in process, on SwiftNIO's EmbeddedChannel: the exact FastCGI bytes a
// stream gets for its init, a delta, a heartbeat and a drain; a slow client cut on a plain
// event and caught up on a state change; and a long poll's answer with the configured CORS
// origin. No sockets, no processes: the registry as the event loop drives it.
import HeraldProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HeraldWorker

/// FastCGI STDOUT for request 1 holding `text`, padded to 8 bytes as the specification allows.
private func stdout(_ text: String) -> [UInt8] {
    let content = Array(text.utf8)
    let padding = -content.count & 7
    return [1, 6, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), UInt8(padding), 0] + content
        + [UInt8](repeating: 0, count: padding)
}

/// The end of a response on request 1: an empty STDOUT record (the end of the stream), then
/// FCGI_END_REQUEST with app status 0 and FCGI_REQUEST_COMPLETE.
private let endRequest: [UInt8] = [1, 6, 0, 1, 0, 0, 0, 0] + [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

/// One registry on an embedded loop, with one stream (or poll) on "rooms".
private final class Phase {
    let loop = EmbeddedEventLoop()
    let registry: StreamRegistry
    let channel: EmbeddedChannel
    let subscriber: Subscriber
    var restarts: [(UInt64, [String])] = []
    static let epoch = Epoch("k3j9x2mq0a")!

    init(kind: Subscriber.Kind = .stream, pollTimeout: TimeAmount? = nil) throws {
        registry = StreamRegistry(
            eventLoop: loop, logger: Logger(label: "test"), maxQueuedBytes: 4096, corsOrigin: "https://app.example")
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(StreamHandler(id: 1, registry: registry))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        subscriber = Subscriber(id: 1, channel: channel, requestID: 1, channels: ["rooms"], kind: kind)
        registry.add(subscriber, pollTimeout: pollTimeout)
        registry.restart = { [unowned self] stream, channels in self.restarts.append((stream, channels)) }
    }

    /// Everything written and flushed since the last call.
    func written() throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
        return bytes
    }

    func start(_ state: String = #"{"a":1}"#, at sequence: UInt64 = 7) {
        registry.start(
            1, epoch: Self.epoch, sequence: sequence, replay: [],
            snapshots: [ChannelSnapshot(channel: "rooms", state: state)])
    }

    func deliver(_ sequence: UInt64, _ data: String, changesState: Bool = false) {
        var event = EventFormatter.format(
            HubEvent(sequence: sequence, channel: "rooms", name: "delta", data: data), epoch: Self.epoch)
        event.changesState = changesState
        registry.deliver([event])
    }
}

@Suite struct StreamPhaseTests {
    @Test func initDeltaHeartbeatAndDrainAreExactRecords() throws {
        let phase = try Phase()
        phase.start()
        #expect(try phase.written() == stdout("id: k3j9x2mq0a-7\nevent: init\ndata: {\"a\":1}\n\n"))
        phase.deliver(8, #"{"a":2}"#, changesState: true)
        #expect(try phase.written() == stdout("id: k3j9x2mq0a-8\nevent: delta\ndata: {\"a\":2}\n\n"))
        // Not newer than what the stream has: skipped.
        phase.deliver(8, #"{"a":2}"#)
        #expect(try phase.written().isEmpty)

        phase.registry.startHeartbeat(every: .seconds(15))
        phase.loop.advanceTime(by: .seconds(15))
        #expect(try phase.written() == stdout(": ping\n\n"))
        phase.registry.stopHeartbeat()

        _ = phase.registry.drain(retryMilliseconds: 2000, jitterMilliseconds: 0)
        phase.loop.run()
        let drained = try phase.written()
        #expect(drained == stdout("retry: 2000\n\n") + endRequest, "\(drained)")
        #expect(!phase.channel.isActive, "a drained stream is closed")
        #expect(phase.registry.count == 0)
    }

    @Test func aSlowClientIsCutOnAPlainEvent() throws {
        let phase = try Phase()
        phase.start()
        _ = try phase.written()
        phase.channel.isWritable = false
        phase.channel.pipeline.fireChannelWritabilityChanged()  // as NIO does when the mark is crossed
        phase.deliver(8, "plain text")
        #expect(try phase.written().isEmpty)
        #expect(!phase.channel.isActive)
        #expect(phase.registry.slowClientsDropped == 1)
        #expect(phase.registry.count == 0)
    }

    @Test func aSlowClientOnStateChangesIsCaughtUpWithAFreshInit() throws {
        let phase = try Phase()
        phase.start()
        _ = try phase.written()
        phase.channel.isWritable = false
        phase.channel.pipeline.fireChannelWritabilityChanged()  // as NIO does when the mark is crossed
        phase.deliver(8, #"{"a":2}"#, changesState: true)
        phase.deliver(9, #"{"a":3}"#, changesState: true)
        #expect(try phase.written().isEmpty, "skipped while the queue is full")
        #expect(phase.channel.isActive)
        #expect(phase.registry.slowClientsCaughtUp == 1)
        // The heartbeat does not cut it either.
        phase.registry.startHeartbeat(every: .seconds(15))
        phase.loop.advanceTime(by: .seconds(15))
        phase.registry.stopHeartbeat()
        #expect(phase.channel.isActive)

        phase.channel.isWritable = true
        phase.channel.pipeline.fireChannelWritabilityChanged()
        #expect(phase.restarts.map(\.0) == [1])
        #expect(phase.restarts.first?.1 == ["rooms"])
        // The hub's fresh start: the state as of 9, then what follows.
        phase.start(#"{"a":3}"#, at: 9)
        phase.deliver(10, #"{"a":4}"#, changesState: true)
        #expect(
            try phase.written()
                == stdout("id: k3j9x2mq0a-9\nevent: init\ndata: {\"a\":3}\n\n")
                + stdout("id: k3j9x2mq0a-10\nevent: delta\ndata: {\"a\":4}\n\n"))
        #expect(phase.registry.slowClientsDropped == 0)
    }

    @Test func aPollIsAnsweredWithTheConfiguredOrigin() throws {
        let phase = try Phase(kind: .poll, pollTimeout: .seconds(25))
        phase.start()
        let answer = try phase.written()
        let head =
            "Status: 200 OK\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: https://app.example\r\n"
            + "Cache-Control: no-cache, no-transform\r\n\r\n"
        let body = #"{"events":[{"id":"k3j9x2mq0a-7","event":"init","data":"{\"a\":1}"}],"lastEventId":"k3j9x2mq0a-7"}"# + "\n"
        let expected = stdout(head + body) + endRequest
        #expect(answer == expected, "\(String(decoding: answer.dropFirst(8), as: UTF8.self))")
    }
}
