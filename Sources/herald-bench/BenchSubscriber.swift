// One benchmark subscriber: an HTTP/1.1 event stream whose events are checked, not kept. Each
// event's data is `<index> <monotonic ns when published> <padding>`; the subscriber marks the
// index seen (loss and duplicates) and records the latency in its event loop's histogram.
import HeraldClient
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import SSE

/// The figures of all subscribers on one event loop (owned by that loop).
final class LoopFigures {
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var ready = 0
    var delivered = 0
    var duplicates = 0
    var ended = 0
}

/// Checks one subscriber's stream.
final class BenchSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let figures: LoopFigures
    private let readyOnHead: Bool
    private var parser = SSEParser()
    private var seen: [UInt64]
    private var isReady = false

    /// `readyOnHead`: count the subscriber as connected on a 200 response head (for servers
    /// without an `init` event, such as nchan) instead of on its `init`.
    init(figures: LoopFigures, events: Int, readyOnHead: Bool) {
        self.figures = figures
        self.readyOnHead = readyOnHead
        seen = [UInt64](repeating: 0, count: (events + 63) / 64)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), readyOnHead, head.status == .ok, !isReady {
            isReady = true
            figures.ready += 1
        }
        guard case .body(let buffer) = unwrapInboundIn(data) else { return }
        let now = monotonicNanoseconds()
        for case .event(let message) in parser.feed(buffer.readableBytesView) {
            if message.type == "init" {
                if !isReady {
                    isReady = true
                    figures.ready += 1
                }
                continue
            }
            let fields = message.data.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2, let index = Int(fields[0]), let sent = UInt64(fields[1]), index >= 0,
                index / 64 < seen.count
            else {
                continue
            }
            let bit = UInt64(1) << UInt64(index % 64)
            if seen[index / 64] & bit != 0 {
                figures.duplicates += 1
                continue
            }
            seen[index / 64] |= bit
            figures.delivered += 1
            _ = figures.latency.record(now >= sent ? (now - sent) / 1000 : 0)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        figures.ended += 1
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Opens one subscriber on `loop`.
func openSubscriber(
    loop: EventLoop, figures: NIOLoopBound<LoopFigures>, host: String, port: Int, path: String, events: Int,
    readyOnHead: Bool
) -> EventLoopFuture<Channel> {
    ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(
                    BenchSubscriberHandler(figures: figures.value, events: events, readyOnHead: readyOnHead))
            }
        }
        .connect(host: host, port: port)
        .flatMap { channel in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: "\(host):\(port)")
            head.headers.add(name: "Accept", value: "text/event-stream")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            return channel.writeAndFlush(HTTPClientRequestPart.end(nil)).map { channel }
        }
}
