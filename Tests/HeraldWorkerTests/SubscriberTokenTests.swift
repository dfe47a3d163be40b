// Private channels and subscriber tokens: which subscriptions need a token, every way a token
// can be wrong (each with its own 401 text), and garbage that must be refused, never crash.
// Tokens are made with jwt-kit's own signer; the forged ones are built by hand.
import Foundation
import JWTKit
import Testing

@testable import HeraldWorker

/// Over 64 bytes: long enough for jwt-kit to sign HS512 with it too (it asserts the key size).
private let secret = "subscriber-test-secret-0123456789abcdef-0123456789abcdef-01234567"
private let otherSecret = "another-secret-of-more-than-32-bytes-0000"

/// The claims a test token carries; each may be left out.
private struct Claims: JWTPayload {
    var channels: [String]?
    var exp: ExpirationClaim?
    var sub: SubjectClaim?

    init(channels: [String]?, expires: Date? = Date().addingTimeInterval(3600), sub: String? = nil) {
        self.channels = channels
        self.exp = expires.map { ExpirationClaim(value: $0) }
        self.sub = sub.map { SubjectClaim(value: $0) }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A token signed by jwt-kit with `key` (HS256 unless `digest` says otherwise; `header` may
/// claim another algorithm than the one actually used).
private func sign(
    _ claims: Claims, key: String = secret, digest: DigestAlgorithm = .sha256, header: JWTHeader = JWTHeader()
) async throws -> String {
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: key), digestAlgorithm: digest)
    return try await keys.sign(claims, header: header)
}

private func base64URL(_ text: String) -> String {
    Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

private func tokens(private patterns: [String] = ["private.*"]) async throws -> SubscriberTokens {
    try await SubscriberTokens(privateChannels: patterns, secret: secret)
}

private func router(_ tokens: SubscriberTokens) -> Router {
    var configuration = WorkerConfiguration()
    configuration.subscriberTokens = tokens
    return Router(configuration: configuration)
}

/// A GET as nginx's fastcgi_params would describe it.
private func get(_ path: String, query: String = "", authorization: String? = nil) -> RequestHead {
    var params = ["REQUEST_METHOD": "GET", "DOCUMENT_URI": path, "QUERY_STRING": query]
    params["REQUEST_URI"] = query.isEmpty ? path : path + "?" + query
    params["HTTP_AUTHORIZATION"] = authorization
    return RequestHead(params: params)
}

private func refusal(_ decision: TokenDecision) -> TokenRefusal? {
    if case .refused(let refusal, _) = decision { return refusal }
    return nil
}

@Suite("Subscriber tokens")
struct SubscriberTokenTests {
    @Test func aValidTokenOpensThePrivateChannelItNames() async throws {
        let checker = try await tokens()
        let token = try await sign(Claims(channels: ["private.a"], sub: "alice"))
        #expect(checker.authorize(channels: ["private.a"], token: token, now: Date()) == .granted(subject: "alice"))
        #expect(
            checker.authorize(
                channels: ["private.a"], token: try await sign(Claims(channels: ["private.a"])), now: Date())
                == .granted(subject: nil))
    }

    @Test func aTokenSignedWithAnotherKeyIsABadSignature() async throws {
        let token = try await sign(Claims(channels: ["private.a"]), key: otherSecret)
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
                == .refused(.badSignature, subject: nil))
    }

    @Test func aTamperedPayloadIsABadSignature() async throws {
        let token = try await sign(Claims(channels: ["private.a"], sub: "alice"))
        let parts = token.split(separator: ".").map(String.init)
        let exp = Int(Date().timeIntervalSince1970) + 3600
        let forged = base64URL(#"{"channels":["*"],"exp":\#(exp),"sub":"mallory"}"#)
        let tampered = [parts[0], forged, parts[2]].joined(separator: ".")
        let decision = try await tokens().authorize(channels: ["private.a"], token: tampered, now: Date())
        #expect(decision == .refused(.badSignature, subject: nil))
    }

    @Test func anUnsignedTokenWithAlgNoneIsRefused() async throws {
        let exp = Int(Date().timeIntervalSince1970) + 3600
        let payload = base64URL(#"{"channels":["private.a"],"exp":\#(exp)}"#)
        let checker = try await tokens()
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"NONE"}"#, #"{"typ":"JWT"}"#] {
            for signature in ["", "AAAA"] {
                let token = base64URL(header) + "." + payload + "." + signature
                #expect(
                    checker.authorize(channels: ["private.a"], token: token, now: Date())
                        == .refused(.unsigned, subject: nil))
            }
        }
    }

    @Test func onlyHS256IsAcceptedWhateverTheKey() async throws {
        let checker = try await tokens()
        // Our key, but HMAC-SHA512: a valid HS512 token is still refused.
        let hs512 = try await sign(Claims(channels: ["private.a"]), digest: .sha512)
        #expect(
            checker.authorize(channels: ["private.a"], token: hs512, now: Date())
                == .refused(.wrongAlgorithm("HS512"), subject: nil))
        // A header that claims HS384 over a genuine HS256 MAC (jwt-kit's own verify ignores alg).
        let relabelled = try await sign(Claims(channels: ["private.a"]), header: ["alg": "HS384"])
        #expect(
            checker.authorize(channels: ["private.a"], token: relabelled, now: Date())
                == .refused(.wrongAlgorithm("HS384"), subject: nil))
        #expect(
            TokenRefusal.wrongAlgorithm("RS256").description
                == "subscriber token algorithm RS256 is not accepted: only HS256")
        #expect(
            TokenRefusal.wrongAlgorithm("HS256\r\nX-Evil: 1").description
                == "subscriber token algorithm (unprintable) is not accepted: only HS256")
    }

    @Test func anExpiredTokenIsRefusedAndExpiryIsExact() async throws {
        let checker = try await tokens()
        let expired = try await sign(
            Claims(channels: ["private.a"], expires: Date().addingTimeInterval(-60), sub: "bob"))
        #expect(
            refusal(checker.authorize(channels: ["private.a"], token: expired, now: Date()))?.description
                .hasPrefix("subscriber token expired (exp ") == true)
        if case .refused(_, let subject) = checker.authorize(channels: ["private.a"], token: expired, now: Date()) {
            #expect(subject == "bob")
        }
        let at = Date(timeIntervalSince1970: 2_000_000_000)
        let token = try await sign(Claims(channels: ["private.a"], expires: at))
        #expect(
            checker.authorize(channels: ["private.a"], token: token, now: at.addingTimeInterval(-1))
                == .granted(subject: nil))
        #expect(
            checker.authorize(channels: ["private.a"], token: token, now: at)
                == .refused(.expired(2_000_000_000), subject: nil))
    }

    @Test func aTokenWithoutExpIsRefused() async throws {
        let token = try await sign(Claims(channels: ["private.a"], expires: nil))
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
                == .refused(.missingExpiry, subject: nil))
    }

    @Test func aTokenWithoutChannelsOpensNothing() async throws {
        let token = try await sign(Claims(channels: nil))
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
                == .refused(.missingChannels, subject: nil))
        let empty = try await sign(Claims(channels: []))
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: empty, now: Date())
                == .refused(.channelNotCovered("private.a"), subject: nil))
    }

    @Test func aChannelTheTokenDoesNotNameIsRefused() async throws {
        let token = try await sign(Claims(channels: ["private.b", "private.ab", "private"]))
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
                == .refused(.channelNotCovered("private.a"), subject: nil))
    }

    @Test func aPrefixClaimCoversEveryChannelUnderIt() async throws {
        let checker = try await tokens()
        let token = try await sign(Claims(channels: ["private.team1.*"]))
        for channel in ["private.team1.a", "private.team1.", "private.team1.x.y"] {
            #expect(checker.authorize(channels: [channel], token: token, now: Date()) == .granted(subject: nil))
        }
        #expect(
            checker.authorize(channels: ["private.team2.a"], token: token, now: Date())
                == .refused(.channelNotCovered("private.team2.a"), subject: nil))
        let everything = try await sign(Claims(channels: ["*"]))
        #expect(checker.authorize(channels: ["private.z"], token: everything, now: Date()) == .granted(subject: nil))
        // A * inside a claim is no wildcard: it matches nothing.
        let inner = try await sign(Claims(channels: ["private.*.a"]))
        #expect(
            checker.authorize(channels: ["private.x.a"], token: inner, now: Date())
                == .refused(.channelNotCovered("private.x.a"), subject: nil))
    }

    @Test func everyPrivateChannelOfAMultiChannelRequestMustBeCovered() async throws {
        let checker = try await tokens()
        let token = try await sign(Claims(channels: ["private.a"]))
        #expect(
            checker.authorize(channels: ["rooms", "private.a", "private.b"], token: token, now: Date())
                == .refused(.channelNotCovered("private.b"), subject: nil))
        #expect(
            checker.authorize(channels: ["rooms", "private.a"], token: token, now: Date()) == .granted(subject: nil))
        #expect(checker.authorize(channels: ["rooms", "news"], token: nil, now: Date()) == .notNeeded)
    }

    @Test func publicChannelsNeedNoTokenAndIgnoreAnyToken() async throws {
        let checker = try await tokens()
        for token in [nil, "", "garbage", try await sign(Claims(channels: ["private.a"]), key: otherSecret)] {
            #expect(
                checker.authorize(channels: ["rooms", "privatea", "Private.a"], token: token, now: Date())
                    == .notNeeded)
        }
        #expect(SubscriberTokens.disabled.authorize(channels: ["private.a"], token: nil, now: Date()) == .notNeeded)
        let route = router(checker).route(get("/stream/rooms", query: "token=garbage"))
        #expect(route == .stream(channels: ["rooms"], resume: nil))
    }

    @Test func aMissingTokenNamesThePrivateChannel() async throws {
        let checker = try await tokens(private: ["secret", "private.*"])
        for token in [nil, ""] {
            #expect(
                checker.authorize(channels: ["rooms", "secret"], token: token, now: Date())
                    == .refused(.missing(channel: "secret"), subject: nil))
        }
        #expect(checker.authorize(channels: ["secret2"], token: nil, now: Date()) == .notNeeded)
        #expect(
            TokenRefusal.missing(channel: "secret").description
                == "missing subscriber token: channel secret is private (send Authorization: Bearer <token> or ?token=<token>)"
        )
    }

    @Test(arguments: [
        "garbage", ".", "..", "...", "a.b", "a.b.c", "a.b.c.d", "!!!.@@@.###", "eyJ.eyJ.", "\u{0}.\u{0}.\u{0}",
        base64URL("{}") + "." + base64URL("{}") + ".",
        base64URL(#"{"alg":"HS256"}"#) + "." + base64URL("not json") + ".AAAA",
        base64URL(#"{"alg":"HS256"}"#) + "." + base64URL(#"{"channels":"private.a","exp":1}"#) + ".AAAA",
        base64URL(#"{"alg":"HS256"}"#) + "." + base64URL(#"{"channels":["private.a"],"exp":"soon"}"#) + ".AAAA",
        base64URL(#"{"alg":"HS256"}"#) + "." + base64URL(#"{"channels":["private.a"],"exp":9999999999}"#) + ".%%%",
        base64URL("[1,2]") + "." + base64URL("[]") + ".AAAA",
        "Bearer abc", "é.é.é", String(repeating: ".", count: 4000),
    ])
    func malformedTokensAreRefusedNeverACrash(_ token: String) async throws {
        let decision = try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
        #expect(refusal(decision) != nil)
        #expect(refusal(decision) != .missing(channel: "private.a"))
    }

    @Test func hugeAndRandomTokensAreRefused() async throws {
        let checker = try await tokens()
        let huge = String(repeating: "A", count: 100_000) + ".B.C"
        #expect(
            checker.authorize(channels: ["private.a"], token: huge, now: Date())
                == .refused(.tooLong(100_004), subject: nil))
        let valid = try await sign(Claims(channels: ["private.a"]))
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u{0}é")
        for _ in 0..<500 {
            let length = Int.random(in: 0..<300, using: &generator)
            let garbage = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            #expect(refusal(checker.authorize(channels: ["private.a"], token: garbage, now: Date())) != nil)
            // A valid token with one character changed, dropped or added.
            var bytes = Array(valid)
            let index = Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: bytes[index] = alphabet.randomElement(using: &generator)!
            case 1: bytes.remove(at: index)
            default: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
            }
            let mutated = String(bytes)
            let decision = checker.authorize(channels: ["private.a"], token: mutated, now: Date())
            if mutated != valid, decision == .granted(subject: nil) {
                // Base64url's last character carries spare bits: only those may change harmlessly.
                #expect(index >= valid.count - 2, "a mutated token was accepted: \(mutated)")
            }
        }
    }

    @Test func theSubjectIsMadeSafeForALogLine() async throws {
        let token = try await sign(Claims(channels: ["private.a"], sub: "eve\nINFO forged line"))
        #expect(
            try await tokens().authorize(channels: ["private.a"], token: token, now: Date())
                == .granted(subject: "eve?INFO forged line"))
    }
}

@Suite("Subscriber tokens through the router")
struct SubscriberTokenRouteTests {
    private func unauthorized(_ refusal: TokenRefusal) -> Route {
        let challenge = if case .missing = refusal { "Bearer" } else { #"Bearer error="invalid_token""# }
        return .reject(
            HTTPResponse(
                status: 401,
                headers: ["Content-Type: text/plain; charset=utf-8", "WWW-Authenticate: \(challenge)"],
                body: refusal.description + "\n"))
    }

    @Test func streamsAndPollsOnAPrivateChannelNeedAToken() async throws {
        let router = router(try await tokens())
        #expect(router.route(get("/stream/private.a")) == unauthorized(.missing(channel: "private.a")))
        #expect(router.route(get("/poll/private.a")) == unauthorized(.missing(channel: "private.a")))
        #expect(
            router.route(get("/stream", query: "channel=rooms&channel=private.a"))
                == unauthorized(.missing(channel: "private.a")))
        let decision = router.decide(get("/stream/private.a"))
        #expect(decision.token == .refused(.missing(channel: "private.a"), subject: nil))
    }

    @Test func theTokenMayComeInTheQueryOrTheHeader() async throws {
        let router = router(try await tokens())
        let token = try await sign(Claims(channels: ["private.a"], sub: "carol"))
        let viaQuery = router.decide(get("/stream/private.a", query: "token=\(token)&lastEventId=e-1"))
        #expect(viaQuery.route == .stream(channels: ["private.a"], resume: "e-1"))
        #expect(viaQuery.token == .granted(subject: "carol"))
        // The stream is to end when the token does (its exp, an hour from signing).
        let expiry = try #require(viaQuery.tokenExpiry)
        #expect(abs(Double(expiry.exp) - Date().addingTimeInterval(3600).timeIntervalSince1970) < 5)
        #expect(abs(Double(expiry.remainingNanoseconds) / 1e9 - 3600) < 5)
        // No private channel, no token check: no expiry either.
        #expect(router.decide(get("/stream/rooms", query: "token=\(token)")).tokenExpiry == nil)
        #expect(
            router.route(get("/stream/private.a", authorization: "Bearer \(token)"))
                == .stream(channels: ["private.a"], resume: nil))
        #expect(
            router.route(get("/poll/private.a", authorization: "bearer  \(token) "))
                == .poll(channels: ["private.a"], resume: nil))
        #expect(
            router.route(get("/poll/private.a", query: "token=\(token)")) == .poll(channels: ["private.a"], resume: nil)
        )
        // The header wins over the query; a header of another scheme is not a subscriber token.
        #expect(
            router.route(get("/stream/private.a", query: "token=\(token)", authorization: "Bearer nope"))
                == unauthorized(.malformed))
        #expect(
            router.route(get("/stream/private.a", query: "token=\(token)", authorization: "Basic dXNlcjpwYXNz"))
                == .stream(channels: ["private.a"], resume: nil))
        #expect(Router.subscriberToken(get("/", query: "token=")) == "")
        #expect(Router.subscriberToken(get("/")) == nil)
    }

    @Test func a401NeverEchoesTheToken() async throws {
        let router = router(try await tokens())
        let cases = [
            try await sign(Claims(channels: ["private.b"])),
            try await sign(Claims(channels: ["private.a"]), key: otherSecret),
            try await sign(Claims(channels: ["private.a"], expires: Date().addingTimeInterval(-5))),
            "not-a-token-at-all", String(repeating: "x", count: 5000),
        ]
        for token in cases {
            for head in [
                get("/stream/private.a", query: "token=\(token)"),
                get("/poll/private.a", authorization: "Bearer \(token)"),
            ] {
                guard case .reject(let response) = router.route(head) else {
                    Issue.record("not refused")
                    continue
                }
                #expect(response.status == 401)
                #expect(response.headers.contains { $0.hasPrefix("WWW-Authenticate: Bearer") })
                #expect(!response.body.contains(token))
                #expect(response.body.split(separator: "\n").count == 1)
                #expect(!response.cgi(corsOrigin: "*").contains(token))
            }
        }
    }

    @Test func badNamesAndMethodsAreRefusedBeforeAnyToken() async throws {
        let router = router(try await tokens())
        #expect(router.route(get("/stream/private a")).isRejected(status: 400))
        var post = get("/stream/private.a")
        post.method = "POST"
        #expect(router.route(post).isRejected(status: 405))
    }
}

@Suite("Private channel settings")
struct PrivateChannelSettingsTests {
    @Test func privateChannelsWithoutAKeyAreAConfigurationError() {
        #expect(throws: SubscriberTokensError.keyMissing) {
            try SubscriberTokens.check(privateChannels: ["private.*"], secret: nil)
        }
        #expect(throws: SubscriberTokensError.keyMissing) {
            try SubscriberTokens.check(privateChannels: ["private.*"], secret: "")
        }
        #expect(SubscriberTokensError.keyMissing.description.contains("HERALD_SUBSCRIBER_KEY"))
    }

    @Test func aShortKeyIsRefused() {
        #expect(throws: SubscriberTokensError.keyTooShort(6)) {
            try SubscriberTokens.check(privateChannels: ["a"], secret: "secret")
        }
    }

    @Test(arguments: ["priv*ate", "*private", "a b*", "", "**", String(repeating: "x", count: 65)])
    func patternsMustBeChannelNamesOrPrefixes(_ pattern: String) {
        #expect(throws: SubscriberTokensError.self) {
            try SubscriberTokens.check(privateChannels: [pattern], secret: secret)
        }
    }

    @Test func validSettings() async throws {
        try SubscriberTokens.check(privateChannels: ["private.*", "*", "secret", "a-b_c.d"], secret: secret)
        try SubscriberTokens.check(privateChannels: [], secret: nil)
        try SubscriberTokens.check(privateChannels: [], secret: "short")  // opens nothing: allowed
        let off = try await SubscriberTokens(privateChannels: [], secret: secret)
        #expect(!off.isEnabled)
        let all = try await SubscriberTokens(privateChannels: ["*"], secret: secret)
        #expect(all.isPrivate("rooms") && all.isPrivate("x"))
        let some = try await tokens(private: ["private.*", "secret"])
        #expect(some.isPrivate("private.") && some.isPrivate("secret") && !some.isPrivate("secret.x"))
    }
}

extension Route {
    fileprivate func isRejected(status: Int) -> Bool {
        if case .reject(let response) = self { return response.status == status }
        return false
    }
}
