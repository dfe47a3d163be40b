// Idempotent publishing through real processes: the same publish sent twice with one key gives
// one event and one id, over HTTP, NDJSON batches and heraldctl, across a hub killed with
// SIGKILL and restarted, and (in ClusterTests) through two hubs. And the outcome rules under a
// hung hub: a hub stopped with SIGSTOP (replaced by deploy/run's watchdog) while HTTP publishes
// flow: what was answered 503 is never delivered, and a publisher that retries every non-2xx
// answer with its key ends with every event delivered exactly once.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension LiveSuites {
    @Suite("Idempotent publishing")
    struct IdempotencyLiveTests {
        static func publish(_ stack: LiveStack, _ path: String, _ body: String, key: String?, batch: Bool = false)
            async throws -> HTTPResult
        {
            var headers = [("Authorization", "Bearer \(stack.publishToken ?? "")")]
            if let key { headers.append(("Idempotency-Key", key)) }
            if batch { headers.append(("Content-Type", PublishBatch.mediaType)) }
            return try await HTTPExchange.send(
                port: stack.port, method: .POST, path: path, headers: headers, body: Array(body.utf8))
        }

        static func id(_ result: HTTPResult) -> String { result.body.trimmingCharacters(in: .whitespacesAndNewlines) }

        @Test(
            "one key sent twice over HTTP, a batch and heraldctl gives one event and the first id, marked as a repeat, also after the hub is killed and restarted",
            .timeLimit(.minutes(2)))
        func repeatsAreAnsweredNotPublished() async throws {
            try await LiveStack.with(workers: 1) { stack in
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/orders", reconnect: true)
                _ = try await client.waitFor("init") { !$0.isEmpty }

                let first = try await Self.publish(stack, "/publish/orders", "paid 17", key: "order-17")
                #expect(first.status == 200)
                #expect(first.headers["idempotent-replayed"] == nil)
                let again = try await Self.publish(stack, "/publish/orders", "paid 17", key: "order-17")
                #expect(again.status == 200, "\(again.status) \(again.body)")
                #expect(Self.id(again) == Self.id(first))
                #expect(again.headers["idempotent-replayed"] == "true")

                let admin = try stack.adminRequest(["publish", "orders", "paid 17", "--key", "order-17"])
                #expect(admin.error == nil)
                #expect(admin.lines == [Self.id(first), "repeated"])

                let batch = try await Self.publish(
                    stack, "/publish",
                    #"{"channel":"orders","data":"paid 17","key":"order-17"}"# + "\n"
                        + #"{"channel":"orders","data":"paid 18","key":"order-18"}"#, key: nil, batch: true)
                #expect(batch.status == 200, "\(batch.status) \(batch.body)")
                #expect(batch.headers["idempotent-replayed"] == "true")
                let second = try #require(try? JSONValue(parsing: batch.body))
                guard case .object(let document) = second, case .array(let ids)? = document["ids"],
                    case .array(let repeated)? = document["repeated"]
                else {
                    Issue.record("unexpected batch answer \(batch.body)")
                    return
                }
                #expect(ids.first == .string(Self.id(first)))
                #expect(repeated == [.number("1")])
                guard case .string(let id18)? = ids.last else { throw ProbeError("no id for order-18") }

                // SIGKILL: the restarted hub rebuilds its keys from the journal.
                try stack.killHub()
                try await stack.waitForHub(workers: 1)
                var afterRestart: HTTPResult?
                let answered = try await stack.eventually(within: 20) {
                    afterRestart = try? await Self.publish(stack, "/publish/orders", "paid 18", key: "order-18")
                    return afterRestart?.status == 200
                }
                #expect(answered, "no 200 after the restart: \(String(describing: afterRestart))")
                #expect(afterRestart.map(Self.id) == id18)
                #expect(afterRestart?.headers["idempotent-replayed"] == "true")

                // A new key after the restart is a new event; it arrives, and nothing else did.
                let third = try await Self.publish(stack, "/publish/orders", "paid 19", key: "order-19")
                #expect(third.status == 200)
                let events = try await client.waitFor(id: Self.id(third), within: 20).filter { $0.type == "delta" }
                #expect(events.map(\.data) == ["paid 17", "paid 18", "paid 19"], "\(events.map(\.data))")
                let stats = try stack.stats()
                #expect(stats.idempotentRepeats >= 1, "the restarted hub counts its repeat")
                #expect(stats.idempotencyKeys >= 3)
                await client.close()
            }
        }

        @Test(
            "a hub stopped with SIGSTOP under HTTP publishing: nothing answered 503 is delivered; retrying every non-2xx answer with its key delivers every event exactly once",
            .timeLimit(.minutes(3)))
        func stoppedHubWithRetries() async throws {
            try await LiveStack.with(
                workers: 1, environment: ["HERALD_WORKER_ARGS": "--max-publishes-in-flight 4"]
            ) { stack in
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/stop", reconnect: true)
                _ = try await client.waitFor("init") { !$0.isEmpty }
                let hub = try #require(stack.pid(of: "hub"))
                defer { kill(hub, SIGCONT) }
                let count = 200
                // 20 publishes/s, each on its own connection, not waiting for the one before; the
                // hub is stopped after the 40th and replaced by deploy/run's watchdog.
                var firstAnswers: [Int: HTTPResult] = [:]
                try await withThrowingTaskGroup(of: (Int, HTTPResult?).self) { group in
                    var next = ContinuousClock.now
                    for index in 0..<count {
                        if index == 40 { kill(hub, SIGSTOP) }
                        group.addTask {
                            (index, try? await Self.publish(stack, "/publish/stop", "ev-\(index)", key: "ev-\(index)"))
                        }
                        next += .milliseconds(50)  // the load's pace, not a wait for anything
                        try await Task.sleep(until: next)
                    }
                    for try await (index, result) in group {
                        if let result { firstAnswers[index] = result }
                    }
                }
                let byStatus = Dictionary(grouping: firstAnswers, by: { $0.value.status }).mapValues(\.count)
                let refused = Set(firstAnswers.filter { $0.value.status == 503 }.map(\.key))
                let published = firstAnswers.filter { (200..<300).contains($0.value.status) }
                print("stopped hub: first answers by status \(byStatus.sorted { $0.key < $1.key })")
                #expect(!refused.isEmpty, "the stopped hub made some publishes 503: \(byStatus)")
                #expect(!published.isEmpty)
                #expect(
                    firstAnswers.values.allSatisfy { [200, 503, 504].contains($0.status) },
                    "only 200, 503 and 504: \(byStatus)")
                #expect(
                    firstAnswers.values.filter { $0.status == 503 }.allSatisfy { $0.headers["retry-after"] != nil })

                // Everything answered 2xx has arrived; nothing answered 503 is among what did.
                let lastPublished = try #require(
                    published.values.map(Self.id).max { EventID(parsing: $0)!.sequence < EventID(parsing: $1)!.sequence })
                let beforeRetries = try await client.waitFor(id: lastPublished, within: 30).filter { $0.type == "delta" }
                let deliveredEarly = Set(beforeRetries.map(\.data))
                #expect(
                    refused.allSatisfy { !deliveredEarly.contains("ev-\($0)") },
                    "events answered 503 were delivered: \(refused.filter { deliveredEarly.contains("ev-\($0)") }.sorted())")

                // The publisher retries every non-2xx answer (and every lost one) with its key.
                var finalIDs = published.mapValues(Self.id)
                var repeatsAfter503 = 0
                let deadline = ContinuousClock.now + .seconds(60)
                for index in 0..<count where finalIDs[index] == nil {
                    while finalIDs[index] == nil {
                        guard ContinuousClock.now < deadline else { throw ProbeError("retries did not succeed in 60 s") }
                        if let retry = try? await Self.publish(stack, "/publish/stop", "ev-\(index)", key: "ev-\(index)"),
                            (200..<300).contains(retry.status)
                        {
                            finalIDs[index] = Self.id(retry)
                            if refused.contains(index), retry.headers["idempotent-replayed"] != nil { repeatsAfter503 += 1 }
                        }
                    }
                }
                #expect(repeatsAfter503 == 0, "an event answered 503 had been published after all")

                let lastID = try #require(
                    finalIDs.values.max { EventID(parsing: $0)!.sequence < EventID(parsing: $1)!.sequence })
                let events = try await client.waitFor(id: lastID, within: 30).filter { $0.type == "delta" }
                for index in 0..<count {
                    let copies = events.filter { $0.data == "ev-\(index)" }
                    #expect(copies.count == 1, "ev-\(index) delivered \(copies.count) times")
                    #expect(copies.first?.lastEventId == finalIDs[index], "ev-\(index): the id the publisher was told")
                }
                #expect(events.strictlyIncreasing, "in order, no duplicate id")
                let uncertain = firstAnswers.values.filter { $0.status == 504 }.count
                print(
                    "stopped hub: \(refused.count) answered 503 (none delivered), \(uncertain) answered 504, "
                        + "\(count - published.count) retried with their keys; \(count) events each delivered once")
                await client.close()
            }
        }
    }
}
