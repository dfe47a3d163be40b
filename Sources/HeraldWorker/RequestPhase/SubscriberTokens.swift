// Who may subscribe to a private channel: which channels are private (`--private-channels`)
// and the subscriber tokens that open them (JWT, HS256, signed with `HERALD_SUBSCRIBER_KEY`,
// checked with jwt-kit). Pure: no I/O, the time is a parameter, nothing here blocks.
//
// jwt-kit 5 keeps its keys in an actor (`JWTKeyCollection`) whose `verify` is async. The
// request phase runs on libfcgi's own threads, where an `await` is impossible and bridging
// (a semaphore around a Task) would tie a blocked accept thread to the cooperative pool for
// every request. So the actor is used once, at startup (`init` below, awaited in `main`), to
// build jwt-kit's HMAC-SHA256 key, which it hands out as a Sendable `JWTAlgorithm`. After that
// every check is synchronous and still jwt-kit's own code: `DefaultJWTParser.parse` splits and
// decodes the token, `JWTAlgorithm.verify(_:signs:)` compares the MAC in constant time, and
// `ExpirationClaim.verifyNotExpired` checks `exp`. What jwt-kit's actor would not check, this
// file does: the header must say `HS256` (jwt-kit ignores `alg` for an HMAC key), `exp` is
// required, and the token has a size limit.
import Foundation
import HeraldProtocol
import JWTKit

/// A channel name, or a prefix ending in `*` (`private.*`; `*` alone is every channel).
struct ChannelPattern: Sendable, Equatable, CustomStringConvertible {
    /// The name, or the prefix without its `*`.
    let text: String
    let isPrefix: Bool

    /// A pattern as a token's `channels` claim lists it. Anything is accepted: an entry that is
    /// no valid name simply matches no channel.
    init(claim: String) {
        if claim.hasSuffix("*") {
            text = String(claim.dropLast())
            isPrefix = true
        } else {
            text = claim
            isPrefix = false
        }
    }

    /// A pattern from `--private-channels`, checked against the channel name rules.
    init(validating pattern: String) throws(SubscriberTokensError) {
        self.init(claim: pattern)
        if text.contains("*") { throw .invalidPattern(pattern, "only a final * is allowed") }
        if isPrefix && text.isEmpty { return }
        do {
            _ = try ChannelName(validating: text)
        } catch {
            throw .invalidPattern(pattern, error.description)
        }
    }

    func matches(_ channel: String) -> Bool {
        isPrefix ? channel.hasPrefix(text) : channel == text
    }

    var description: String { isPrefix ? text + "*" : text }
}

/// The private channels and the key their subscriber tokens are checked with. A value type,
/// shared by every accept thread.
public struct SubscriberTokens: Sendable {
    /// No private channels: every subscription is open and no token is looked at.
    public static let disabled = SubscriberTokens(privateChannels: [], key: nil)

    /// The longest token accepted, in bytes. A token listing a few dozen channels is well under
    /// 1 KiB; nginx caps the whole request line at 8 KiB (`large_client_header_buffers`).
    static let maxTokenBytes = 4096
    /// The one JWS algorithm accepted.
    static let algorithm = "HS256"
    /// The shortest secret accepted, in bytes: the size of the SHA-256 output (RFC 7518 §3.2).
    public static let minimumKeyBytes = 32

    /// The patterns that make a channel private (`--private-channels`).
    let privateChannels: [ChannelPattern]
    /// jwt-kit's HMAC-SHA256 key; nil when no channel is private.
    private let key: (any JWTAlgorithm)?
    private let parser = DefaultJWTParser()

    private init(privateChannels: [ChannelPattern], key: (any JWTAlgorithm)?) {
        self.privateChannels = privateChannels
        self.key = key
    }

    /// Checks the settings without building anything: `--private-channels` patterns must be
    /// channel names or prefixes ending in `*`, and private channels need a secret of at least
    /// 32 bytes. A secret without private channels is allowed (it opens nothing).
    public static func check(privateChannels: [String], secret: String?) throws(SubscriberTokensError) {
        for pattern in privateChannels { _ = try ChannelPattern(validating: pattern) }
        guard !privateChannels.isEmpty else { return }
        guard let secret, !secret.isEmpty else { throw .keyMissing }
        guard secret.utf8.count >= minimumKeyBytes else { throw .keyTooShort(secret.utf8.count) }
    }

    /// Checks the settings and builds jwt-kit's HS256 key. Async because jwt-kit hands keys out of
    /// its `JWTKeyCollection` actor: await it once, at startup.
    public init(privateChannels: [String], secret: String?) async throws(SubscriberTokensError) {
        try Self.check(privateChannels: privateChannels, secret: secret)
        var patterns: [ChannelPattern] = []
        for pattern in privateChannels { patterns.append(try ChannelPattern(validating: pattern)) }
        guard !patterns.isEmpty, let secret else {
            self.init(privateChannels: [], key: nil)
            return
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        do {
            self.init(privateChannels: patterns, key: try await keys.getKey())
        } catch {
            throw .keyUnusable("\(error)")
        }
    }

    /// Whether any channel is private.
    public var isEnabled: Bool { !privateChannels.isEmpty }

    func isPrivate(_ channel: String) -> Bool {
        privateChannels.contains { $0.matches(channel) }
    }

    /// Decides whether a subscription to `channels` may go ahead with `token` (from the
    /// `Authorization: Bearer` header or the `token` query parameter; nil or empty if none).
    func authorize(channels: [String], token: String?, now: Date) -> TokenDecision {
        check(channels: channels, token: token, now: now).decision
    }

    /// As ``authorize(channels:token:now:)``, with the token's expiry when it was granted: a
    /// stream opened with it ends then (`event: token-expired`).
    func check(channels: [String], token: String?, now: Date) -> (decision: TokenDecision, expires: TokenExpiry?) {
        var expires: Date?
        let decision = decide(channels: channels, token: token, now: now, expires: &expires)
        guard case .granted = decision, let expires else { return (decision, nil) }
        return (
            decision,
            TokenExpiry(
                exp: Int64(expires.timeIntervalSince1970.rounded(.down)),
                remainingNanoseconds: Int64(max(0, expires.timeIntervalSince(now)) * 1e9))
        )
    }

    private func decide(channels: [String], token: String?, now: Date, expires: inout Date?) -> TokenDecision {
        let privateOnes = channels.filter(isPrivate)
        guard let firstPrivate = privateOnes.first else { return .notNeeded }
        guard let token, !token.isEmpty else { return .refused(.missing(channel: firstPrivate), subject: nil) }
        guard let key else { return .refused(.badSignature, subject: nil) }  // unreachable: checked at startup
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenBytes else { return .refused(.tooLong(bytes.count), subject: nil) }

        // Split and decode (jwt-kit): three base64url parts, JSON header and claims.
        let header: JWTHeader
        let claims: SubscriberClaims
        let signature: Data
        do {
            (header, claims, signature) = try parser.parse(bytes, as: SubscriberClaims.self)
        } catch {
            return .refused(.malformed, subject: nil)
        }
        // The header's algorithm must be ours; jwt-kit would try the HMAC key whatever it says.
        guard let alg = header.alg, alg.lowercased() != "none" else { return .refused(.unsigned, subject: nil) }
        guard alg == Self.algorithm else { return .refused(.wrongAlgorithm(alg), subject: nil) }
        // The MAC over `header.payload`, compared in constant time (jwt-kit).
        guard let lastDot = bytes.lastIndex(of: UInt8(ascii: ".")),
            (try? key.verify(signature, signs: bytes[..<lastDot])) == true
        else {
            return .refused(.badSignature, subject: nil)
        }
        // From here on the claims are ours: the subject may be logged.
        let subject = claims.sub.map { Self.loggable($0.value) }
        guard let expiry = claims.exp else { return .refused(.missingExpiry, subject: subject) }
        expires = expiry.value
        do {
            try expiry.verifyNotExpired(currentDate: now)
        } catch {
            return .refused(.expired(Int64(expiry.value.timeIntervalSince1970.rounded(.down))), subject: subject)
        }
        guard let listed = claims.channels else { return .refused(.missingChannels, subject: subject) }
        let granted = listed.map(ChannelPattern.init(claim:))
        for channel in privateOnes where !granted.contains(where: { $0.matches(channel) }) {
            return .refused(.channelNotCovered(channel), subject: subject)
        }
        return .granted(subject: subject)
    }

    /// A claim value fit for one log line: control characters replaced, at most 200 characters.
    private static func loggable(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.prefix(200).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }
}

/// The claims of a subscriber token. Every field is optional here so that a missing one gets
/// its own refusal instead of a decoding error.
struct SubscriberClaims: JWTPayload {
    /// Channel names, or prefixes ending in `*`, this token opens.
    var channels: [String]?
    /// Expiry, seconds since 1970 (required).
    var exp: ExpirationClaim?
    /// Who the token was made for (logged).
    var sub: SubjectClaim?

    /// Unused: `SubscriberTokens.authorize` checks the claims itself, synchronously.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The outcome of looking at a subscription's token.
/// When a granted subscriber token expires: its `exp` (seconds since 1970), and how long
/// that was from the check.
struct TokenExpiry: Sendable, Equatable {
    var exp: Int64
    var remainingNanoseconds: Int64
}

enum TokenDecision: Sendable, Equatable {
    /// No private channel was asked for: no token needed, any token is ignored.
    case notNeeded
    /// A valid token covers every private channel asked for.
    case granted(subject: String?)
    /// Answered with 401; `subject` is the token's `sub` once its signature was good.
    case refused(TokenRefusal, subject: String?)
}

/// Why a subscriber token was refused: one line for the client, never the token itself.
enum TokenRefusal: Sendable, Equatable, CustomStringConvertible {
    case missing(channel: String)
    case tooLong(Int)
    case malformed
    case unsigned
    case wrongAlgorithm(String)
    case badSignature
    case missingExpiry
    case expired(Int64)
    case missingChannels
    case channelNotCovered(String)

    var description: String {
        switch self {
        case .missing(let channel):
            "missing subscriber token: channel \(channel) is private (send Authorization: Bearer <token> or ?token=<token>)"
        case .tooLong(let count):
            "subscriber token too long: \(count) bytes (at most \(SubscriberTokens.maxTokenBytes))"
        case .malformed:
            "malformed subscriber token: expected a JWT (three base64url parts with a JSON header and claims)"
        case .unsigned:
            "unsigned subscriber token (alg none): only \(SubscriberTokens.algorithm) is accepted"
        case .wrongAlgorithm(let alg):
            "subscriber token algorithm \(Self.printable(alg)) is not accepted: only \(SubscriberTokens.algorithm)"
        case .badSignature:
            "bad signature: the subscriber token was not signed with this server's key"
        case .missingExpiry:
            "subscriber token has no exp claim (required: expiry in seconds since 1970)"
        case .expired(let exp):
            "subscriber token expired (exp \(exp) is in the past)"
        case .missingChannels:
            "subscriber token has no channels claim (a list of channel names or prefixes ending in *)"
        case .channelNotCovered(let channel):
            "channel \(channel) is not in the subscriber token's channels claim"
        }
    }

    /// The client's `alg` value, shown only if it looks like an algorithm name.
    private static func printable(_ alg: String) -> String {
        let plain =
            alg.utf8.count <= 16
            && alg.unicodeScalars.allSatisfy {
                $0.properties.isASCIIHexDigit || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || $0 == "-"
                    || $0 == "_"
            }
        return plain ? alg : "(unprintable)"
    }
}

/// A configuration of private channels that cannot work.
public enum SubscriberTokensError: Error, Equatable, CustomStringConvertible {
    /// `--private-channels` without `HERALD_SUBSCRIBER_KEY`.
    case keyMissing
    /// A secret shorter than 32 bytes.
    case keyTooShort(Int)
    /// A `--private-channels` pattern that is no channel name or prefix.
    case invalidPattern(String, String)
    /// jwt-kit could not make a key of the secret.
    case keyUnusable(String)

    public var description: String {
        switch self {
        case .keyMissing:
            "--private-channels needs HERALD_SUBSCRIBER_KEY in the environment (the HS256 secret subscriber tokens are signed with)"
        case .keyTooShort(let count):
            "HERALD_SUBSCRIBER_KEY is \(count) bytes: an HS256 secret needs at least \(SubscriberTokens.minimumKeyBytes) (e.g. openssl rand -base64 32)"
        case .invalidPattern(let pattern, let reason):
            "--private-channels \(pattern): \(reason) (a channel name, or a prefix ending in * such as private.*)"
        case .keyUnusable(let reason):
            "HERALD_SUBSCRIBER_KEY could not be used as an HS256 key: \(reason)"
        }
    }
}
