// One closed-loop HTTP publisher, as wrk drives a server: a persistent HTTP/1.1 connection
// (reopened when the server closes it) that sends its next publish, or NDJSON batch, as soon
// as the previous one is answered (or when it is due, in a paced run). Requests are written
// as raw bytes and answers read with HTTPResponseScanner: no HTTP codec, no strings per event.
import HeraldClient
import NIOCore
import NIOPosix

/// What the HTTP publishers of a run send.
struct HTTPPublishTarget {
    var host: String
    var port: Int
    /// One event per POST: the channel's publish path (`/publish/bench`, nchan's `/pub/bench`).
    /// Batches: `/publish`.
    var path: String
    /// Headers of every request, e.g. `Authorization: Bearer TOKEN`.
    var headers: [(String, String)]
    /// Events per request: nil for one event per POST (the body is its data), else NDJSON lines.
    var batchSize: Int?
    /// The channel of batch lines (a single publish names it in `path`).
    var channel: String
    /// Many-channel runs: event k goes to channel `<channel>-<k mod fanOut>` (single publishes:
    /// path `<path>-<k mod fanOut>`).
    var fanOut: Int?
    /// Send an `Idempotency-Key` (batch: a `key` per line) and retry failures with it.
    var idempotencyKeys: Bool
    /// Prefix of this run's keys, so that no two runs share one.
    var keyPrefix: String
    /// Sends of one request at most, retries included.
    var attempts: Int
}

/// One publisher of the closed loop; lives on the publishers' event loop.
final class HTTPPublisher {
    private let target: HTTPPublishTarget
    private let data: EventData
    private let tally: PublishTally
    private let loop: EventLoop
    private let finished: EventLoopPromise<Void>
    /// Fixed request bytes after the request line, up to the Content-Length value.
    private let headerBytes: [UInt8]
    private var channel: Channel?
    /// The request being sent (or waiting for its due time): its indices, first send, attempts.
    private var current: (first: Int, count: Int, sent: UInt64, attempt: Int)?
    private var awaitingAnswer = false
    /// A paced run: the current request waits for its due time (or a retry for its backoff).
    private var isWaitingForDue = false
    /// The current request failed and is sent again after `retryDelay`.
    private var isRetryPending = false
    private var isFinished = false
    private var body = ByteBuffer()
    private var scratch = ByteBuffer()
    private var lineChannel = ByteBuffer()
    private var lineKey = ByteBuffer()

    /// Completes when this publisher has stopped (run over, connection closed).
    var done: EventLoopFuture<Void> { finished.futureResult }

    init(target: HTTPPublishTarget, data: EventData, tally: PublishTally, loop: EventLoop) {
        self.target = target
        self.data = data
        self.tally = tally
        self.loop = loop
        finished = loop.makePromise()
        var head = " HTTP/1.1\r\nHost: \(target.host):\(target.port)\r\n"
        for (name, value) in target.headers { head += "\(name): \(value)\r\n" }
        if target.batchSize != nil { head += "Content-Type: application/x-ndjson\r\n" }
        head += "Content-Length: "
        headerBytes = Array(head.utf8)
    }

    func start() { connect() }

    /// Stops now (the run's hard end): a request still unanswered counts as a transport error.
    func abandon() {
        if awaitingAnswer {
            tally.transportErrors += 1
            awaitingAnswer = false
        }
        finish()
    }

    private func connect() {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let keepsBody = target.batchSize != nil
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPPublishHandler(publisher: bound.value, keepsBody: keepsBody))
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { result in
                let publisher = bound.value
                switch result {
                case .success(let channel):
                    guard !publisher.isFinished else {
                        channel.close(promise: nil)
                        return
                    }
                    publisher.channel = channel
                    publisher.sendNext()
                case .failure:
                    publisher.tally.transportErrors += 1
                    publisher.reconnectLater()
                }
            }
    }

    private func reconnectLater() {
        guard !isFinished else { return }
        guard monotonicNanoseconds() < tally.deadline else { return finish() }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: .milliseconds(10)) { bound.value.connect() }
    }

    private func finish() {
        guard !isFinished else { return }
        isFinished = true
        channel?.close(promise: nil)
        channel = nil
        finished.succeed()
    }

    /// Sends the current request again, or claims the next one and sends it when due.
    private func sendNext() {
        guard !isFinished, let channel, !awaitingAnswer, !isWaitingForDue else { return }
        let now = monotonicNanoseconds()
        if isRetryPending, let current {
            // Retry after a backoff, as a publisher honouring Retry-After would: an outage
            // (a hub restarting) is waited out instead of spending every attempt at once.
            isRetryPending = false
            isWaitingForDue = true
            let bound = NIOLoopBound(self, eventLoop: loop)
            loop.scheduleTask(in: Self.retryDelay(afterAttempt: current.attempt)) {
                bound.value.isWaitingForDue = false
                bound.value.sendNext()
            }
            return
        }
        if current == nil {
            guard let claim = tally.claim(target.batchSize ?? 1, now: now) else { return finish() }
            current = (claim.first, claim.count, max(now, claim.due), 0)
            if claim.due > now {
                let bound = NIOLoopBound(self, eventLoop: loop)
                isWaitingForDue = true
                loop.scheduleTask(in: .nanoseconds(Int64(claim.due - now))) {
                    bound.value.isWaitingForDue = false
                    bound.value.sendNext()
                }
                return
            }
        }
        sendCurrent(on: channel)
    }

    private func sendCurrent(on channel: Channel) {
        guard !isFinished, let current, self.channel === channel, channel.isActive else { return }
        if current.attempt == 0 { self.current!.sent = monotonicNanoseconds() }
        self.current!.attempt += 1
        let sent = self.current!.sent
        scratch.clear()
        body.clear()
        var request = channel.allocator.buffer(capacity: 256 + (target.batchSize ?? 1) * (data.padding.count + 96))
        request.writeStaticString("POST ")
        request.writeString(target.path)
        if target.batchSize == nil, let fanOut = target.fanOut {
            request.writeInteger(UInt8(ascii: "-"))
            EventData.writeDecimal(UInt64(current.first % fanOut), to: &request)
        }
        request.writeBytes(headerBytes)
        if target.batchSize != nil {
            // Per line: the data, channel name and key go through scratch buffers reused for
            // every line, so a batch costs no allocation per event.
            for index in current.first..<current.first + current.count {
                scratch.clear()
                data.write(index: index, sent: sent, to: &scratch)
                lineChannel.clear()
                lineChannel.writeString(target.channel)
                if let fanOut = target.fanOut {
                    lineChannel.writeInteger(UInt8(ascii: "-"))
                    EventData.writeDecimal(UInt64(index % fanOut), to: &lineChannel)
                }
                if target.idempotencyKeys {
                    lineKey.clear()
                    lineKey.writeString(target.keyPrefix)
                    lineKey.writeInteger(UInt8(ascii: "-"))
                    EventData.writeDecimal(UInt64(index), to: &lineKey)
                }
                PublishBatch.appendLine(
                    channel: lineChannel.readableBytesView, data: scratch.readableBytesView,
                    key: target.idempotencyKeys ? lineKey.readableBytesView : nil, to: &body)
            }
            EventData.writeDecimal(UInt64(body.readableBytes), to: &request)
            request.writeStaticString("\r\n\r\n")
            request.writeBuffer(&body)
        } else {
            EventData.writeDecimal(UInt64(data.count(index: current.first, sent: sent)), to: &request)
            if target.idempotencyKeys {
                request.writeStaticString("\r\nIdempotency-Key: ")
                request.writeString(target.keyPrefix)
                request.writeInteger(UInt8(ascii: "-"))
                EventData.writeDecimal(UInt64(current.first), to: &request)
            }
            request.writeStaticString("\r\n\r\n")
            data.write(index: current.first, sent: sent, to: &request)
        }
        awaitingAnswer = true
        channel.writeAndFlush(request, promise: nil)
    }

    /// An answer to the request in flight.
    fileprivate func answered(_ response: HTTPResponseScanner.Response) {
        guard awaitingAnswer, let current else { return }
        awaitingAnswer = false
        tally.answers += 1
        let now = monotonicNanoseconds()
        if (200..<300).contains(response.status) {
            if target.batchSize != nil, PublishBatch.ids(in: response.body)?.count != current.count {
                tally.transportErrors += 1  // a 2xx that does not acknowledge each line
                failed()
            } else {
                tally.acknowledge(first: current.first, count: current.count, sent: current.sent, now: now)
                self.current = nil
            }
        } else {
            tally.refusals[response.status, default: 0] += 1
            failed()
        }
        if !response.closes { sendNext() }
    }

    /// The connection ended: reconnect unless the run is over.
    fileprivate func connectionEnded() {
        channel = nil
        if awaitingAnswer, current != nil {
            awaitingAnswer = false
            tally.transportErrors += 1
            failed()
        }
        awaitingAnswer = false
        guard !isFinished else { return }
        if current == nil && monotonicNanoseconds() >= tally.deadline { return finish() }
        connect()
    }

    /// The wait before send `attempt + 1`: 250 ms, doubling to at most 2 s.
    static func retryDelay(afterAttempt attempt: Int) -> TimeAmount {
        .milliseconds(min(2000, 250 << min(3, max(0, attempt - 1))))
    }

    /// The current request failed: keep it for a retry with the same key, or drop it.
    private func failed() {
        guard let current else { return }
        if target.idempotencyKeys && current.attempt < target.attempts {
            tally.retries += 1
            isRetryPending = true
        } else {
            self.current = nil
        }
    }
}

/// Hands a publisher the answers read on its connection, and the connection's end.
final class HTTPPublishHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let publisher: HTTPPublisher
    private var scanner: HTTPResponseScanner

    init(publisher: HTTPPublisher, keepsBody: Bool) {
        self.publisher = publisher
        scanner = HTTPResponseScanner(keepsBody: keepsBody)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        // Answers are handed on after the scan: answering writes the next request, and a failed
        // write closes the channel, which must not reenter the scanner.
        var answers: [HTTPResponseScanner.Response] = []
        do {
            try buffer.withUnsafeReadableBytes { bytes in
                try scanner.feed(bytes) { answers.append($0) }
            }
        } catch {
            context.close(promise: nil)
        }
        for answer in answers { publisher.answered(answer) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        var answers: [HTTPResponseScanner.Response] = []
        try? scanner.finish { answers.append($0) }
        for answer in answers { publisher.answered(answer) }
        publisher.connectionEnded()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
