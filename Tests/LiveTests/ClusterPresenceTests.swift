// Presence and occupancy webhooks in cluster mode: subscriber counts summed over both hubs
// (each hub's counts in the database, refreshed every second), and each transition sent by
// exactly one hub, from the cluster's totals.
import Foundation
import HeraldClient
import HeraldProtocol
import Testing

extension LiveSuites.ClusterTests {
    struct Listed: Decodable {
        var name: String
        var subscribers: Int
    }

    static func lobbyCount(_ stack: LiveStack) -> Int? {
        guard let json = try? stack.adminRequest(["channels", "--json"]).lines.first,
            let channels = WorkerStatsJSON.decode([Listed].self, from: json)
        else { return nil }
        return channels.first { $0.name == "lobby" }?.subscribers ?? 0
    }

    @Test(
        "counts over both hubs in channels and GET /channels/<channel>; one hub sends each webhook, from the cluster's totals"
    )
    func presenceAndWebhooksOverHubs() async throws {
        let receiver = WebhookReceiver()
        let port = try await receiver.start()
        do {
            try await Self.withTwoMachines(
                hubArgs: "--webhook http://127.0.0.1:\(port)/hooks/herald --webhook-vacated-after 1",
                environment: ["HERALD_WEBHOOK_SECRET": LiveSuites.WebhookTests.secret]
            ) { a, b, server, database in
                var onA: [RecordingClient] = []
                for _ in 0..<2 { onA.append(try await RecordingClient.open(port: a.port, path: "/stream/lobby")) }
                let onB = try await RecordingClient.open(port: b.port, path: "/stream/lobby")
                for client in onA + [onB] { _ = try await client.waitFor("init") { !$0.isEmpty } }

                let counted = try await a.eventually(within: 10) {
                    Self.lobbyCount(a) == 3 && Self.lobbyCount(b) == 3
                }
                #expect(
                    counted,
                    "lobby on a: \(String(describing: Self.lobbyCount(a))), on b: \(String(describing: Self.lobbyCount(b)))"
                )
                // A hub's counts count while it refreshes them: a row that stops is gone after the
                // 3 s expiry, and one older than that never counts.
                _ = try server.sql(
                    """
                    INSERT INTO herald_presence (hub, counts, refreshed_at) VALUES
                        ('ghost', '{"lobby": 5}', now()), ('stale', '{"lobby": 100}', now() - interval '10 seconds')
                    """, database: database)
                let ghost = try await a.eventually(within: 5) { Self.lobbyCount(a) == 8 }
                #expect(ghost, "a fresh row of another hub counts: \(String(describing: Self.lobbyCount(a)))")
                let expired = try await a.eventually(within: 10) { Self.lobbyCount(a) == 3 && Self.lobbyCount(b) == 3 }
                #expect(expired, "a hub that stops refreshing drops out: \(String(describing: Self.lobbyCount(a)))")

                let token = try #require(b.publishToken)
                let presence = try await HTTPExchange.send(
                    port: b.port, method: .GET, path: "/channels/lobby", headers: [("Authorization", "Bearer \(token)")]
                )
                #expect(
                    WorkerStatsJSON.decode(ChannelPresence.self, from: presence.body)?.subscribers == 3,
                    "\(presence.body)")

                let occupied = try await a.eventually(within: 10) { receiver.received.count == 1 }
                #expect(occupied, "\(receiver.received.map(\.body))")
                let first = try LiveSuites.WebhookTests.notice(try #require(receiver.received.first))
                #expect(first.type == "channel.occupied" && first.channel == "lobby")
                let senders = [try a.stats(), try b.stats()].map { $0.webhooks?.sending }
                #expect(
                    senders.sorted { ($0 == true ? 1 : 0) < ($1 == true ? 1 : 0) } == [false, true],
                    "exactly one hub sends: \(senders)")

                // Leaving hub a's clients keeps the channel occupied through hub b's one.
                for client in onA { await client.close() }
                let fell = try await a.eventually(within: 10) { Self.lobbyCount(a) == 1 && Self.lobbyCount(b) == 1 }
                #expect(fell)
                await onB.close()
                let vacated = try await a.eventually(within: 10) { receiver.received.count == 2 }
                #expect(vacated, "\(receiver.received.map(\.body))")
                // Absence of a second hub's copy can only be shown by waiting past the delay.
                try await Task.sleep(for: .seconds(2))
                let bodies = receiver.received.map(\.body)
                #expect(bodies.count == 2, "each transition once: \(bodies)")
                if let last = receiver.received.last {
                    LiveSuites.WebhookTests.expectSigned(last)
                    let gone = try LiveSuites.WebhookTests.notice(last)
                    #expect(gone.type == "channel.vacated" && gone.channel == "lobby", "\(gone)")
                }

                // The sending hub dies: its session ends, the other hub takes the lead and goes on.
                let leaderIsA = try a.stats().webhooks?.sending == true
                let (leader, other) = leaderIsA ? (a, b) : (b, a)
                try leader.killHub()
                let tookOver = try await other.eventually(within: 10) { (try? other.stats().webhooks?.sending) == true }
                #expect(tookOver, "the other hub did not take over:\n\(other.logTail("hub.log"))")
                try await leader.waitForHub()
                let hall = try await RecordingClient.open(port: leader.port, path: "/stream/hall")
                _ = try await hall.waitFor("init") { !$0.isEmpty }
                let toldHall = try await other.eventually(within: 10) { receiver.received.count == 3 }
                #expect(toldHall, "\(receiver.received.map(\.body))")
                if let notice = receiver.received.last {
                    let hallNotice = try LiveSuites.WebhookTests.notice(notice)
                    #expect(hallNotice.type == "channel.occupied" && hallNotice.channel == "hall", "\(hallNotice)")
                }
                #expect(try leader.stats().webhooks?.sending == false, "the restarted hub does not send as well")
                await hall.close()
            }
        } catch {
            await receiver.stop()
            throw error
        }
        await receiver.stop()
    }
}
