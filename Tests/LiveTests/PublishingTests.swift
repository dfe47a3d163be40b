// Publishing through real processes: many HTTP publishers at once, the in-flight bound, a
// publish in flight when the hub dies, admin pipelining, and NDJSON batches over HTTP and
// through heraldctl.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension LiveSuites {
    @Suite("Publishing")
    struct PublishingTests {
        static func publish(_ stack: LiveStack, _ path: String, _ body: String, contentType: String? = nil)
            async throws -> HTTPResult
        {
            var headers = [("Authorization", "Bearer \(stack.publishToken ?? "")")]
            if let contentType { headers.append(("Content-Type", contentType)) }
            return try await HTTPExchange.send(
                port: stack.port, method: .POST, path: path, headers: headers, body: Array(body.utf8))
        }

        /// Stops the hub (SIGSTOP) for `body` and always lets it go on afterwards.
        static func withHubStopped<T>(_ stack: LiveStack, _ body: (Int32) async throws -> T) async throws -> T {
            let hub = try #require(stack.pid(of: "hub"))
            kill(hub, SIGSTOP)
            defer { kill(hub, SIGCONT) }
            return try await body(hub)
        }

        @Test("200 concurrent HTTP publishers are all acknowledged, and a subscriber gets each event exactly once")
        func concurrentPublishers() async throws {
            try await LiveStack.with { stack in
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/fan")
                _ = try await client.waitFor("init") { !$0.isEmpty }
                let results = try await withThrowingTaskGroup(of: (Int, HTTPResult).self) { group in
                    for index in 0..<200 {
                        group.addTask { (index, try await Self.publish(stack, "/publish/fan", "p\(index)")) }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                #expect(results.values.allSatisfy { $0.status == 200 }, "\(results.values.filter { $0.status != 200 })")
                let idOf = results.mapValues { $0.body.trimmingCharacters(in: .whitespacesAndNewlines) }
                #expect(Set(idOf.values).count == 200, "every publish got its own id")
                let last = try #require(idOf.values.max { EventID(parsing: $0)!.sequence < EventID(parsing: $1)!.sequence })
                let events = try await client.waitFor(id: last).filter { $0.type == "delta" }
                #expect(events.count == 200, "delivered \(events.count) of 200")
                for (index, id) in idOf {
                    let matching = events.filter { $0.data == "p\(index)" }
                    #expect(matching.count == 1 && matching.first?.lastEventId == id, "p\(index) as \(id)")
                }
                await client.close()
            }
        }

        @Test(
            "past --max-publishes-in-flight a publish is answered 503 with Retry-After at once; the waiting one is published when the hub goes on",
            .timeLimit(.minutes(1)))
        func inFlightBound() async throws {
            try await LiveStack.with(workers: 1, environment: ["HERALD_WORKER_ARGS": "--max-publishes-in-flight 1"]) {
                stack in
                let (first, second) = try await Self.withHubStopped(stack) { hub in
                    try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                        group.addTask { try await Self.publish(stack, "/publish/bound", "a") }
                        group.addTask { try await Self.publish(stack, "/publish/bound", "b") }
                        // One of the two holds the only place while the hub is stopped; the other
                        // cannot have one and is answered first.
                        let first = try #require(try await group.next())
                        kill(hub, SIGCONT)
                        let second = try #require(try await group.next())
                        return (first, second)
                    }
                }
                #expect(first.status == 503)
                #expect(first.headers["retry-after"] == "1")
                #expect(first.body.contains("publishes are already waiting for the hub"))
                #expect(second.status == 200, "\(second.status) \(second.body)")
                // What was answered 503 was not published: the channel holds one event.
                let reply = try stack.adminRequest(["channels", "--json"])
                #expect(reply.lines.first?.contains("\"historyEvents\":1") == true, "\(reply.lines)")
            }
        }

        @Test(
            "a publish in flight when the hub dies is answered 504 at once, saying it may or may not be published",
            .timeLimit(.minutes(1)))
        func hubDiesWithPublishInFlight() async throws {
            try await LiveStack.with(workers: 1) { stack in
                let hub = try #require(stack.pid(of: "hub"))
                kill(hub, SIGSTOP)
                async let answer = Self.publish(stack, "/publish/doomed", "x")
                // The publish is in flight once the worker has it; then the hub dies.
                let inFlight = try await stack.eventually {
                    let status = try await HTTPExchange.send(port: stack.internalPort, method: .GET, path: "/status")
                    return status.body.contains("\"publishesInFlight\":1")
                }
                kill(hub, SIGKILL)
                kill(hub, SIGCONT)
                #expect(inFlight)
                let response = try await answer
                #expect(response.status == 504)
                #expect(response.body.contains("may or may not be published"))
            }
        }

        @Test("an admin connection runs pipelined lines as they come and answers in order, good and bad mixed")
        func adminPipelining() async throws {
            try await LiveStack.with(workers: 1) { stack in
                var requests: [[String]] = []
                for index in 0..<300 {
                    switch index % 3 {
                    case 0: requests.append(["publish", "pipe", "n\(index)"])
                    case 1: requests.append(["publish", "bad name", "x"])
                    default: requests.append(["no-such-command"])
                    }
                }
                requests.append(["state", "get", "pipe"])
                let replies = try stack.adminRequests(requests)
                var previous: UInt64 = 0
                for (index, reply) in replies.dropLast().enumerated() {
                    switch index % 3 {
                    case 0:
                        let id = try #require(reply.lines.first.flatMap { EventID(parsing: $0) }, "\(reply)")
                        #expect(reply.error == nil && id.sequence == previous + 1 || previous == 0)
                        previous = id.sequence
                    case 1: #expect(reply.error?.contains("channel") == true, "\(reply)")
                    default: #expect(reply.error?.contains("unknown command") == true, "\(reply)")
                    }
                }
                #expect(replies.last == .ok(["{}"]))
            }
        }

        @Test("an NDJSON batch is published whole with consecutive ids, or not at all with the bad line named")
        func httpBatches() async throws {
            try await LiveStack.with(
                workers: 1, environment: ["HERALD_WORKER_ARGS": "--max-batch-events 5 --max-batch-bytes 2000"]
            ) { stack in
                let ndjson = PublishBatch.mediaType
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/room")
                _ = try await client.waitFor("init") { !$0.isEmpty }

                let good = """
                    {"channel":"room","data":{"seats":4},"merge":true}
                    {"channel":"room","data":"plain text","event":"note"}
                    {"channel":"room","data":[1,2,3]}

                    """
                let accepted = try await Self.publish(stack, "/publish", good, contentType: ndjson)
                #expect(accepted.status == 200, "\(accepted.body)")
                #expect(accepted.headers["content-type"] == "application/json")
                let ids = try #require(Self.ids(accepted.body))
                #expect(ids.count == 3)
                let sequences = ids.compactMap { EventID(parsing: $0)?.sequence }
                #expect(sequences.count == 3 && sequences[1] == sequences[0] + 1 && sequences[2] == sequences[0] + 2)
                let events = try await client.waitFor(id: ids[2]).dropFirst()
                #expect(events.map(\.type) == ["delta", "note", "delta"])
                #expect(events.map(\.data) == [#"{"seats":4}"#, "plain text", "[1,2,3]"])
                #expect(try stack.adminRequest(["state", "get", "room"]) == .ok([#"{"seats":4}"#]))

                // A bad line: 400 naming it, and nothing of the batch published.
                let bad = """
                    {"channel":"room","data":"fine"}
                    {"channel":"room","data":"not an object","merge":true}
                    """
                let refused = try await Self.publish(stack, "/publish", bad, contentType: ndjson)
                #expect(refused.status == 400)
                #expect(refused.body.contains("line 2:") && refused.body.contains("merge"), "\(refused.body)")
                let unparsable = try await Self.publish(stack, "/publish", "{\"channel\":\"room\"\n{", contentType: ndjson)
                #expect(unparsable.status == 400 && unparsable.body.contains("line 1:"), "\(unparsable.body)")

                let tooMany = String(repeating: "{\"channel\":\"room\",\"data\":1}\n", count: 6)
                let crowded = try await Self.publish(stack, "/publish", tooMany, contentType: ndjson)
                #expect(crowded.status == 400 && crowded.body.contains("at most 5"), "\(crowded.body)")
                let oversize = "{\"channel\":\"room\",\"data\":\"\(String(repeating: "x", count: 2100))\"}\n"
                let large = try await Self.publish(stack, "/publish", oversize, contentType: ndjson)
                #expect(large.status == 413, "\(large.body)")
                let wrongType = try await Self.publish(stack, "/publish", good, contentType: "application/json")
                #expect(wrongType.status == 415 && wrongType.body.contains(ndjson), "\(wrongType.body)")

                // Nothing of the refused batches arrived: the next event follows the good batch.
                let next = try await Self.publish(stack, "/publish/room", "after")
                #expect(EventID(parsing: next.body.trimmingCharacters(in: .newlines))?.sequence == sequences[2] + 1)
                await client.close()
            }
        }

        @Test("heraldctl publish --batch publishes a file or standard input and prints the ids; a bad line is named")
        func heraldctlBatch() async throws {
            try await LiveStack.with(workers: 1) { stack in
                let file = "\(stack.runDirectory)/batch.ndjson"
                try "{\"channel\":\"ops\",\"data\":\"one\"}\n{\"channel\":\"ops\",\"data\":\"two\"}\n".write(
                    toFile: file, atomically: true, encoding: .utf8)
                let fromFile = try stack.heraldctl(["publish", "--batch", file])
                #expect(fromFile.status == 0, "\(fromFile.error)")
                let fileIDs = fromFile.output.split(separator: "\n").compactMap { EventID(parsing: String($0)) }
                #expect(fileIDs.count == 2 && fileIDs[1].sequence == fileIDs[0].sequence + 1)

                let fromInput = try stack.heraldctl(
                    ["publish", "--batch", "-"], input: "{\"channel\":\"ops\",\"data\":{\"n\":1},\"merge\":true}\n")
                #expect(fromInput.status == 0, "\(fromInput.error)")
                #expect(fromInput.output.split(separator: "\n").compactMap { EventID(parsing: String($0)) }.count == 1)

                let refused = try stack.heraldctl(
                    ["publish", "--batch", "-"], input: "{\"channel\":\"ops\",\"data\":1}\n{\"channel\":\"bad name\",\"data\":1}\n")
                #expect(refused.status != 0)
                #expect(refused.error.contains("line 2:"), "\(refused.error)")
                #expect(try stack.adminRequest(["state", "get", "ops"]) == .ok([#"{"n":1}"#]))
            }
        }

        /// The ids of a batch answer, `{"ids":[…]}`.
        static func ids(_ body: String) -> [String]? {
            guard case .object(let object) = try? JSONValue(parsing: body), case .array(let values) = object["ids"] else {
                return nil
            }
            return values.compactMap { if case .string(let id) = $0 { id } else { nil } }
        }
    }
}
