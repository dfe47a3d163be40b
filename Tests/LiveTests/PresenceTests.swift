// Presence: how many streams each channel has over every worker, in `heraldctl channels`
// (with channels that have subscribers but no events yet) and in `GET /channels/<channel>`
// for publishers (the publish token).
import Foundation
import HeraldClient
import HeraldProtocol
import Testing

extension LiveSuites {
    @Suite("Presence")
    struct PresenceTests {
        struct Listed: Decodable {
            var name: String
            var subscribers: Int
            var lastEventId: String
        }

        static func listed(_ stack: LiveStack) throws -> [String: Listed] {
            let reply = try stack.adminRequest(["channels", "--json"])
            let json = try #require(reply.lines.first)
            let channels = try #require(WorkerStatsJSON.decode([Listed].self, from: json))
            return Dictionary(uniqueKeysWithValues: channels.map { ($0.name, $0) })
        }

        @Test("subscriber counts over both workers, in heraldctl channels and GET /channels/<channel>; they fall when streams end")
        func countsOverWorkers() async throws {
            try await LiveStack.with(workers: 2) { stack in
                let admin = try await stack.admin()
                let published = try await admin.publish(channel: "rooms", data: "{\"a\":1}", merge: true)
                var clients: [RecordingClient] = []
                for _ in 0..<3 { clients.append(try await RecordingClient.open(port: stack.port, path: "/stream/lobby")) }
                clients.append(try await RecordingClient.open(port: stack.port, path: "/stream/rooms"))
                for client in clients { _ = try await client.waitFor("init") { !$0.isEmpty } }
                let spread = try stack.stats().workers.map { $0.streamsByChannel["lobby"] ?? 0 }
                #expect(spread.count == 2 && spread.allSatisfy { $0 > 0 }, "lobby's streams on both workers: \(spread)")

                let channels = try Self.listed(stack)
                let epoch = try stack.stats().epoch
                #expect(channels["lobby"]?.subscribers == 3, "a channel without events is listed with its subscribers")
                #expect(channels["lobby"]?.lastEventId == "\(epoch)-0")
                #expect(channels["rooms"]?.subscribers == 1)
                #expect(channels["rooms"]?.lastEventId == published)
                let text = try stack.adminRequest(["channels"]).lines
                #expect(text.contains { $0.hasPrefix("lobby: 3 subscribers, last \(epoch)-0") }, "\(text)")

                let token = try #require(stack.publishToken)
                let presence = try await HTTPExchange.send(
                    port: stack.port, method: .GET, path: "/channels/rooms", headers: [("Authorization", "Bearer \(token)")])
                #expect(presence.status == 200)
                #expect(presence.headers["content-type"] == "application/json")
                #expect(
                    WorkerStatsJSON.decode(ChannelPresence.self, from: presence.body)
                        == ChannelPresence(channel: "rooms", subscribers: 1, lastEventId: published))
                let refused = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/channels/rooms")
                #expect(refused.status == 401)

                for client in clients { await client.close() }
                let gone = try await stack.eventually {
                    let now = try Self.listed(stack)
                    return now["lobby"] == nil && now["rooms"]?.subscribers == 0
                }
                let left = try Self.listed(stack)
                #expect(gone, "counts did not fall to zero: \(left)")
                await admin.close()
            }
        }
    }
}
