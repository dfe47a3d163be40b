// The hub dies mid-run (SIGKILL) and deploy/run restarts it: workers keep their clients,
// reconnect, catch up from the journal, and every acknowledged event reaches every client
// exactly once, in order. A hub whose history is lost starts a new epoch and every client
// starts over with a fresh init.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

extension LiveSuites {
    @Suite("Hub restarts")
    struct HubRestartTests {
        @Test(
            "200 subscribers, 100 events/s, hub killed with SIGKILL mid-run: every acknowledged event arrives exactly once, in order"
        )
        func killedHubLosesNothing() async throws {
            try await LiveStack.with { stack in
                var clients: [RecordingClient] = []
                for _ in 0..<200 {
                    clients.append(try await RecordingClient.open(port: stack.port, path: "/stream/ticks"))
                }
                for client in clients { _ = try await client.waitFor("init") { !$0.isEmpty } }
                let epochBefore = try stack.stats().epoch

                // Publish at 100 events/s; kill the hub after 150 acknowledged events and go on until
                // 300 more were acknowledged after the kill. A publish that fails (hub gone) is tried
                // again on a new connection; a failed one may still have been journaled, which is
                // fine: only acknowledged events are promised.
                var acknowledged: [String] = []
                var afterKill = 0
                var admin: AdminConnection? = try await stack.admin()
                var next = ContinuousClock.now
                var killed = false
                var counter = 0
                let deadline = ContinuousClock.now + .seconds(90)
                while afterKill < 300 {
                    guard ContinuousClock.now < deadline else {
                        throw ProbeError("publishing did not recover within 90 s")
                    }
                    if !killed, acknowledged.count == 150 {
                        try stack.killHub()
                        killed = true
                    }
                    do {
                        if admin == nil { admin = try await stack.admin() }
                        acknowledged.append(try await admin!.publish(channel: "ticks", data: "tick \(counter)"))
                        counter += 1
                        if killed { afterKill += 1 }
                    } catch {
                        await admin?.close()
                        admin = nil
                    }
                    next += .milliseconds(10)  // the load's pace, 100 events/s, not a wait for anything
                    try await Task.sleep(until: next)
                }
                await admin?.close()
                try await stack.waitForHub()
                #expect(try stack.stats().epoch == epochBefore, "a restart with its journal must keep the epoch")

                let acknowledgedSequences = Set(acknowledged.compactMap { EventID(parsing: $0)?.sequence })
                let last = try #require(acknowledged.last)
                for client in clients {
                    let events = try await client.waitFor(id: last, within: 30)
                    let sequences = events.dropFirst().compactMap { EventID(parsing: $0.lastEventId)?.sequence }
                    #expect(events.first?.type == "init")
                    #expect(events.dropFirst().allSatisfy { $0.type == "delta" }, "no client needed a fresh init")
                    #expect(
                        zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 }, "duplicate or out-of-order event")
                    #expect(acknowledgedSequences.isSubset(of: Set(sequences)), "an acknowledged event is missing")
                }
                for client in clients { await client.close() }
            }
        }

        @Test("the journal brings back epoch, sequence, state and history after SIGKILL; resume still works")
        func journalSurvivesRestart() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                _ = try await admin.request(["state", "set", "rooms", "{\"Aurora\":{\"busy\":false}}"])
                let resumeFrom = try await admin.publish(
                    channel: "rooms", data: "{\"Aurora\":{\"busy\":true}}", merge: true)
                let missed = try await admin.publish(
                    channel: "rooms", data: "{\"Boreal\":{\"busy\":true}}", merge: true)
                let stateBefore = try await admin.request(["state", "get", "rooms"]).lines
                let statsBefore = try stack.stats()
                await admin.close()

                try stack.killHub()
                try await stack.waitForHub()
                let after = try await stack.admin()
                #expect(try await after.request(["state", "get", "rooms"]).lines == stateBefore)
                let statsAfter = try stack.stats()
                #expect(statsAfter.epoch == statsBefore.epoch)
                #expect(statsAfter.sequence == statsBefore.sequence)

                let client = try await RecordingClient.open(
                    port: stack.port, path: "/stream/rooms", headers: [("Last-Event-ID", resumeFrom)])
                let events = try await client.waitFor(id: missed)
                #expect(events.map(\.lastEventId) == [missed], "resume from history that was rebuilt from the journal")
                let next = try await after.publish(channel: "rooms", data: "{\"Cirrus\":{\"busy\":true}}", merge: true)
                #expect(EventID(parsing: next)?.sequence == statsBefore.sequence + 1)
                await client.close()
                await after.close()
            }
        }

        @Test("a hub that lost its history starts a new epoch, and connected clients get a fresh init")
        func lostHistoryMeansNewEpoch() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                _ = try await admin.publish(channel: "feed", data: "{\"v\":1}", merge: true)
                await admin.close()
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/feed")
                let first = try await client.waitFor("init") { !$0.isEmpty }[0]
                let oldEpoch = try #require(EventID(parsing: first.lastEventId)).epoch

                // The data directory disappears (a new disk, say) while the hub runs, then it dies.
                try FileManager.default.moveItem(
                    atPath: "\(stack.runDirectory)/data", toPath: "\(stack.runDirectory)/data.lost")
                try stack.killHub()
                try await stack.waitForHub()
                let newEpoch = try stack.stats().epoch
                #expect(newEpoch != oldEpoch.rawValue)

                let events = try await client.waitFor("a fresh init in the new epoch") { events in
                    events.contains {
                        $0.type == "init" && EventID(parsing: $0.lastEventId)?.epoch.rawValue == newEpoch
                    }
                }
                let fresh = try #require(events.last { $0.type == "init" })
                #expect(fresh.data == "{}", "the new history starts empty")
                await client.close()
            }
        }
    }
}
