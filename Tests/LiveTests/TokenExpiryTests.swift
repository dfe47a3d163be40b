// A stream opened with a subscriber token ends when the token does: `event: token-expired`
// with the token's exp, then the end of the response. A client resumes with a fresh token
// after its last event id (herald.js's `token` option) and misses nothing.
import Foundation
import HeraldClient
import Testing

extension LiveSuites {
    @Suite("Token expiry")
    struct TokenExpiryTests {
        @Test("a token expiring in 3 s ends its stream with token-expired; a fresh token resumes after the last id")
        func streamEndsWithItsToken() async throws {
            try await LiveStack.with(workers: 1, environment: PrivateChannelTests.environment) { stack in
                let admin = try await stack.admin()
                let token = try await PrivateChannelTests.token(["private.exp"], expiresIn: 3)
                let stream = try await StreamProbe(port: stack.port, path: "/stream/private.exp?token=\(token)")
                #expect(try await stream.head().status == 200)
                #expect(try await stream.nextEvent().type == "init")
                let before = try await admin.publish(channel: "private.exp", data: "before expiry")
                #expect(try await stream.nextEvent().lastEventId == before)

                // Within 10 s (the token has 3): the end, not a heartbeat's silence.
                let expired = try await stream.nextEvent(within: 10)
                #expect(expired.type == "token-expired", "\(expired)")
                let exp = try #require(
                    expired.data.split(separator: ":").last.flatMap { Int($0.dropLast()) }, "data: \(expired.data)")
                #expect(abs(Double(exp) - Date().timeIntervalSince1970) < 3, "exp \(exp)")
                // Then the response ends (next returns nil; a stream left open would throw after 5 s).
                while let part = try await stream.next(within: 5) {
                    if case .item(.event(let message)) = part { Issue.record("an event after token-expired: \(message)") }
                }

                // The expired token is refused now; a fresh one resumes exactly after `before`.
                let stale = try await PrivateChannelTests.get(stack, "/stream/private.exp?token=\(token)")
                #expect(stale.status == 401)
                let missed = try await admin.publish(channel: "private.exp", data: "while away")
                let fresh = try await PrivateChannelTests.token(["private.exp"])
                let resumed = try await StreamProbe(
                    port: stack.port, path: "/stream/private.exp?token=\(fresh)", headers: [("Last-Event-ID", before)])
                #expect(try await resumed.head().status == 200)
                let next = try await resumed.nextEvent()
                #expect(next.lastEventId == missed && next.data == "while away", "\(next)")
                await resumed.close()

                // Publishers cannot send the reserved name.
                let reserved = try await admin.request(["publish", "private.exp", "x", "--event", "token-expired"])
                #expect(reserved.error?.contains("token-expired is reserved") == true)
                await admin.close()
            }
        }
    }
}
