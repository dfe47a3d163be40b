// One benchmark subscriber: an HTTP/1.1 event stream read straight from the socket and checked,
// not kept. Each event's data is `<index> <monotonic ns when published> <padding>`; the
// subscriber marks the index seen (loss and duplicates) and records the latency in its event
// loop's histogram.
//
// The client must cost far less than the server it measures, so this reads raw bytes: the
// response head once, then chunked framing and SSE lines scanned in place, with no HTTP
// decoder, no strings and no allocation per event.
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

/// The figures of all subscribers on one event loop (owned by that loop).
final class LoopFigures {
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var ready = 0
    var delivered = 0
    var duplicates = 0
    var misrouted = 0
    var ended = 0
}

/// Checks one subscriber's stream.
final class BenchSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let figures: LoopFigures
    private let readyOnHead: Bool
    /// Many channels: this subscriber gets the events k with k mod `fanOut` == `channelIndex`.
    private let fanOut: Int
    private let channelIndex: Int
    private var seen: [UInt64]
    private var isReady = false
    private var stream = EventScanner()
    private var chunks = ChunkDecoder()
    private var head: [UInt8] = []
    private var inBody = false
    private var chunked = false

    /// `readyOnHead`: count the subscriber as connected on a 200 response head (for servers
    /// without an `init` event, such as nchan) instead of on its `init`.
    /// `fanOut`/`channelIndex`: on channel `channelIndex` of `fanOut` (1/0: the only channel).
    init(figures: LoopFigures, events: Int, readyOnHead: Bool, fanOut: Int = 1, channelIndex: Int = 0) {
        self.figures = figures
        self.readyOnHead = readyOnHead
        self.fanOut = fanOut
        self.channelIndex = channelIndex
        seen = [UInt64](repeating: 0, count: (events / fanOut + 1 + 63) / 64)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if !inBody {
            guard readHead(&buffer, context: context) else { return }
        }
        let now = monotonicNanoseconds()
        buffer.withUnsafeReadableBytes { bytes in
            if chunked {
                chunks.feed(bytes) { stream.feed($0, found: { record($0, now: now) }) }
            } else {
                stream.feed(bytes, found: { record($0, now: now) })
            }
        }
    }

    /// Collects the response head; true once it is complete (the rest of `buffer` is body).
    private func readHead(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        head.append(contentsOf: buffer.readableBytesView)
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        guard let end = head.firstRange(of: [13, 10, 13, 10]) else {
            if head.count > 16_384 { context.close(promise: nil) }
            return false
        }
        let text = String(decoding: head[..<end.lowerBound], as: UTF8.self).lowercased()
        guard text.hasPrefix("http/1.1 200") else {
            context.close(promise: nil)
            return false
        }
        chunked = text.contains("\r\ntransfer-encoding: chunked")
        inBody = true
        if readyOnHead { markReady() }
        buffer = ByteBuffer(bytes: head[end.upperBound...])
        head = []
        return true
    }

    private func record(_ event: EventScanner.Event, now: UInt64) {
        switch event {
        case .initial:
            markReady()
        case .numbered(let event, let sent):
            guard event % fanOut == channelIndex else {
                figures.misrouted += 1
                return
            }
            let index = event / fanOut
            guard index / 64 < seen.count else { return }
            let bit = UInt64(1) << UInt64(index % 64)
            if seen[index / 64] & bit != 0 {
                figures.duplicates += 1
                return
            }
            seen[index / 64] |= bit
            figures.delivered += 1
            _ = figures.latency.record(now >= sent ? (now - sent) / 1000 : 0)
        }
    }

    private func markReady() {
        guard !isReady else { return }
        isReady = true
        figures.ready += 1
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
    readyOnHead: Bool, fanOut: Int = 1, channelIndex: Int = 0
) -> EventLoopFuture<Channel> {
    ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    BenchSubscriberHandler(
                        figures: figures.value, events: events, readyOnHead: readyOnHead, fanOut: fanOut,
                        channelIndex: channelIndex))
            }
        }
        .connect(host: host, port: port)
        .flatMap { channel in
            let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n\r\n"
            return channel.writeAndFlush(ByteBuffer(string: request)).map { channel }
        }
}
