// What a publish must satisfy before the hub orders it: one place, used by the hub and by the
// worker's HTTP front (to answer early and clearly).

/// Checks a publish and explains a refusal in words for the publisher.
public enum PublishRules {
    /// The longest event name accepted, in bytes.
    public static let maxEventNameLength = 64

    /// The longest idempotency key accepted, in bytes.
    public static let maxKeyLength = 255

    /// `nil` if `key` may be an idempotency key (1 to 255 visible ASCII characters), else why not.
    public static func keyRefusal(_ key: String) -> String? {
        let bytes = key.utf8
        guard !bytes.isEmpty, bytes.count <= maxKeyLength, bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            return "invalid idempotency key: 1 to \(maxKeyLength) visible ASCII characters (no spaces)"
        }
        return nil
    }

    /// `nil` if `request` may be published with data up to `maxDataBytes`, else why not.
    public static func refusal(for request: PublishRequest, maxDataBytes: Int) -> String? {
        do {
            _ = try ChannelName(validating: request.channel)
        } catch {
            return error.description
        }
        if request.name.isEmpty || request.name.utf8.count > maxEventNameLength {
            return "invalid event name: 1 to \(maxEventNameLength) bytes"
        }
        if request.name.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
            return "invalid event name: CR, LF and NUL are not allowed"
        }
        if request.name == "init" {
            return "invalid event name: init is reserved for state snapshots (use state set)"
        }
        if request.name == "token-expired" {
            return "invalid event name: token-expired is reserved for streams whose subscriber token expired"
        }
        if let key = request.key, let refusal = keyRefusal(key) { return refusal }
        if request.data.utf8.count > maxDataBytes {
            return "event data of \(request.data.utf8.count) bytes exceeds the limit of \(maxDataBytes)"
        }
        return nil
    }
}
