// Routing from the request head alone: each path, method and query to its route or to the
// exact refusal a client gets, plus the head's CGI parsing and the token comparison.
import HeraldProtocol
import Testing

@testable import HeraldWorker

/// The channel rule as `ChannelNameError` words it.
private let channelRule = "channel names are 1 to 64 characters from A-Z a-z 0-9 _ - ."

private func router(token: String? = nil, maxBodyBytes: Int = 65536) -> Router {
    var configuration = WorkerConfiguration()
    configuration.publishToken = token
    configuration.maxBodyBytes = maxBodyBytes
    return Router(configuration: configuration)
}

/// A head as nginx's fastcgi_params would describe it.
private func head(
    _ method: String, _ path: String, query: String = "", lastEventID: String? = nil, authorization: String? = nil,
    contentLength: String? = nil, contentType: String? = nil, idempotencyKey: String? = nil
) -> RequestHead {
    var params = ["REQUEST_METHOD": method, "DOCUMENT_URI": path, "QUERY_STRING": query]
    params["REQUEST_URI"] = query.isEmpty ? path : path + "?" + query
    params["HTTP_LAST_EVENT_ID"] = lastEventID
    params["HTTP_AUTHORIZATION"] = authorization
    params["CONTENT_LENGTH"] = contentLength
    params["CONTENT_TYPE"] = contentType
    params["HTTP_IDEMPOTENCY_KEY"] = idempotencyKey
    return RequestHead(params: params)
}

private func text(_ status: Int, _ message: String, headers: [String] = []) -> Route {
    .reject(
        HTTPResponse(
            status: status, headers: ["Content-Type: text/plain; charset=utf-8"] + headers, body: message + "\n"))
}

private func methodNotAllowed(_ allowed: String) -> Route {
    text(405, "method not allowed (allowed: \(allowed))", headers: ["Allow: \(allowed)"])
}

private let unauthorized = text(
    401, "missing or wrong bearer token (send Authorization: Bearer <token>)", headers: ["WWW-Authenticate: Bearer"])

private let seventeen = (1...17).map { "channel=c\($0)" }.joined(separator: "&")
private let sixteen = (1...16).map { "channel=c\($0)" }.joined(separator: "&")

@Suite("Router")
struct RouterTests {
    static let subscriptions: [(RequestHead, Route)] = [
        (head("GET", "/stream/rooms"), .stream(channels: ["rooms"], resume: nil)),
        (
            head("GET", "/stream", query: "channel=a&channel=b&channel=a"),
            .stream(channels: ["a", "b"], resume: nil)
        ),
        (head("GET", "/stream/", query: "channel=x"), .stream(channels: ["x"], resume: nil)),
        (head("GET", "/stream/rooms", query: "channel=ignored"), .stream(channels: ["rooms"], resume: nil)),
        (head("GET", "/stream", query: sixteen), .stream(channels: (1...16).map { "c\($0)" }, resume: nil)),
        (
            head("GET", "/stream", query: sixteen + "&channel=c1"),  // 17 values, 16 channels
            .stream(channels: (1...16).map { "c\($0)" }, resume: nil)
        ),
        (head("GET", "/stream", query: seventeen), text(400, "too many channels: 17 (at most 16 per stream)")),
        (head("GET", "/stream"), text(400, "missing channel: use /stream/<channel> or /stream?channel=a&channel=b")),
        (
            head("GET", "/stream", query: "lastEventId=e-1"),
            text(400, "missing channel: use /stream/<channel> or /stream?channel=a&channel=b")
        ),
        (head("GET", "/stream/a b"), text(400, "invalid channel name: U+0020 is not allowed (\(channelRule))")),
        (head("GET", "/stream/a/b"), text(400, "invalid channel name: '/' is not allowed (\(channelRule))")),
        (head("GET", "/stream", query: "channel="), text(400, "invalid channel name: empty (\(channelRule))")),
        (
            head("GET", "/stream", query: "channel=ok&channel=%C3%A9"),
            text(400, "invalid channel name: '\u{E9}' is not allowed (\(channelRule))")
        ),
        (
            head("GET", "/stream/" + String(repeating: "x", count: 65)),
            text(400, "invalid channel name: 65 bytes long (\(channelRule))")
        ),
        (head("GET", "/poll/rooms"), .poll(channels: ["rooms"], resume: nil)),
        (head("GET", "/poll", query: "channel=a&channel=b&channel=a"), .poll(channels: ["a", "b"], resume: nil)),
        (head("GET", "/poll"), text(400, "missing channel: use /poll/<channel> or /poll?channel=a&channel=b")),
        (head("GET", "/poll", query: seventeen), text(400, "too many channels: 17 (at most 16 per stream)")),
        (head("GET", "/poll/a b"), text(400, "invalid channel name: U+0020 is not allowed (\(channelRule))")),
    ]

    @Test("routes subscriptions, deduplicating and checking their channels", arguments: subscriptions)
    func subscriptionRoutes(_ head: RequestHead, _ route: Route) {
        #expect(router().route(head) == route)
    }

    static let methods: [(RequestHead, Route)] = [
        (head("POST", "/stream/rooms"), methodNotAllowed("GET, OPTIONS")),
        (head("HEAD", "/stream/rooms"), methodNotAllowed("GET, OPTIONS")),
        (head("DELETE", "/poll/rooms"), methodNotAllowed("GET, OPTIONS")),
        (head("POST", "/status"), methodNotAllowed("GET, OPTIONS")),
        (head("GET", "/status"), .status),
        (head("OPTIONS", "/stream/rooms"), .preflight),
        (head("OPTIONS", "/publish/rooms"), .preflight),
        (head("OPTIONS", "/anything"), .preflight),
        (head("GET", "/nowhere"), text(404, "no such path: /nowhere (try /stream/<channel>)")),
        (head("GET", "/streams"), text(404, "no such path: /streams (try /stream/<channel>)")),
        (head("GET", "/"), text(404, "no such path: / (try /stream/<channel>)")),
        (
            head("GET", "/" + String(repeating: "p", count: 300)),
            text(404, "no such path: /" + String(repeating: "p", count: 199) + " (try /stream/<channel>)")
        ),
    ]

    @Test(
        "answers wrong methods with 405 and Allow, OPTIONS with a preflight, unknown paths with 404", arguments: methods
    )
    func methodRoutes(_ head: RequestHead, _ route: Route) {
        #expect(router().route(head) == route)
    }

    static let disabledMessage =
        "HTTP publishing is disabled: start the worker with HERALD_PUBLISH_TOKEN set, or publish with heraldctl"

    @Test("refuses HTTP publishing with 403 when no token is configured", arguments: [nil, ""] as [String?])
    func publishDisabled(_ token: String?) {
        let route = router(token: token).route(head("POST", "/publish/x", authorization: "Bearer anything"))
        #expect(route == text(403, Self.disabledMessage))
        guard case .reject(let response) = route else { return }
        #expect(response.body.contains("HERALD_PUBLISH_TOKEN"))
    }

    static let publishes: [(RequestHead, Route)] = [
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret"),
            .publish(channel: "x", event: "delta", merge: false, key: nil)
        ),
        (
            head("POST", "/publish/x", authorization: "bearer s3cret"),
            .publish(channel: "x", event: "delta", merge: false, key: nil)
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer  s3cret  "),
            .publish(channel: "x", event: "delta", merge: false, key: nil)
        ),
        (
            head("POST", "/publish/x", query: "event=booked&merge=1", authorization: "Bearer s3cret"),
            .publish(channel: "x", event: "booked", merge: true, key: nil)
        ),
        (
            head("POST", "/publish/x", query: "merge=true", authorization: "Bearer s3cret"),
            .publish(channel: "x", event: "delta", merge: true, key: nil)
        ),
        (
            head("POST", "/publish/x", query: "merge=0&event=a&event=b", authorization: "Bearer s3cret"),
            .publish(channel: "x", event: "a", merge: false, key: nil)
        ),
        (
            head("POST", "/publish/x", query: "merge=yes", authorization: "Bearer s3cret"),
            .publish(channel: "x", event: "delta", merge: false, key: nil)
        ),
        (head("POST", "/publish/x"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearer wrong"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearer s3cre"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearer s3cret2"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearer S3CRET"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearer"), unauthorized),
        (head("POST", "/publish/x", authorization: "Bearers3cret"), unauthorized),
        (head("POST", "/publish/x", authorization: "Basic czNjcmV0"), unauthorized),
        (head("POST", "/publish/x", authorization: "Basic s3cret"), unauthorized),
        (head("POST", "/publish/a b", authorization: "Bearer wrong"), unauthorized),  // no hint before auth
        (head("GET", "/publish/x", authorization: "Bearer s3cret"), methodNotAllowed("POST, OPTIONS")),
        (
            head("POST", "/publish/a b", authorization: "Bearer s3cret"),
            text(400, "invalid channel name: U+0020 is not allowed (\(channelRule))")
        ),
        (
            head("POST", "/publish", authorization: "Bearer s3cret", contentType: "application/x-ndjson"),
            .publishBatch
        ),
        (
            head("POST", "/publish/", authorization: "Bearer s3cret", contentType: "Application/X-NDJSON; charset=utf-8"),
            .publishBatch
        ),
        (head("POST", "/publish", contentType: "application/x-ndjson"), unauthorized),
        (
            head("POST", "/publish", authorization: "Bearer s3cret"),
            text(
                415,
                "a batch is sent as Content-Type: application/x-ndjson, one JSON event per line (or publish one event to /publish/<channel>)"
            )
        ),
        (
            head("POST", "/publish", authorization: "Bearer s3cret", contentType: "application/json"),
            text(
                415,
                "a batch is sent as Content-Type: application/x-ndjson, one JSON event per line (or publish one event to /publish/<channel>)"
            )
        ),
        (
            head(
                "POST", "/publish", authorization: "Bearer s3cret", contentLength: "1048577",
                contentType: "application/x-ndjson"),
            text(413, "batch of 1048577 bytes is too large (at most 1048576)")
        ),
        (
            head("POST", "/publish//", authorization: "Bearer s3cret"),
            text(400, "invalid channel name: '/' is not allowed (\(channelRule))")
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret", contentLength: "65537"),
            text(413, "body of 65537 bytes is too large (at most 65536)")
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret", contentLength: "65536"),
            .publish(channel: "x", event: "delta", merge: false, key: nil)
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret", idempotencyKey: "order-17/retry"),
            .publish(channel: "x", event: "delta", merge: false, key: "order-17/retry")
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret", idempotencyKey: "two words"),
            text(400, "invalid idempotency key: 1 to 255 visible ASCII characters (no spaces)")
        ),
        (
            head("POST", "/publish/x", authorization: "Bearer s3cret", idempotencyKey: ""),
            text(400, "invalid idempotency key: 1 to 255 visible ASCII characters (no spaces)")
        ),
        (
            head(
                "POST", "/publish", authorization: "Bearer s3cret", contentType: "application/x-ndjson",
                idempotencyKey: "k"),
            text(400, "a batch carries its idempotency keys in each line's \"key\", not in an Idempotency-Key header")
        ),
    ]

    @Test("routes publishes only with the right bearer token, and checks channel and size", arguments: publishes)
    func publishRoutes(_ head: RequestHead, _ route: Route) {
        #expect(router(token: "s3cret").route(head) == route)
    }

    static let resumes: [(RequestHead, String?)] = [
        (head("GET", "/stream/a"), nil),
        (head("GET", "/stream/a", lastEventID: "e-5"), "e-5"),
        (head("GET", "/stream/a", query: "lastEventId=e-3"), "e-3"),
        (head("GET", "/stream/a", query: "lastEventId=e-3", lastEventID: "e-5"), "e-5"),
        (head("GET", "/stream/a", query: "lastEventId=e-3&lastEventId=e-4"), "e-3"),
        (head("GET", "/stream", query: "channel=a&lastEventId=e%2D7"), "e-7"),
        (head("GET", "/stream/a", query: "lasteventid=e-3"), nil),
    ]

    @Test("takes the resume id from Last-Event-ID, else from the lastEventId query", arguments: resumes)
    func resumeIDs(_ head: RequestHead, _ resume: String?) {
        #expect(router().route(head) == .stream(channels: ["a"], resume: resume))
        var poll = head
        poll.path = head.path.replacingFirstStream()
        #expect(router().route(poll) == .poll(channels: ["a"], resume: resume))
    }

    // MARK: Token comparison

    static let comparisons: [(String, String, Bool)] = [
        ("", "", true),
        ("a", "a", true),
        ("s3cret", "s3cret", true),
        ("\u{E9}t\u{E9}", "\u{E9}t\u{E9}", true),
        ("s3cret", "s3cres", false),
        ("s3cret", "t3cret", false),
        ("s3cret", "S3CRET", false),
        ("s3cre", "s3cret", false),  // a prefix
        ("s3cret", "s3cre", false),
        ("", "a", false),
        ("a", "", false),
        ("ab", "abc", false),
        ("abc\u{0}", "abc", false),
        ("e\u{301}", "\u{E9}", false),  // canonically equal strings, different bytes
    ]

    @Test("compares tokens byte for byte, whatever their lengths", arguments: comparisons)
    func constantTimeEqual(_ a: String, _ b: String, _ equal: Bool) {
        #expect(Router.constantTimeEqual(a, b) == equal)
        #expect(Router.constantTimeEqual(b, a) == equal)
    }

    static let authorizations: [(String, String?)] = [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer  abc ", "abc"),
        ("Bearer a b", "a b"),
        ("Bearer", nil),
        ("Bearer ", nil),
        ("Bearerabc", nil),
        ("Basic abc", nil),
        ("", nil),
    ]

    @Test("takes the token out of a Bearer authorization only", arguments: authorizations)
    func bearerToken(_ authorization: String, _ token: String?) {
        #expect(Router.bearerToken(authorization) == token)
    }

    // MARK: Responses

    @Test("writes a short response as CGI: status line, headers, CORS, no-store, body")
    func cgiResponse() {
        let response = HTTPResponse.text(405, "nope", headers: ["Allow: GET"])
        #expect(
            response.cgi(corsOrigin: "https://example.org")
                == "Status: 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nAllow: GET\r\n"
                + "Access-Control-Allow-Origin: https://example.org\r\nCache-Control: no-store\r\n\r\nnope\n")
    }

    static let reasons: [(Int, String)] = [
        (200, "OK"), (204, "No Content"), (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"),
        (404, "Not Found"), (405, "Method Not Allowed"), (413, "Content Too Large"),
        (415, "Unsupported Media Type"), (500, "Internal Server Error"), (503, "Service Unavailable"),
        (504, "Gateway Timeout"), (418, "Status"),
    ]

    @Test("names each status it uses", arguments: reasons)
    func reasonPhrases(_ status: Int, _ reason: String) {
        #expect(CGIResponseHead.reason(status) == reason)
    }
}

extension String {
    /// `/stream…` as `/poll…`.
    fileprivate func replacingFirstStream() -> String {
        hasPrefix("/stream") ? "/poll" + dropFirst("/stream".count) : self
    }
}

@Suite("Request head")
struct RequestHeadTests {
    @Test("prefers DOCUMENT_URI to REQUEST_URI for the path")
    func documentURIWins() {
        let head = RequestHead(params: [
            "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/stream/a", "REQUEST_URI": "/stream/b?channel=c",
        ])
        #expect(head.path == "/stream/a")
    }

    static let fallbacks: [([String: String], String)] = [
        (["REQUEST_URI": "/stream/a%2Db?channel=z"], "/stream/a-b"),
        (["DOCUMENT_URI": "", "REQUEST_URI": "/stream/b"], "/stream/b"),
        (["REQUEST_URI": "/stream/%G1"], "/"),
        (["REQUEST_URI": "/a+b"], "/a+b"),  // `+` is a space only in a query
        (["REQUEST_URI": "/caf%C3%A9"], "/caf\u{E9}"),
        (["REQUEST_URI": "/bad%FF"], "/"),  // not UTF-8
        ([:], "/"),
    ]

    @Test("falls back to the decoded REQUEST_URI without its query", arguments: fallbacks)
    func requestURIFallback(_ params: [String: String], _ path: String) {
        #expect(RequestHead(params: params).path == path)
    }

    @Test("reads method, headers and content length from the CGI variables")
    func cgiVariables() {
        let head = RequestHead(params: [
            "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/publish/x", "QUERY_STRING": "event=a",
            "HTTP_LAST_EVENT_ID": "e-9", "HTTP_AUTHORIZATION": "Bearer t", "CONTENT_LENGTH": "12",
        ])
        #expect(
            head
                == RequestHead(
                    method: "POST", path: "/publish/x", query: [("event", "a")], lastEventID: "e-9",
                    authorization: "Bearer t", contentLength: 12))
        let bare = RequestHead(params: [:])
        #expect(bare == RequestHead(method: "GET", path: "/"))
    }

    @Test("ignores a content length that is not a number", arguments: ["", "abc", "-", "12x", " 12"])
    func badContentLength(_ value: String) {
        #expect(RequestHead(params: ["CONTENT_LENGTH": value]).contentLength == nil)
    }

    static let queries: [(String, [String])] = [
        ("a=%2D", ["a=-"]),
        ("a=x+y", ["a=x y"]),
        ("a=1%2B1", ["a=1+1"]),
        ("x%5By%5D=1", ["x[y]=1"]),
        ("na+me=v", ["na me=v"]),
        ("a=%e2%82%AC", ["a=\u{20AC}"]),
        ("a=b=c", ["a=b=c"]),
        ("flag", ["flag="]),
        ("a=", ["a="]),
        ("=v", ["=v"]),
        ("a=1&&b=2&", ["a=1", "b=2"]),
        ("c=%G1", []),
        ("a=1&c=%G1&b=2", ["a=1", "b=2"]),
        ("%G1=x&b=2", ["b=2"]),
        ("a=%", []),
        ("a=%2", []),
        ("a=%FF", []),  // not UTF-8
        ("channel=a&channel=b&channel=a", ["channel=a", "channel=b", "channel=a"]),
        ("", []),
    ]

    @Test("decodes the query as a form: %XX and +, skipping undecodable pairs", arguments: queries)
    func queryDecoding(_ text: String, _ pairs: [String]) {
        #expect(RequestHead.parseQuery(text).map { "\($0.name)=\($0.value)" } == pairs)
    }

    @Test("gives every value of a repeated query parameter in order")
    func queryValues() {
        let head = RequestHead(params: ["QUERY_STRING": "channel=b&x=1&channel=a&channel=b"])
        #expect(head.queryValues("channel") == ["b", "a", "b"])
        #expect(head.queryValues("x") == ["1"])
        #expect(head.queryValues("missing") == [])
    }
}

/// The publisher's API besides /publish: presence (`GET /channels/<channel>`) and state
/// replacement (`PUT /state/<channel>`), both behind the publish token.
@Suite struct PublisherRouteTests {
    static let token = "publisher-route-token-0123"
    static let bearer = "Bearer \(token)"

    /// (method, path prefix, the other method tried) of each route.
    static let routes: [(String, String, String)] = [("GET", "/channels/", "POST"), ("PUT", "/state/", "POST")]

    @Test(arguments: routes)
    func needsThePublishTokenAndAValidName(_ method: String, _ prefix: String, _ otherMethod: String) {
        let router = router(token: Self.token)
        #expect(
            HeraldWorkerTests.router().route(head(method, prefix + "rooms", authorization: Self.bearer))
                == text(
                    403,
                    "HTTP publishing is disabled: start the worker with HERALD_PUBLISH_TOKEN set, or publish with heraldctl"))
        let unauthorized = text(
            401, "missing or wrong bearer token (send Authorization: Bearer <token>)",
            headers: ["WWW-Authenticate: Bearer"])
        #expect(router.route(head(method, prefix + "rooms")) == unauthorized)
        #expect(router.route(head(method, prefix + "rooms", authorization: "Bearer nope")) == unauthorized)
        #expect(
            router.route(head(otherMethod, prefix + "rooms", authorization: Self.bearer))
                == methodNotAllowed("\(method), OPTIONS"))
        #expect(
            router.route(head(method, prefix + "a b", authorization: Self.bearer))
                == text(400, "invalid channel name: U+0020 is not allowed (\(channelRule))"))
        #expect(
            router.route(head(method, prefix, authorization: Self.bearer))
                == text(400, "invalid channel name: empty (\(channelRule))"))
    }

    @Test func routesPresenceAndStateReplacement() {
        let router = router(token: Self.token, maxBodyBytes: 10)
        #expect(router.route(head("GET", "/channels/rooms", authorization: Self.bearer)) == .presence(channel: "rooms"))
        #expect(
            router.route(head("PUT", "/state/rooms", authorization: Self.bearer, idempotencyKey: "k-1"))
                == .publish(channel: "rooms", event: "delta", merge: false, key: "k-1", replace: true))
        #expect(
            router.route(head("PUT", "/state/rooms", authorization: Self.bearer, contentLength: "11"))
                == text(413, "body of 11 bytes is too large (at most 10)"))
    }
}
