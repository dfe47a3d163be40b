// Which route a request takes, decided from its head alone (no I/O), with the error each bad
// request gets: a status and a short text that says what was wrong. Subscriptions to private
// channels are checked here too (SubscriberTokens), before a socket goes to the event loops.
import Foundation
import HeraldProtocol

/// A short response written in the request phase.
struct HTTPResponse: Sendable, Equatable {
    var status: Int
    var headers: [String] = []
    var body: String

    /// A plain-text response; the body gets a final line break.
    static func text(_ status: Int, _ message: String, headers: [String] = []) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: ["Content-Type: text/plain; charset=utf-8"] + headers, body: message + "\n")
    }

    /// The CGI response (status line, headers, blank line, body) that libfcgi sends as FCGI_STDOUT.
    func cgi(corsOrigin: String) -> String {
        CGIResponseHead.encode(status: status, headers: headers, caching: .noStore, corsOrigin: corsOrigin) + body
    }
}

/// Where a request goes.
enum Route: Sendable, Equatable {
    /// An event stream on these channels, resuming after `resume` if given.
    case stream(channels: [String], resume: String?)
    /// A long poll: the events after `resume` as JSON, or the next one, or none after a while.
    case poll(channels: [String], resume: String?)
    /// A CORS preflight.
    case preflight
    /// An HTTP publish whose body is still to be read, with its idempotency key if it has one.
    /// With `replace`, the body is the channel's new state (`PUT /state/<channel>`).
    case publish(channel: String, event: String, merge: Bool, key: String?, replace: Bool = false)
    /// An NDJSON batch (`POST /publish`) whose body is still to be read.
    case publishBatch
    /// Who is subscribed to a channel, over every worker of the hub (`GET /channels/<channel>`).
    case presence(channel: String)
    /// The worker's figures.
    case status
    /// The hub's and every worker's figures in the Prometheus text format.
    case metrics
    /// Answered at once with this response.
    case reject(HTTPResponse)
}

/// A route, and what the subscriber token check decided on the way (for the log).
struct RoutingDecision: Sendable, Equatable {
    var route: Route
    var token: TokenDecision = .notNeeded
    /// When the granted subscriber token expires: a stream opened with it ends then.
    var tokenExpiry: TokenExpiry? = nil
}

/// Maps request heads to routes.
struct Router: Sendable {
    let maxChannelsPerStream: Int
    let publishToken: String?
    let maxBodyBytes: Int
    let maxBatchBytes: Int
    /// Which channels are private, and the key their tokens are checked with.
    let subscriberTokens: SubscriberTokens

    init(configuration: WorkerConfiguration) {
        maxChannelsPerStream = configuration.maxChannelsPerStream
        publishToken = configuration.publishToken
        maxBodyBytes = configuration.maxBodyBytes
        maxBatchBytes = configuration.maxBatchBytes
        subscriberTokens = configuration.subscriberTokens
    }

    func route(_ head: RequestHead, now: Date = Date()) -> Route {
        decide(head, now: now).route
    }

    /// The route, with the token decision for a subscription (`now` is the time tokens are checked against).
    func decide(_ head: RequestHead, now: Date = Date()) -> RoutingDecision {
        let path = head.path
        if head.method != "OPTIONS" {
            if path == "/stream" || path.hasPrefix("/stream/") {
                guard head.method == "GET" else {
                    return RoutingDecision(route: .reject(methodNotAllowed("GET, OPTIONS")))
                }
                return subscriptionRoute(head, prefix: "/stream", now: now)
            }
            if path == "/poll" || path.hasPrefix("/poll/") {
                guard head.method == "GET" else {
                    return RoutingDecision(route: .reject(methodNotAllowed("GET, OPTIONS")))
                }
                var decision = subscriptionRoute(head, prefix: "/poll", now: now)
                if case .stream(let channels, let resume) = decision.route {
                    decision.route = .poll(channels: channels, resume: resume)
                }
                return decision
            }
        }
        return RoutingDecision(route: otherRoute(head))
    }

    /// Every route but the subscriptions.
    private func otherRoute(_ head: RequestHead) -> Route {
        if head.method == "OPTIONS" { return .preflight }
        let path = head.path
        if path == "/publish" || path.hasPrefix("/publish/") {
            return publishRoute(head)
        }
        if path.hasPrefix("/channels/") {
            return presenceRoute(head)
        }
        if path.hasPrefix("/state/") {
            return stateRoute(head)
        }
        if path == "/status" {
            guard head.method == "GET" else { return .reject(methodNotAllowed("GET, OPTIONS")) }
            return .status
        }
        if path == "/metrics" {
            guard head.method == "GET" else { return .reject(methodNotAllowed("GET, OPTIONS")) }
            return .metrics
        }
        return .reject(.text(404, "no such path: \(path.prefix(200)) (try /stream/<channel>)"))
    }

    /// The channels and resume id of a `/stream` or `/poll` request, once their names are valid
    /// and every private one among them is covered by the subscriber token.
    private func subscriptionRoute(_ head: RequestHead, prefix: String, now: Date) -> RoutingDecision {
        var channels: [String]
        if head.path == prefix || head.path == prefix + "/" {
            channels = head.queryValues("channel")
            if channels.isEmpty {
                return RoutingDecision(
                    route: .reject(
                        .text(400, "missing channel: use \(prefix)/<channel> or \(prefix)?channel=a&channel=b")))
            }
        } else {
            channels = [String(head.path.dropFirst(prefix.count + 1))]
        }
        var seen = Set<String>()
        channels = channels.filter { seen.insert($0).inserted }
        if channels.count > maxChannelsPerStream {
            return RoutingDecision(
                route: .reject(
                    .text(400, "too many channels: \(channels.count) (at most \(maxChannelsPerStream) per stream)")))
        }
        for channel in channels {
            do {
                _ = try ChannelName(validating: channel)
            } catch {
                return RoutingDecision(route: .reject(.text(400, error.description)))
            }
        }
        let (token, expires) = subscriberTokens.check(channels: channels, token: Self.subscriberToken(head), now: now)
        if case .refused(let refusal, _) = token {
            // RFC 6750 §3.1: no error code when no token was sent at all.
            let challenge: String
            if case .missing = refusal { challenge = "Bearer" } else { challenge = #"Bearer error="invalid_token""# }
            return RoutingDecision(
                route: .reject(.text(401, refusal.description, headers: ["WWW-Authenticate: \(challenge)"])),
                token: token)
        }
        // EventSource cannot set headers on its first connection, so the query may carry the id.
        let resume = head.lastEventID ?? head.queryValues("lastEventId").first
        return RoutingDecision(route: .stream(channels: channels, resume: resume), token: token, tokenExpiry: expires)
    }

    /// A subscriber token: `Authorization: Bearer <jwt>`, else the `token` query parameter
    /// (EventSource cannot set headers).
    static func subscriberToken(_ head: RequestHead) -> String? {
        if let bearer = head.authorization.flatMap(bearerToken), !bearer.isEmpty { return bearer }
        return head.queryValues("token").first
    }

    /// Why a request for the publisher's API (publishing, presence) is refused: HTTP
    /// publishing off, another method than `method`, or a missing or wrong bearer token.
    private func publisherRefusal(_ head: RequestHead, method: String) -> HTTPResponse? {
        guard let token = publishToken, !token.isEmpty else {
            return .text(
                403,
                "HTTP publishing is disabled: start the worker with HERALD_PUBLISH_TOKEN set, or publish with heraldctl")
        }
        guard head.method == method else { return methodNotAllowed("\(method), OPTIONS") }
        guard let presented = head.authorization.flatMap(Self.bearerToken), Self.constantTimeEqual(presented, token)
        else {
            return .text(
                401, "missing or wrong bearer token (send Authorization: Bearer <token>)",
                headers: ["WWW-Authenticate: Bearer"])
        }
        return nil
    }

    /// `GET /channels/<channel>`: who is subscribed, for publishers (the publish token).
    private func presenceRoute(_ head: RequestHead) -> Route {
        if let refusal = publisherRefusal(head, method: "GET") { return .reject(refusal) }
        let channel = String(head.path.dropFirst("/channels/".count))
        do {
            _ = try ChannelName(validating: channel)
        } catch {
            return .reject(.text(400, "\(error)"))
        }
        return .presence(channel: channel)
    }

    /// `PUT /state/<channel>`: the body replaces the channel's state (the publish token).
    private func stateRoute(_ head: RequestHead) -> Route {
        if let refusal = publisherRefusal(head, method: "PUT") { return .reject(refusal) }
        let channel = String(head.path.dropFirst("/state/".count))
        if let refusal = singlePublishRefusal(head, channel: channel) { return .reject(refusal) }
        return .publish(channel: channel, event: "delta", merge: false, key: head.idempotencyKey, replace: true)
    }

    /// The checks of one event's head (`/publish/<channel>`, `/state/<channel>`): the channel
    /// name, the body's announced length, the idempotency key.
    private func singlePublishRefusal(_ head: RequestHead, channel: String) -> HTTPResponse? {
        do {
            _ = try ChannelName(validating: channel)
        } catch {
            return .text(400, error.description)
        }
        if let length = head.contentLength, length > maxBodyBytes {
            return .text(413, "body of \(length) bytes is too large (at most \(maxBodyBytes))")
        }
        if let key = head.idempotencyKey, let refusal = PublishRules.keyRefusal(key) {
            return .text(400, refusal)
        }
        return nil
    }

    private func publishRoute(_ head: RequestHead) -> Route {
        if let refusal = publisherRefusal(head, method: "POST") { return .reject(refusal) }
        if head.path == "/publish" || head.path == "/publish/" {
            let mediaType = head.contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
            guard mediaType?.lowercased() == PublishBatch.mediaType else {
                return .reject(
                    .text(
                        415,
                        "a batch is sent as Content-Type: \(PublishBatch.mediaType), one JSON event per line (or publish one event to /publish/<channel>)"
                    ))
            }
            if head.idempotencyKey != nil {
                return .reject(
                    .text(400, "a batch carries its idempotency keys in each line's \"key\", not in an Idempotency-Key header"))
            }
            if let length = head.contentLength, length > maxBatchBytes {
                return .reject(.text(413, "batch of \(length) bytes is too large (at most \(maxBatchBytes))"))
            }
            return .publishBatch
        }
        let channel = String(head.path.dropFirst("/publish/".count))
        if let refusal = singlePublishRefusal(head, channel: channel) { return .reject(refusal) }
        let merge = head.queryValues("merge").first.map { $0 == "1" || $0 == "true" } ?? false
        return .publish(
            channel: channel, event: head.queryValues("event").first ?? "delta", merge: merge, key: head.idempotencyKey)
    }

    private func methodNotAllowed(_ allowed: String) -> HTTPResponse {
        .text(405, "method not allowed (allowed: \(allowed))", headers: ["Allow: \(allowed)"])
    }

    /// The token of `Bearer <token>` (scheme case-insensitive, spaces around the token dropped);
    /// nil for another scheme or no token.
    static func bearerToken(_ authorization: String) -> String? {
        let bytes = authorization.utf8
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        guard bytes[..<space].elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }) else { return nil }
        let rest = bytes[bytes.index(after: space)...]
        guard let first = rest.firstIndex(where: { $0 != UInt8(ascii: " ") }),
            let last = rest.lastIndex(where: { $0 != UInt8(ascii: " ") })
        else { return nil }
        return String(Substring(authorization.utf8[first...last]))
    }

    /// Compares without an early exit, so timing does not reveal how much of a token matched.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                var difference = UInt8(x.count == y.count ? 0 : 1)
                for index in 0..<max(x.count, y.count) {
                    difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0xFF)
                }
                return difference == 0
            }
        }
    }
}
