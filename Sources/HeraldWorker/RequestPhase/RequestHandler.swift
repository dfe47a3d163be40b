// What a libfcgi thread does with one accepted request: route it (checking the subscriber
// token of a private subscription), then answer it at once (preflight, status, errors), or
// hand it to the event loops: a stream, or a checked publish that the hub will acknowledge.
import HeraldMetrics
import HeraldProtocol
import Logging
import NIOCore

/// Handles requests on an accept thread. Blocking here is fine: these are dedicated threads.
struct RequestHandler {
    let core: WorkerCore
    let router: Router

    /// The most STDIN a stream request may carry (a GET has none).
    static let maxStreamRequestBody = 4096

    func handle(_ connection: FastCGIConnection) {
        let head = RequestHead(params: connection.params())
        let cors = core.configuration.corsOrigin
        let decision = router.decide(head)
        log(decision, head)
        switch decision.route {
        case .reject(let response):
            connection.respond(response.cgi(corsOrigin: cors))
        case .preflight:
            let response = HTTPResponse(
                status: 204,
                headers: [
                    "Access-Control-Allow-Methods: GET, OPTIONS",
                    "Access-Control-Allow-Headers: Last-Event-ID, Cache-Control, X-Requested-With, Authorization, Idempotency-Key",
                    "Access-Control-Max-Age: 86400",
                ], body: "")
            connection.respond(response.cgi(corsOrigin: cors))
        case .status:
            do {
                let stats = try core.stats().wait()
                let response = HTTPResponse(
                    status: 200, headers: ["Content-Type: application/json"], body: WorkerStatsJSON.encode(stats) + "\n"
                )
                connection.respond(response.cgi(corsOrigin: cors))
            } catch {
                connection.respond(HTTPResponse.text(500, "could not gather figures: \(error)").cgi(corsOrigin: cors))
            }
        case .presence(let channel):
            do {
                let presence = try core.link.presence(of: channel).wait()
                let response = HTTPResponse(
                    status: 200, headers: ["Content-Type: application/json"], body: WorkerStatsJSON.encode(presence) + "\n")
                connection.respond(response.cgi(corsOrigin: cors))
            } catch {
                let response = HTTPResponse.text(503, "the hub cannot say: \(error)", headers: ["Retry-After: 1"])
                connection.respond(response.cgi(corsOrigin: cors))
            }
        case .metrics:
            // The whole installation through the hub; this worker alone if the hub is away.
            let text: String
            if let hub = try? core.link.hubStats().wait() {
                text = PrometheusExposition.render(hub: hub, workers: hub.workers)
            } else if let own = try? core.stats().wait() {
                text = PrometheusExposition.render(hub: nil, workers: [own])
            } else {
                text = PrometheusExposition.render(hub: nil, workers: [])
            }
            let headers = ["Content-Type: \(PrometheusExposition.contentType)"]
            connection.respond(HTTPResponse(status: 200, headers: headers, body: text).cgi(corsOrigin: cors))
        case .publish(let channel, let event, let merge, let key, let replace):
            let limit = core.configuration.maxBodyBytes
            let body: [UInt8]
            switch connection.readBody(limit: limit) {
            case .complete(let bytes): body = bytes
            case .tooLarge:
                connection.respond(HTTPResponse.text(413, "body is too large (at most \(limit) bytes)").cgi(corsOrigin: cors))
                return
            case .failed: return connection.abandon()
            }
            guard let data = String(validating: body, as: UTF8.self) else {
                connection.respond(HTTPResponse.text(400, "the body must be UTF-8 text").cgi(corsOrigin: cors))
                return
            }
            var request = PublishRequest(channel: channel, name: event, data: data, merge: merge, key: key)
            request.replace = replace
            if let refusal = PublishRules.refusal(for: request, maxDataBytes: limit) {
                connection.respond(HTTPResponse.text(400, refusal).cgi(corsOrigin: cors))
                return
            }
            handOverPublish(connection, [request], batch: false)
        case .publishBatch:
            let configuration = core.configuration
            let body: [UInt8]
            switch connection.readBody(limit: configuration.maxBatchBytes) {
            case .complete(let bytes): body = bytes
            case .tooLarge:
                let response = HTTPResponse.text(413, "batch is too large (at most \(configuration.maxBatchBytes) bytes)")
                connection.respond(response.cgi(corsOrigin: cors))
                return
            case .failed: return connection.abandon()
            }
            guard let text = String(validating: body, as: UTF8.self) else {
                connection.respond(HTTPResponse.text(400, "the body must be UTF-8 text").cgi(corsOrigin: cors))
                return
            }
            switch PublishBatch.decode(
                text, maxEvents: configuration.maxBatchEvents, maxDataBytes: configuration.maxBodyBytes)
            {
            case .failure(let refusal):
                connection.respond(HTTPResponse.text(400, refusal.description + "; nothing was published").cgi(corsOrigin: cors))
            case .success(let requests):
                handOverPublish(connection, requests, batch: true)
            }
        case .stream(let channels, let resume):
            handOver(connection, channels: channels, resume: resume, kind: .stream, tokenExpiry: decision.tokenExpiry)
        case .poll(let channels, let resume):
            handOver(connection, channels: channels, resume: resume, kind: .poll)
        }
    }

    /// Names who a private subscription's token was made for (`sub`), and why one was refused.
    /// Never the token itself.
    private func log(_ decision: RoutingDecision, _ head: RequestHead) {
        let channels: Logger.MetadataValue
        switch decision.route {
        case .stream(let names, _), .poll(let names, _): channels = "\(names.joined(separator: ","))"
        default: channels = "\(head.path.prefix(200))"
        }
        switch decision.token {
        case .notNeeded:
            break
        case .granted(let subject):
            core.logger.debug(
                "private subscription allowed",
                metadata: ["stream.channels": channels, "token.sub": "\(subject ?? "-")"])
        case .refused(let refusal, let subject):
            core.logger.info(
                "private subscription refused",
                metadata: [
                    "request.path": channels, "token.sub": "\(subject ?? "-")", "token.refusal": "\(refusal)",
                ])
        }
    }

    /// Gives a stream or long poll to the event loops.
    private func handOver(
        _ connection: FastCGIConnection, channels: [String], resume: String?, kind: Subscriber.Kind,
        tokenExpiry: TokenExpiry? = nil
    ) {
        // Read STDIN to its end so libfcgi's buffer holds nothing the event loop would miss.
        switch connection.readBody(limit: Self.maxStreamRequestBody) {
        case .complete: break
        case .tooLarge:
            let response = HTTPResponse.text(413, "a stream request carries no body")
            connection.respond(response.cgi(corsOrigin: core.configuration.corsOrigin))
            return
        case .failed: return connection.abandon()
        }
        let requestID = connection.requestID
        let fd = connection.detachSocket()
        guard fd >= 0 else { return }
        // A garbage id is treated as absent: the client gets a fresh init, never an error.
        let resumeID = resume.flatMap { EventID(parsing: $0) }
        core.openStream(
            fd: fd, requestID: requestID, channels: channels, resume: resumeID, kind: kind, tokenExpiry: tokenExpiry)
    }

    /// Gives checked events to the publish relay, which answers once the hub does; answers
    /// `503` at once when too many publishes wait already.
    private func handOverPublish(_ connection: FastCGIConnection, _ requests: [PublishRequest], batch: Bool) {
        let relay = core.publishes
        guard relay.reserve() else {
            connection.respond(relay.fullAnswer.cgi(corsOrigin: core.configuration.corsOrigin))
            return
        }
        let requestID = connection.requestID
        let fd = connection.detachSocket()
        guard fd >= 0 else {
            relay.release()
            return
        }
        relay.relay(fd: fd, requestID: requestID, requests: requests, batch: batch)
    }
}
