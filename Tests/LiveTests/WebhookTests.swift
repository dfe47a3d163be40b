// Occupancy webhooks through the real stack: a receiver over HTTP gets channel.occupied at a
// channel's first subscriber and channel.vacated once its last has been gone for the delay,
// each signed with HMAC-SHA256 of the body; a failing receiver gets the same notice again
// until it accepts it; a reconnect inside the delay sends nothing.
import Crypto
import Foundation
import HeraldProtocol
import Testing

extension LiveSuites {
    @Suite("Occupancy webhooks")
    struct WebhookTests {
        static let secret = "live-test-webhook-secret"

        struct Notice: Decodable, Equatable {
            var id: String
            var type: String
            var channel: String
            var subscribers: Int
            var time: String
        }

        static func expectSigned(_ request: WebhookReceiver.Received) {
            let code = HMAC<SHA256>.authenticationCode(
                for: Array(request.body.utf8), using: SymmetricKey(data: Array(secret.utf8)))
            let hex = code.map { String(format: "%02x", $0) }.joined()
            #expect(request.headers["x-herald-signature"] == "sha256=\(hex)", "signature of \(request.body)")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.path == "/hooks/herald")
        }

        static func notice(_ request: WebhookReceiver.Received) throws -> Notice {
            try JSONDecoder().decode(Notice.self, from: Data(request.body.utf8))
        }

        @Test(
            "occupied and vacated reach a real receiver, signed; a failing receiver gets the notice again; a reconnect inside the delay sends nothing"
        )
        func occupiedAndVacated() async throws {
            let receiver = WebhookReceiver(statuses: [500, 503])
            let port = try await receiver.start()
            do {
                try await LiveStack.with(
                    workers: 2,
                    environment: [
                        "HERALD_WEBHOOK_SECRET": Self.secret,
                        "HERALD_HUB_ARGS": "--webhook http://127.0.0.1:\(port)/hooks/herald --webhook-vacated-after 1",
                    ]
                ) { stack in
                    try await run(stack, receiver)
                }
            } catch {
                await receiver.stop()
                throw error
            }
            await receiver.stop()
        }

        private func run(_ stack: LiveStack, _ receiver: WebhookReceiver) async throws {
            let first = try await RecordingClient.open(port: stack.port, path: "/stream/lobby")
            _ = try await first.waitFor("init") { !$0.isEmpty }
            let second = try await RecordingClient.open(port: stack.port, path: "/stream/lobby")
            _ = try await second.waitFor("init") { !$0.isEmpty }
            let occupied = try await stack.eventually(within: 15) { receiver.received.contains { $0.status == 200 } }
            #expect(occupied, "no notice accepted: \(receiver.received.map(\.status))\n\(stack.logTail("hub.log"))")
            let attempts = receiver.received
            #expect(attempts.map(\.status) == [500, 503, 200], "retried until accepted")
            #expect(Set(attempts.map(\.body)).count == 1, "every attempt carries the same notice")
            for attempt in attempts { Self.expectSigned(attempt) }
            let told = try Self.notice(try #require(attempts.last))
            #expect(told.type == "channel.occupied" && told.channel == "lobby" && told.subscribers == 1, "\(told)")
            #expect(told.time.hasSuffix("Z") && told.time.count == 24, "RFC 3339 time: \(told.time)")

            // Both leave and one comes back well inside the 1 s delay: no transition at all.
            await first.close()
            await second.close()
            let back = try await RecordingClient.open(port: stack.port, path: "/stream/lobby")
            _ = try await back.waitFor("init") { !$0.isEmpty }
            // Absence over the delay can only be shown by waiting past it (twice its length).
            try await Task.sleep(for: .seconds(2))
            #expect(receiver.received.count == 3, "nothing sent for a reconnect: \(receiver.received.map(\.body))")

            let closedAt = Date()
            await back.close()
            let vacated = try await stack.eventually(within: 10) { receiver.received.count == 4 }
            #expect(vacated, "no channel.vacated: \(receiver.received.map(\.body))\n\(stack.logTail("hub.log"))")
            let last = try #require(receiver.received.last)
            Self.expectSigned(last)
            let gone = try Self.notice(last)
            #expect(gone.type == "channel.vacated" && gone.channel == "lobby" && gone.subscribers == 0, "\(gone)")
            #expect(gone.id != told.id)
            #expect(last.at.timeIntervalSince(closedAt) >= 1.0, "vacated before the delay passed")

            let figures = try #require(try stack.stats().webhooks)
            #expect(figures == WebhookStats(delivered: 2, failedAttempts: 2, dropped: 0, queued: 0, sending: true))
        }
    }
}
