// The pipelined admin publisher: one connection to the hub's admin socket with up to a window
// of `publish` lines in flight; replies come back in request order, and each reply lets the
// next line go. Lines are written and replies scanned as raw bytes on one event loop.
import HeraldClient
import NIOCore
import NIOPosix

/// Counts admin replies in a byte stream: `ok` or `error: …`, body lines, then an empty line.
struct AdminReplyScanner {
    private var lineLength = 0
    private var firstLine = true
    private var isError = false

    /// Feeds bytes; calls `found(ok)` for every reply they complete.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, found: (Bool) -> Void) {
        for byte in bytes {
            switch byte {
            case 10:
                if lineLength == 0 {
                    found(!isError)
                    firstLine = true
                    isError = false
                } else {
                    firstLine = false
                }
                lineLength = 0
            case 13:
                break
            default:
                if firstLine && lineLength == 0 { isError = byte == UInt8(ascii: "e") }
                lineLength += 1
            }
        }
    }
}

/// Publishes through one admin connection with up to `window` requests outstanding.
final class AdminPipeline: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let tally: PublishTally
    private let channelName: String
    private let data: EventData
    private let window: Int
    private let fanOut: Int?
    private let finished: EventLoopPromise<Void>
    private var scanner = AdminReplyScanner()
    private var context: ChannelHandlerContext?
    /// Indices in flight and their send times, oldest first (a ring of `window` slots).
    private var inFlight: [(index: Int, sent: UInt64)]
    private var oldest = 0
    private var outstanding = 0
    private var isOver = false
    private var isDone = false

    /// Completes when the run is over and every reply is in (or the connection ended).
    var done: EventLoopFuture<Void> { finished.futureResult }

    init(tally: PublishTally, channel: String, data: EventData, window: Int, fanOut: Int?, loop: EventLoop) {
        self.tally = tally
        channelName = channel
        self.data = data
        self.window = window
        self.fanOut = fanOut
        finished = loop.makePromise()
        inFlight = Array(repeating: (0, 0), count: window)
    }

    /// Connects to `path` on `loop` and starts publishing.
    static func start(
        path: String, tally: PublishTally, channel: String, data: EventData, window: Int, fanOut: Int?,
        loop: EventLoop
    ) -> EventLoopFuture<AdminPipeline> {
        let pipeline = AdminPipeline(
            tally: tally, channel: channel, data: data, window: window, fanOut: fanOut, loop: loop)
        let bound = NIOLoopBound(pipeline, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .connect(unixDomainSocketPath: path)
            .map { _ in bound.value }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        fill(context: context)
        context.fireChannelActive()
    }

    /// Sends lines until the window is full or the run is over.
    private func fill(context: ChannelHandlerContext) {
        var lines = context.channel.allocator.buffer(capacity: 0)
        let now = monotonicNanoseconds()
        while outstanding < window, !isOver {
            guard let claim = tally.claim(1, now: now) else {
                isOver = true
                break
            }
            lines.writeStaticString("publish ")
            lines.writeString(channelName)
            if let fanOut {
                lines.writeInteger(UInt8(ascii: "-"))
                EventData.writeDecimal(UInt64(claim.first % fanOut), to: &lines)
            }
            lines.writeStaticString(" \"")
            data.write(index: claim.first, sent: now, to: &lines)
            lines.writeStaticString("\"\n")
            inFlight[(oldest + outstanding) % window] = (claim.first, now)
            outstanding += 1
        }
        if lines.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(lines), promise: nil) }
        if isOver && outstanding == 0 { end() }
    }

    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let now = monotonicNanoseconds()
        buffer.withUnsafeReadableBytes { bytes in
            scanner.feed(bytes) { ok in
                guard outstanding > 0 else { return }
                let (index, sent) = inFlight[oldest]
                oldest = (oldest + 1) % window
                outstanding -= 1
                tally.answers += 1
                if ok {
                    tally.acknowledge(first: index, count: 1, sent: sent, now: now)
                } else {
                    tally.refusals[0, default: 0] += 1  // the hub's `error: …`
                }
            }
        }
        fill(context: context)
    }

    /// The run's hard end: replies still missing count as transport errors.
    func abandon() {
        tally.transportErrors += outstanding
        outstanding = 0
        isOver = true
        context?.close(promise: nil)
        end()
    }

    private func end() {
        guard !isDone else { return }
        isDone = true
        context?.close(promise: nil)
        finished.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tally.transportErrors += outstanding
        outstanding = 0
        isOver = true
        self.context = nil
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
