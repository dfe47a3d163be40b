// Cluster mode through real processes: two deploy/run stacks (each a hub, its workers and its
// nginx on its own port: two "machines") share one private PostgreSQL. Events published
// through either reach subscribers on both in one order with the same ids; a client that moves
// between them resumes exactly; a hub killed, or cut from the database, catches up; pruned
// history means a fresh init; a publish while the database is away fails quickly and clearly.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

extension LiveSuites {
    @Suite("Cluster mode (two hubs, one PostgreSQL)", .postgresServer)
    struct ClusterTests {
        /// Two stacks on one new database (`urls` per stack, when each hub logs in as its own role).
        static func withTwoMachines<T>(
            hubArgs: String = "", roles: Bool = false, queries: [String] = ["", ""],
            environment extra: [String: String] = [:],
            _ body: (LiveStack, LiveStack, PostgresServer, String) async throws -> T
        ) async throws -> T {
            let server = try #require(PostgresServer.current)
            let database = try server.makeDatabase()
            var urls = [server.url(database: database), server.url(database: database)]
            if roles {
                for (index, side) in ["a", "b"].enumerated() {
                    let role = "\(database)_\(side)"
                    try server.makeRole(role)
                    urls[index] = server.url(database: database, user: role)
                }
            }
            for (index, query) in queries.enumerated() where !query.isEmpty {
                urls[index] += "?" + query.replacingOccurrences(of: "@CERT@", with: server.certificatePath)
            }
            let environment = { (url: String) in
                ["HERALD_CLUSTER": url, "HERALD_HUB_ARGS": hubArgs, "HERALD_WORKERS": "2"].merging(extra) { $1 }
            }
            return try await LiveStack.with(environment: environment(urls[0])) { a in
                try await LiveStack.with(environment: environment(urls[1])) { b in
                    try await body(a, b, server, database)
                }
            }
        }

        @Test("events published through either hub reach subscribers on both, in one order, with the same ids")
        func sameOrderAndIdsOnBothMachines() async throws {
            try await Self.withTwoMachines { a, b, _, _ in
                var clients: [RecordingClient] = []
                for stack in [a, b] {
                    for _ in 0..<8 {
                        clients.append(try await RecordingClient.open(port: stack.port, path: "/stream/feed"))
                    }
                }
                for client in clients { try await client.waitFor("init") { !$0.isEmpty } }

                // Both hubs publish at once: merges on one channel, so order matters for the state.
                async let throughA = Self.publish(60, via: a, tag: "a")
                async let throughB = Self.publish(60, via: b, tag: "b")
                let acknowledged = try await throughA + throughB
                let last = try #require(
                    acknowledged.max { EventID(parsing: $0)!.sequence < EventID(parsing: $1)!.sequence })

                let statsA = try a.stats()
                let statsB = try b.stats()
                #expect(statsA.epoch == statsB.epoch, "the epoch belongs to the cluster")
                #expect(acknowledged.allSatisfy { EventID(parsing: $0)?.epoch.rawValue == statsA.epoch })
                #expect(statsA.cluster?.connected == true && statsB.cluster?.connected == true)

                var reference: [String]?
                for client in clients {
                    let events = try await client.waitFor(id: last)
                    #expect(events.first?.type == "init")
                    let deltas = events.dropFirst()
                    #expect(deltas.allSatisfy { $0.type == "delta" })
                    #expect(events.strictlyIncreasing, "duplicate or out-of-order event ids")
                    let ids = deltas.map(\.lastEventId)
                    #expect(Set(acknowledged).isSubset(of: Set(ids)), "an acknowledged event is missing")
                    if let reference {
                        #expect(
                            ids == reference, "every subscriber on both machines sees the same ids in the same order")
                    } else {
                        reference = ids
                    }
                    var folder = StateFolder()
                    for event in events { try folder.apply(event, channel: "feed") }
                    let state = try a.adminRequest(["state", "get", "feed"]).lines.first
                    #expect(folder.states["feed"] == (try JSONValue(parsing: try #require(state))))
                    await client.close()
                }
                let stateA = try a.adminRequest(["state", "get", "feed"]).lines
                let stateB = try b.adminRequest(["state", "get", "feed"]).lines
                #expect(stateA == stateB, "both hubs hold the same state")
            }
        }

        @Test("a client that moves from one machine to the other with its Last-Event-ID gets exactly what it missed")
        func clientMovesBetweenMachines() async throws {
            try await Self.withTwoMachines { a, b, _, _ in
                let adminA = try await a.admin()
                let adminB = try await b.admin()
                _ = try await adminA.publish(channel: "feed", data: "before")
                let onA = try await RecordingClient.open(port: a.port, path: "/stream/feed")
                try await onA.waitFor("init") { !$0.isEmpty }
                var seen = ""
                for index in 0..<10 { seen = try await adminA.publish(channel: "feed", data: "seen \(index)") }
                _ = try await onA.waitFor(id: seen)
                await onA.close()

                var missed: [String] = []
                for index in 0..<15 {
                    missed.append(try await adminB.publish(channel: "feed", data: "missed \(index)"))
                }
                let onB = try await RecordingClient.open(
                    port: b.port, path: "/stream/feed", headers: [("Last-Event-ID", seen)])
                let events = try await onB.waitFor(id: missed.last!)
                #expect(events.map(\.lastEventId) == missed, "exactly the missed events, no init, nothing twice")
                #expect(events.map(\.data) == (0..<15).map { "missed \($0)" })
                await onB.close()

                // An id that one hub acknowledged a moment ago, presented at once to the other.
                let fresh = try await adminA.publish(channel: "feed", data: "fresh")
                let quick = try await RecordingClient.open(
                    port: b.port, path: "/stream/feed", headers: [("Last-Event-ID", fresh)])
                let marker = try await adminB.publish(channel: "feed", data: "marker")
                let after = try await quick.waitFor(id: marker)
                #expect(after.map(\.lastEventId) == [marker], "resumed after the fresh id: no init, no duplicate")
                await quick.close()
                await adminA.close()
                await adminB.close()
            }
        }

        @Test("a hub killed with SIGKILL comes back from the database and its clients get what was published meanwhile")
        func killedHubCatchesUp() async throws {
            try await Self.withTwoMachines { a, b, _, _ in
                var clients: [RecordingClient] = []
                for _ in 0..<20 { clients.append(try await RecordingClient.open(port: a.port, path: "/stream/ticks")) }
                for client in clients { try await client.waitFor("init") { !$0.isEmpty } }
                let epoch = try b.stats().epoch

                try a.killHub()
                let adminB = try await b.admin()
                var acknowledged: [String] = []
                for index in 0..<50 {
                    acknowledged.append(try await adminB.publish(channel: "ticks", data: "b \(index)"))
                }
                try await a.waitForHub()
                #expect(try a.stats().epoch == epoch)
                let adminA = try await a.admin()
                for index in 0..<10 {
                    acknowledged.append(try await adminA.publish(channel: "ticks", data: "a \(index)"))
                }

                for client in clients {
                    let events = try await client.waitFor(id: acknowledged.last!, within: 30)
                    #expect(events.first?.type == "init")
                    #expect(events.dropFirst().allSatisfy { $0.type == "delta" }, "no fresh init after the restart")
                    #expect(Array(events.dropFirst().map(\.lastEventId)) == acknowledged)
                    await client.close()
                }
                await adminA.close()
                await adminB.close()
            }
        }

        @Test(
            "a hub cut from the database keeps its clients, refuses publishes quickly, and catches up when it is back")
        func databaseCutThenCatchUp() async throws {
            try await Self.withTwoMachines(roles: true) { a, b, server, database in
                var clients: [RecordingClient] = []
                for _ in 0..<10 { clients.append(try await RecordingClient.open(port: a.port, path: "/stream/feed")) }
                for client in clients { try await client.waitFor("init") { !$0.isEmpty } }
                let adminB = try await b.admin()
                let before = try await adminB.publish(channel: "feed", data: "before")
                for client in clients { _ = try await client.waitFor(id: before) }

                // Hub A's role may no longer log in, and its sessions are ended.
                let role = "\(database)_a"
                try server.sql("ALTER ROLE \(role) NOLOGIN")
                try server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '\(role)'")
                let down = try await a.eventually(within: 15) { try a.stats().cluster?.connected == false }
                #expect(down, "stats show the hub disconnected from the database")

                let adminA = try await a.admin()
                let started = ContinuousClock.now
                let reply = try await adminA.request(["publish", "feed", "while cut"])
                let waited = ContinuousClock.now - started
                #expect(reply.error?.contains("cluster database") == true, "a clear error: \(reply.error ?? "none")")
                #expect(waited < .seconds(5), "the publisher was answered in \(waited), not left hanging")
                // Over HTTP: 503 with Retry-After, so publishers know to try again.
                let httpStarted = ContinuousClock.now
                let response = try await HTTPExchange.send(
                    port: a.port, method: .POST, path: "/publish/feed",
                    headers: [("Authorization", "Bearer live-test-publish-token")],
                    body: Array("while cut, over HTTP".utf8))
                #expect(response.status == 503, "HTTP publish during the cut: \(response.status) \(response.body)")
                #expect(response.headers["retry-after"] == "1")
                #expect(response.body.contains("cluster database"), "a clear message: \(response.body)")
                #expect(ContinuousClock.now - httpStarted < .seconds(5))

                var missed: [String] = []
                for index in 0..<30 {
                    missed.append(try await adminB.publish(channel: "feed", data: "meanwhile \(index)"))
                }
                try server.sql("ALTER ROLE \(role) LOGIN")

                for client in clients {
                    let events = try await client.waitFor(id: missed.last!, within: 30)
                    #expect(Array(events.dropFirst().map(\.lastEventId)) == [before] + missed)
                    #expect(events.dropFirst().allSatisfy { $0.type == "delta" }, "no fresh init")
                    #expect(await client.record.disconnects == 0, "the stream stayed open through the cut")
                    await client.close()
                }
                let stats = try a.stats()
                #expect(stats.cluster?.connected == true)
                #expect((stats.cluster?.reconnects ?? 0) >= 1)
                #expect(stats.cluster?.lastSequenceRead == EventID(parsing: missed.last!)?.sequence)
                await adminA.close()
                await adminB.close()
            }
        }

        @Test("one hub on TLS with the server's certificate checked, the other without: one log, one order")
        func tlsAndPlainHubsShareTheLog() async throws {
            try await Self.withTwoMachines(
                roles: true, queries: ["sslmode=verify-full&sslrootcert=@CERT@", "sslmode=disable"]
            ) { a, b, server, database in
                let client = try await RecordingClient.open(port: b.port, path: "/stream/feed")
                try await client.waitFor("init") { !$0.isEmpty }
                let adminA = try await a.admin()
                var acknowledged: [String] = []
                for index in 0..<5 {
                    acknowledged.append(try await adminA.publish(channel: "feed", data: "tls \(index)"))
                }
                let events = try await client.waitFor(id: acknowledged.last!)
                #expect(Array(events.dropFirst().map(\.lastEventId)) == acknowledged)
                #expect(try server.sessionsUseTLS(role: "\(database)_a") == true, "hub A's sessions use TLS")
                #expect(try server.sessionsUseTLS(role: "\(database)_b") == false, "hub B's do not")
                #expect(try a.stats().cluster?.database.hasSuffix("sslmode=verify-full") == true)
                await client.close()
                await adminA.close()
            }
        }

        @Test(
            "events pruned from the database are gone on every hub: an older id gets a fresh init, a recent one resumes"
        )
        func retentionPrunes() async throws {
            try await Self.withTwoMachines(hubArgs: "--cluster-retain-events 20 --cluster-prune-interval-ms 100") {
                a, b, _, _ in
                let adminA = try await a.admin()
                let old = try await adminA.publish(channel: "feed", data: "{\"n\":0}", merge: true)
                var later: [String] = []
                for index in 1...40 {
                    later.append(try await adminA.publish(channel: "feed", data: "{\"n\":\(index)}", merge: true))
                }
                let oldSequence = try #require(EventID(parsing: old)).sequence
                for stack in [a, b] {
                    let pruned = try await stack.eventually(within: 15) {
                        (try stack.stats().cluster?.prunedThrough ?? 0) > oldSequence
                    }
                    #expect(pruned, "the prune reached this hub")
                }
                for stack in [a, b] {
                    let client = try await RecordingClient.open(
                        port: stack.port, path: "/stream/feed", headers: [("Last-Event-ID", old)])
                    let events = try await client.waitFor("a fresh init") { !$0.isEmpty }
                    #expect(events[0].type == "init")
                    #expect(events[0].lastEventId == later.last, "the init is as of the newest event")
                    #expect(events[0].data == "{\"n\":40}")
                    await client.close()

                    let recent = try await RecordingClient.open(
                        port: stack.port, path: "/stream/feed", headers: [("Last-Event-ID", later[34])])
                    let replay = try await recent.waitFor(id: later.last!)
                    #expect(
                        replay.map(\.lastEventId) == Array(later[35...]), "inside retention: exactly the missed ones")
                    await recent.close()
                }
                await adminA.close()
            }
        }

        /// Publishes `count` merge patches through `stack`; returns the acknowledged ids.
        @Test(
            "one idempotency key through both hubs gives one event and the same id: the database remembers keys for every hub"
        )
        func idempotencyAcrossHubs() async throws {
            try await Self.withTwoMachines { a, b, _, _ in
                let client = try await RecordingClient.open(port: b.port, path: "/stream/keyed")
                _ = try await client.waitFor("init") { !$0.isEmpty }
                let first = try a.adminRequest(["publish", "keyed", "once", "--key", "cluster-key-1"])
                #expect(first.error == nil && first.lines.count == 1, "\(first.lines) \(first.error ?? "")")
                let id = try #require(first.lines.first)
                let throughB = try b.adminRequest(["publish", "keyed", "once", "--key", "cluster-key-1"])
                #expect(throughB.lines == [id, "repeated"], "\(throughB.lines) \(throughB.error ?? "")")
                let http = try await HTTPExchange.send(
                    port: b.port, method: .POST, path: "/publish/keyed",
                    headers: [
                        ("Authorization", "Bearer \(b.publishToken ?? "")"), ("Idempotency-Key", "cluster-key-1"),
                    ],
                    body: Array("once".utf8))
                #expect(http.status == 200)
                #expect(http.body.trimmingCharacters(in: .whitespacesAndNewlines) == id)
                #expect(http.headers["idempotent-replayed"] == "true")
                // One batch through A with the known key and a new one: only the new one is stored.
                let batch = try a.adminRequest([
                    "publish-batch",
                    #"{"channel":"keyed","data":"once","key":"cluster-key-1"}"# + "\n"
                        + #"{"channel":"keyed","data":"twice","key":"cluster-key-2"}"#,
                ])
                #expect(batch.lines.first == id)
                #expect(batch.lines.last == "repeated: 1")
                let second = try #require(batch.lines.dropFirst().first)
                let events = try await client.waitFor(id: second).filter { $0.type == "delta" }
                #expect(events.map(\.data) == ["once", "twice"])
                #expect(events.map(\.lastEventId) == [id, second])
                await client.close()
            }
        }

        static func publish(_ count: Int, via stack: LiveStack, tag: String) async throws -> [String] {
            let admin = try await stack.admin()
            var ids: [String] = []
            for index in 0..<count {
                ids.append(
                    try await admin.publish(
                        channel: "feed", data: "{\"\(tag)\":\(index),\"last\":\"\(tag)\"}", merge: true))
            }
            await admin.close()
            return ids
        }
    }
}
