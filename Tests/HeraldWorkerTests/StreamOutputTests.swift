// The stream phase on a real socket pair: records go straight to the socket while it takes
// them, queue in the channel (in order) while the peer does not read, go straight again once
// the queue is written out, and a peer that is gone ends the stream at the next write.
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import HeraldWorker

#if canImport(Glibc)
    import Glibc
#endif

/// Reads exactly `count` bytes from `fd`, waiting at most 10 s for each chunk.
private func read(_ count: Int, from fd: Int32) throws -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < count {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 10_000) == 1 else { throw SocketPairError("no bytes within 10 s") }
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, count - bytes.count)) }
        guard n > 0 else { throw SocketPairError("read returned \(n)") }
        bytes += chunk[0..<n]
    }
    return bytes
}

private struct SocketPairError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A registry on a real event loop with one stream on "rooms" whose socket's other end is `peer`.
private struct Pair {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let registry: NIOLoopBound<StreamRegistry>
    let channel: Channel
    let peer: Int32
    static let epoch = Epoch("k3j9x2mq0a")!

    init() async throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw SocketPairError("socketpair")
        }
        // A small send buffer, so that a few hundred records fill it.
        var size: Int32 = 4096
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        peer = fds[1]
        let loop = group.next()
        let registry = try await loop.submit {
            NIOLoopBound(
                StreamRegistry(
                    eventLoop: loop, logger: Logger(label: "test"), maxQueuedBytes: 4 << 20, corsOrigin: "*"),
                eventLoop: loop)
        }.get()
        self.registry = registry
        let fd = fds[0]
        channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StreamHandler(id: 1, registry: registry.value))
                }
            }
            .withConnectedSocket(fd).get()
        let channel = self.channel
        try await loop.submit {
            let subscriber = Subscriber(
                id: 1, channel: channel, fd: fd, requestID: 1, channels: ["rooms"], kind: .stream)
            registry.value.add(
                subscriber, prologue: FastCGIRecords.stdout(requestID: 1, content: ByteBuffer(string: "P")))
            registry.value.start(1, epoch: Self.epoch, sequence: 0, replay: [], snapshots: [])
        }.get()
    }

    /// Runs `body` on the loop with the registry and the stream's subscriber (nil once removed).
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (StreamRegistry, Subscriber?) -> T) async throws -> T {
        let registry = self.registry
        return try await registry.eventLoop.submit { body(registry.value, registry.value.subscriber(1)) }.get()
    }

    func shutdown() async throws {
        close(peer)
        try await group.shutdownGracefully()
    }
}

/// Event `sequence` on "rooms" as the hub link formats it.
private func event(_ sequence: UInt64) -> FormattedEvent {
    EventFormatter.format(
        HubEvent(sequence: sequence, channel: "rooms", name: "delta", data: "event \(sequence) of the run"),
        epoch: Pair.epoch)
}

@Suite struct StreamOutputTests {
    @Test func recordsQueueInOrderWhileThePeerDoesNotReadAndGoStraightOnceDrained() async throws {
        let pair = try await Pair()
        let prologue = Array(FastCGIRecords.stdout(requestID: 1, content: ByteBuffer(string: "P")).readableBytesView)
        // 600 single-event deliveries, then batches of 3: far more than the socket buffer holds.
        let peer = pair.peer
        let (expected, sawQueue, early) = try await pair.onLoop { registry, subscriber in
            var expected = prologue
            var sawQueue = false
            for sequence in UInt64(1)...600 {
                registry.deliver([event(sequence)])
                expected += event(sequence).record(requestID: 1, multiChannel: false).readableBytesView
                sawQueue = sawQueue || subscriber?.output.queuedWrites ?? 0 > 0
            }
            // The peer reads some before the loop hears the socket is writable again: the
            // socket has room, but what follows must still queue behind what waits.
            var available: Int32 = 0
            _ = ioctl(peer, UInt(FIONREAD), &available)
            let early = (try? read(Int(available), from: peer)) ?? []
            for first in stride(from: UInt64(601), to: 700, by: 3) {
                registry.deliver([event(first), event(first + 1), event(first + 2)])
                for sequence in first...(first + 2) {
                    expected += event(sequence).record(requestID: 1, multiChannel: false).readableBytesView
                }
            }
            return (expected, sawQueue, early)
        }
        #expect(sawQueue, "the peer did not read, so some records waited in the channel")
        #expect(early.count > 0)
        let received = try early + read(expected.count - early.count, from: pair.peer)
        #expect(received == expected, "every record once, in order")

        // Written out: the next record goes straight to the socket.
        let (queuedAfter, count) = try await pair.onLoop { registry, subscriber in
            registry.deliver([event(800)])
            return (subscriber?.output.queuedWrites ?? -1, registry.count)
        }
        #expect(queuedAfter == 0)
        #expect(count == 1)
        #expect(
            try read(event(800).record(requestID: 1, multiChannel: false).readableBytes, from: pair.peer)
                == Array(event(800).record(requestID: 1, multiChannel: false).readableBytesView))
        try await pair.shutdown()
    }

    @Test func aPeerThatStoppedReadingForGoodEndsTheStreamAtTheNextWrite() async throws {
        let pair = try await Pair()
        // No EOF reaches the worker, only EPIPE on its next send.
        shutdown(pair.peer, Int32(SHUT_RD))
        let (count, active) = try await pair.onLoop { registry, _ in
            registry.deliver([event(1)])
            return (registry.count, registry.subscriber(1) != nil)
        }
        #expect(count == 0)
        #expect(!active)
        try await pair.channel.closeFuture.get()
        try await pair.shutdown()
    }
}
