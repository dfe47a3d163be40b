// A cheap stream reader for load tests: it parses on the event loop and keeps only counts,
// the order of sequence numbers, and publish-to-arrival latencies, so hundreds of them do not
// make the test process the bottleneck.
import HeraldClient
import HeraldProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import SSE
import Synchronization

/// What a counting client has seen.
struct CountingRecord: Sendable {
    var events = 0
    var lastSequence: UInt64 = 0
    var outOfOrder = 0
    var ended = false
    /// Milliseconds from publish to arrival, for events whose data starts with `<monotonic ns> `.
    var latencies: [Double] = []
}

/// A stream whose events are counted, not kept.
final class CountingClient: Sendable {
    let channel: Channel
    let state: CountingState

    private init(channel: Channel, state: CountingState) {
        self.channel = channel
        self.state = state
    }

    static func open(port: Int, path: String) async throws -> CountingClient {
        let state = CountingState()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(CountingHandler(state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return CountingClient(channel: channel, state: state)
    }

    var record: CountingRecord { state.value.withLock { $0 } }

    func close() async { try? await channel.close() }
}

/// The record behind a lock (read by the test, written on the event loop).
final class CountingState: Sendable {
    let value = Mutex(CountingRecord())
}

final class CountingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let state: CountingState
    private var parser = SSEParser()

    init(state: CountingState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .body(let buffer) = unwrapInboundIn(data) else { return }
        let now = monotonicNanoseconds()
        let items = parser.feed(buffer.readableBytesView)
        state.value.withLock { record in
            for case .event(let message) in items {
                record.events += 1
                if let sequence = EventID(parsing: message.lastEventId)?.sequence {
                    if sequence <= record.lastSequence, message.type != "init" { record.outOfOrder += 1 }
                    record.lastSequence = max(record.lastSequence, sequence)
                }
                if let sent = message.data.split(separator: " ", maxSplits: 1).first.flatMap({ UInt64($0) }),
                    sent <= now
                {
                    record.latencies.append(Double(now - sent) / 1e6)
                }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.value.withLock { $0.ended = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
