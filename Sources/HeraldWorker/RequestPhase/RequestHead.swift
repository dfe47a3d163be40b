// What the worker needs of a request, taken from its FastCGI params (the CGI variables nginx
// sends through fastcgi_params): method, path, query, and a few headers.

/// The parts of an HTTP request the routes look at.
struct RequestHead: Sendable, Equatable {
    var method: String
    /// The decoded path (nginx's `$document_uri`).
    var path: String
    /// The query parameters in order; a name may repeat.
    var query: [(name: String, value: String)]
    var lastEventID: String?
    var authorization: String?
    var contentLength: Int?
    /// The `Content-Type` header, as sent.
    var contentType: String?
    /// The `Idempotency-Key` header of a publish, as sent.
    var idempotencyKey: String?

    static func == (lhs: RequestHead, rhs: RequestHead) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
            && lhs.lastEventID == rhs.lastEventID && lhs.authorization == rhs.authorization
            && lhs.contentLength == rhs.contentLength && lhs.contentType == rhs.contentType
            && lhs.idempotencyKey == rhs.idempotencyKey
    }

    /// The CGI params `init(params:)` reads (the FastCGI front copies out only these).
    static let paramNames = [
        "REQUEST_METHOD", "DOCUMENT_URI", "REQUEST_URI", "QUERY_STRING", "HTTP_LAST_EVENT_ID", "HTTP_AUTHORIZATION",
        "CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_IDEMPOTENCY_KEY",
    ]

    /// Reads the head from CGI params. `DOCUMENT_URI` is preferred; `REQUEST_URI` without its
    /// query is the fallback for servers that do not send it.
    init(params: [String: String]) {
        method = params["REQUEST_METHOD"] ?? "GET"
        if let documentURI = params["DOCUMENT_URI"], !documentURI.isEmpty {
            path = documentURI
        } else {
            let requestURI = params["REQUEST_URI"] ?? "/"
            path = String(requestURI.prefix { $0 != "?" }).percentDecoded() ?? "/"
        }
        query = Self.parseQuery(params["QUERY_STRING"] ?? "")
        lastEventID = params["HTTP_LAST_EVENT_ID"]
        authorization = params["HTTP_AUTHORIZATION"]
        contentLength = params["CONTENT_LENGTH"].flatMap { Int($0) }
        contentType = params["CONTENT_TYPE"].flatMap { $0.isEmpty ? nil : $0 }
        idempotencyKey = params["HTTP_IDEMPOTENCY_KEY"]
    }

    init(
        method: String, path: String, query: [(name: String, value: String)] = [], lastEventID: String? = nil,
        authorization: String? = nil, contentLength: Int? = nil, contentType: String? = nil,
        idempotencyKey: String? = nil
    ) {
        self.contentType = contentType
        self.idempotencyKey = idempotencyKey
        self.method = method
        self.path = path
        self.query = query
        self.lastEventID = lastEventID
        self.authorization = authorization
        self.contentLength = contentLength
    }

    /// Every value of query parameter `name`.
    func queryValues(_ name: String) -> [String] {
        query.filter { $0.name == name }.map(\.value)
    }

    /// `application/x-www-form-urlencoded` query parsing; undecodable pairs are skipped.
    static func parseQuery(_ text: String) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = String(parts[0]).formDecoded() else { return nil }
            let value = parts.count > 1 ? String(parts[1]).formDecoded() : ""
            guard let value else { return nil }
            return (name, value)
        }
    }
}

extension String {
    /// Percent-decoding; `nil` if an escape is malformed or the result is not UTF-8.
    func percentDecoded() -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hexValue),
                    let low = iterator.next().flatMap(Self.hexValue)
                else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Form decoding: `+` is a space, then percent-decoding.
    func formDecoded() -> String? {
        replacingPlus().percentDecoded()
    }

    private func replacingPlus() -> String {
        String(decoding: utf8.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
