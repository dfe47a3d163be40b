// The one place that writes an occupancy webhook: its JSON body and its signature.
import Crypto
import HeraldProtocol

#if canImport(Glibc)
    import Glibc
#endif

enum WebhookBody {
    /// `{"id":…,"type":…,"channel":…,"subscribers":N,"time":"2026-12-07T06:01:02.345Z"}`;
    /// `id` is the same on every retry, so a receiver can drop repeats.
    static func json(_ notice: OccupancyNotice, id: String) -> String {
        "{\"id\":\(JSONValue.quoted(id)),\"type\":\"\(notice.kind.rawValue)\","
            + "\"channel\":\(JSONValue.quoted(notice.channel)),\"subscribers\":\(notice.subscribers),"
            + "\"time\":\"\(timestamp(notice.timeMilliseconds))\"}"
    }

    /// `sha256=` and the hex HMAC-SHA256 of `body` keyed by `secret`.
    static func signature(of body: String, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Array(body.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256="
            + code.map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }.joined()
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(milliseconds % 1000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
