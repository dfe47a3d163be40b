// `--webhook URL`, `--webhook-vacated-after` and `HERALD_WEBHOOK_SECRET`: where occupancy
// notices go, how they are signed, and how hard the hub tries.
import NIOCore

/// The occupancy webhooks of a hub. `HubConfiguration.webhooks` is nil without `--webhook`.
public struct WebhookSettings: Sendable {
    /// `--webhook` (repeatable): receivers, each sent every notice, in order.
    public var urls: [String]
    /// `HERALD_WEBHOOK_SECRET`: the HMAC-SHA256 key of `X-Herald-Signature`.
    public var secret: String
    /// `--webhook-vacated-after`: how long a channel stays without subscribers before it is vacated.
    public var vacatedAfter: TimeAmount = .seconds(5)
    /// `--webhook-queue`: notices waiting for one receiver at most; more are dropped (logged, counted).
    public var maximumQueued: Int = 10_000
    /// How long one POST may take before it counts as failed.
    public var timeout: TimeAmount = .seconds(5)
    /// The wait before the first retry of a failed POST; it doubles up to `longestRetry`.
    public var firstRetry: TimeAmount = .milliseconds(500)
    public var longestRetry: TimeAmount = .seconds(30)

    /// The shortest secret accepted: a guessable key would let anyone forge notices.
    public static let minimumSecretLength = 16

    public init(urls: [String], secret: String) {
        self.urls = urls
        self.secret = secret
    }

    /// Why these settings cannot work, in words for the operator; nil when they can.
    public var problem: String? {
        if secret.utf8.count < Self.minimumSecretLength {
            return secret.isEmpty
                ? "--webhook needs HERALD_WEBHOOK_SECRET in the environment (the key that signs each notice)"
                : "HERALD_WEBHOOK_SECRET must be at least \(Self.minimumSecretLength) characters"
        }
        for url in urls {
            let lower = url.lowercased()
            guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), url.count > 8 else {
                return "--webhook \(url): not an http:// or https:// URL"
            }
        }
        if vacatedAfter < .zero { return "--webhook-vacated-after must not be negative" }
        if maximumQueued < 1 { return "--webhook-queue must be at least 1" }
        return nil
    }
}
