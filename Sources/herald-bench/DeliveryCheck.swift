// The delivery check of a publishing run: one event stream through nginx on the published
// channel, marking which event indices arrived and how often, so that the report can say
// whether every acknowledged event was delivered exactly once.
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

/// What the check's stream received (owned by its event loop).
final class DeliveryLedger {
    /// One bit per index received.
    private(set) var received: [UInt64]
    private(set) var receivedCount = 0
    private(set) var duplicates = 0
    /// Events with an index beyond the run's bound (not the benchmark's).
    private(set) var outOfRange = 0
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var isReady = false
    var ended = false

    init(maxEvents: Int) {
        received = [UInt64](repeating: 0, count: (maxEvents + 63) / 64)
    }

    func record(index: Int, sent: UInt64, now: UInt64) {
        guard index / 64 < received.count else {
            outOfRange += 1
            return
        }
        let bit = UInt64(1) << UInt64(index % 64)
        if received[index / 64] & bit != 0 {
            duplicates += 1
            return
        }
        received[index / 64] |= bit
        receivedCount += 1
        _ = latency.record(now >= sent ? (now - sent) / 1000 : 0)
    }

    /// Compares what arrived with what was acknowledged (bit sets of the same size).
    func compare(acknowledged: [UInt64]) -> (delivered: Int, missing: Int, unacknowledged: Int) {
        var delivered = 0
        var missing = 0
        var unacknowledged = 0
        for (got, due) in zip(received, acknowledged) {
            delivered += (got & due).nonzeroBitCount
            missing += (due & ~got).nonzeroBitCount
            unacknowledged += (got & ~due).nonzeroBitCount
        }
        return (delivered, missing, unacknowledged)
    }
}

/// Reads the check's stream: the response head, then (chunked) SSE scanned in place.
final class DeliveryCheckHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let ledger: DeliveryLedger
    private let readyOnHead: Bool
    private var stream = EventScanner()
    private var chunks = ChunkDecoder()
    private var head: [UInt8] = []
    private var inBody = false
    private var chunked = false

    init(ledger: DeliveryLedger, readyOnHead: Bool) {
        self.ledger = ledger
        self.readyOnHead = readyOnHead
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if !inBody {
            head.append(contentsOf: buffer.readableBytesView)
            guard let end = head.firstRange(of: [13, 10, 13, 10]) else {
                if head.count > 16_384 { context.close(promise: nil) }
                return
            }
            let text = String(decoding: head[..<end.lowerBound], as: UTF8.self).lowercased()
            guard text.hasPrefix("http/1.1 200") else {
                context.close(promise: nil)
                return
            }
            chunked = text.contains("\r\ntransfer-encoding: chunked")
            inBody = true
            if readyOnHead { ledger.isReady = true }
            buffer = ByteBuffer(bytes: head[end.upperBound...])
            head = []
        }
        let now = monotonicNanoseconds()
        let ledger = self.ledger
        let found: (EventScanner.Event) -> Void = { event in
            switch event {
            case .initial: ledger.isReady = true
            case .numbered(let index, let sent): ledger.record(index: index, sent: sent, now: now)
            }
        }
        buffer.withUnsafeReadableBytes { bytes in
            if chunked {
                chunks.feed(bytes) { stream.feed($0, found: found) }
            } else {
                stream.feed(bytes, found: found)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ledger.ended = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Opens the check's stream on `loop`: `GET path` through nginx.
func openDeliveryCheck(
    loop: EventLoop, ledger: NIOLoopBound<DeliveryLedger>, port: Int, path: String, readyOnHead: Bool
)
    -> EventLoopFuture<Channel>
{
    ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    DeliveryCheckHandler(ledger: ledger.value, readyOnHead: readyOnHead))
            }
        }
        .connect(host: "127.0.0.1", port: port)
        .flatMap { channel in
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n\r\n"
            return channel.writeAndFlush(ByteBuffer(string: request)).map { channel }
        }
}
