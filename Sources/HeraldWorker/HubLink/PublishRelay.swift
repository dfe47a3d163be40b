// HTTP publishes after their request phase: the accept thread hands over the connected socket
// and the checked events, and the hub link's event loop sends them to the hub and writes the
// answer (FastCGI STDOUT and END_REQUEST) when the hub acknowledges. No accept thread waits for
// the hub. What bounds publishes in flight is `--max-publishes-in-flight`: one more is answered
// `503` with `Retry-After` by the accept thread itself.
import HeraldProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Relays HTTP publishes to the hub and answers them from the event loop.
final class PublishRelay: Sendable {
    let link: HubLink
    let logger: Logger
    let corsOrigin: String
    let limit: Int
    private let inFlight = NIOLockedValueBox(0)

    init(link: HubLink, configuration: WorkerConfiguration, logger: Logger) {
        self.link = link
        self.logger = logger
        corsOrigin = configuration.corsOrigin
        limit = configuration.maxPublishesInFlight
    }

    /// Publishes handed over and not yet answered.
    var count: Int { inFlight.withLockedValue { $0 } }

    /// Takes a place for one more publish, or false when `limit` are in flight already.
    func reserve() -> Bool {
        inFlight.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    /// Gives back a place `reserve` took, for a publish that was not relayed after all.
    func release() {
        inFlight.withLockedValue { $0 -= 1 }
    }

    /// What a publisher sees when the bound is reached.
    var fullAnswer: HTTPResponse {
        .text(
            503, "\(limit) publishes are already waiting for the hub on this worker; try again shortly",
            headers: ["Retry-After: 1"])
    }

    /// Sends `requests` (one event, or a batch when `batch`) to the hub and answers the request
    /// on `fd` when the hub does. Takes over `fd` and the place `reserve` took.
    func relay(fd: Int32, requestID: UInt16, requests: [PublishRequest], batch: Bool) {
        let link = self.link
        link.publish(requests).whenComplete { [self] result in
            let answer = Self.answer(result, epoch: link.epochOnLoop, count: requests.count, batch: batch)
            write(answer, fd: fd, requestID: requestID)
        }
    }

    /// The HTTP answer to a hub's result: every outcome a publisher can get, in one place.
    static func answer(_ result: Result<PublishResult, any Error>, epoch: Epoch?, count: Int, batch: Bool)
        -> HTTPResponse
    {
        switch result {
        case .success(.accepted(let first, let repeats)):
            let sequences = PublishResult.accepted(sequence: first, repeats: repeats).sequences(count: count) ?? []
            let ids = sequences.map { sequence in
                epoch.map { EventID(epoch: $0, sequence: sequence).description } ?? "\(sequence)"
            }
            let repeatedLines = repeats.map { $0.index + 1 }
            // A repeat (its idempotency key named an earlier event): that event's id, not published again.
            let replayed = repeatedLines.isEmpty ? [] : ["Idempotent-Replayed: true"]
            if batch {
                return HTTPResponse(
                    status: 200, headers: ["Content-Type: application/json"] + replayed,
                    body: PublishBatch.idsDocument(ids, repeatedLines: repeatedLines) + "\n")
            }
            return HTTPResponse(
                status: 200, headers: ["Content-Type: text/plain; charset=utf-8"] + replayed, body: ids[0] + "\n")
        case .success(.refused(let reason)):
            return .text(400, reason)
        case .success(.unavailable(let reason)):
            return .text(503, reason + " (not published)", headers: ["Retry-After: 1"])
        case .success(.uncertain(let reason)):
            return .text(504, reason)
        case .failure(let error as HubUnavailableError) where error.sent:
            return .text(504, error.description)
        case .failure(let error):
            return .text(503, "\(error) (not published)", headers: ["Retry-After: 1"])
        }
    }

    /// Writes the answer as FastCGI records on the event loop, closes the connection, and
    /// frees the publish's place. The answer (a few hundred bytes; tens of KB for a large
    /// batch) almost always fits the empty send buffer of the socket nginx just used for the
    /// request, so one non-blocking send writes it whole; only what does not fit (nginx not
    /// reading) goes through a SwiftNIO channel, which waits until the socket is writable.
    private func write(_ answer: HTTPResponse, fd: Int32, requestID: UInt16) {
        var record = FastCGIRecords.stdout(
            requestID: requestID, content: ByteBuffer(string: answer.cgi(corsOrigin: corsOrigin)))
        var end = FastCGIRecords.end(requestID: requestID)
        record.writeBuffer(&end)
        let sent = record.withUnsafeReadableBytes {
            send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        }
        if sent == record.readableBytes || (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            // Written, or nginx is gone (it closed the connection): either way this answer is done.
            close(fd)
            release()
            return
        }
        record.moveReaderIndex(forwardBy: max(0, sent))
        let bytes = record
        let logger = self.logger
        ClientBootstrap(group: link.eventLoop).withConnectedSocket(NIOBSDSocket.Handle(fd)).whenComplete {
            [self] result in
            release()
            switch result {
            case .success(let channel):
                channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                logger.warning("could not answer a publish", metadata: ["error": "\(error)"])
            }
        }
    }
}
