// The head of every CGI response a worker writes, in one place: short answers from the
// request phase, an event stream's prologue and a long poll's answer all carry the status
// line, their own headers, the configured CORS origin and their caching rule from here.

/// How a response may be cached or changed on its way.
enum CGICaching {
    /// A short answer (errors, publish ids, figures): `no-store`.
    case noStore
    /// A stream or a poll answer: `no-cache, no-transform`. `no-transform` keeps proxies and
    /// CDNs from compressing or re-chunking it, which holds events back.
    case liveFeed

    var header: String {
        switch self {
        case .noStore: "Cache-Control: no-store"
        case .liveFeed: "Cache-Control: no-cache, no-transform"
        }
    }
}

/// Encodes the CGI response head libfcgi or a stream sends as FastCGI STDOUT before the body.
enum CGIResponseHead {
    /// `Status:`, `headers` in order, `Access-Control-Allow-Origin: corsOrigin`, the caching
    /// header, and the blank line that ends the head.
    static func encode(status: Int, headers: [String], caching: CGICaching, corsOrigin: String) -> String {
        var text = "Status: \(status) \(reason(status))\r\n"
        for header in headers { text += header + "\r\n" }
        text += "Access-Control-Allow-Origin: \(corsOrigin)\r\n"
        text += caching.header + "\r\n\r\n"
        return text
    }

    /// The reason phrase of the statuses a worker sends.
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}
