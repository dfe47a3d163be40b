// State, history and resume through real processes: the init guarantee under concurrent
// publishing, resume inside and outside history, garbage ids, multi-channel streams, long
// polls, drain, and a hub killed with SIGKILL while events flow.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

extension LiveSuites {
    @Suite("State, history and resume")
    struct StateResumeTests {
        @Test(
            "every client that folds its init and deltas ends with the hub's state, even when it joins mid-publishing")
        func initGuaranteeUnderConcurrentPublishing() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                var generator = SplitMix64(seed: 0x5EED_2026)
                var clients: [RecordingClient] = []
                var lastID = ""
                for step in 0..<400 {
                    // A random merge patch: set, change or delete one of 20 keys, sometimes nested.
                    let key = "k\(Int.random(in: 0..<20, using: &generator))"
                    let value: String
                    switch Int.random(in: 0..<4, using: &generator) {
                    case 0: value = "null"
                    case 1: value = "{\"n\":\(step),\"deep\":{\"s\":\"\(step)\"}}"
                    default: value = "\(step)"
                    }
                    lastID = try await admin.publish(channel: "board", data: "{\"\(key)\":\(value)}", merge: true)
                    if step % 13 == 0 {
                        clients.append(try await RecordingClient.open(port: stack.port, path: "/stream/board"))
                    }
                }
                let reply = try await admin.request(["state", "get", "board"])
                let final = try JSONValue(parsing: try #require(reply.lines.first))
                for client in clients {
                    let events = try await client.waitFor(id: lastID)
                    #expect(events.first?.type == "init")
                    #expect(events.strictlyIncreasing, "duplicate or out-of-order event ids")
                    var folder = StateFolder()
                    for event in events { try folder.apply(event, channel: "board") }
                    #expect(folder.states["board"] == final)
                    await client.close()
                }
                await admin.close()
            }
        }

        @Test("a client that reconnects with an id 50 events old gets exactly those 50, by header or query")
        func resumeInsideHistory() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                _ = try await admin.publish(channel: "feed", data: "first")
                let first = try await RecordingClient.open(port: stack.port, path: "/stream/feed")
                let initEvent = try await first.waitFor("init") { !$0.isEmpty }[0]
                await first.close()
                // Everything published after the init, as (id, data): the 50, then one marker per round.
                var sinceInit: [(id: String, data: String)] = []
                for index in 1...50 {
                    sinceInit.append(
                        (try await admin.publish(channel: "feed", data: "event \(index)"), "event \(index)"))
                }
                _ = try await admin.publish(channel: "other", data: "not for feed")

                for headers in [[("Last-Event-ID", initEvent.lastEventId)], []] {
                    let path = headers.isEmpty ? "/stream/feed?lastEventId=\(initEvent.lastEventId)" : "/stream/feed"
                    let again = try await RecordingClient.open(port: stack.port, path: path, headers: headers)
                    let events = try await again.waitFor(id: sinceInit.last!.id)
                    #expect(events.map(\.lastEventId) == sinceInit.map(\.id))
                    #expect(events.map(\.data) == sinceInit.map(\.data))
                    #expect(events.allSatisfy { $0.type == "delta" })
                    let marker = try await admin.publish(channel: "feed", data: "marker")
                    let after = try await again.waitFor(id: marker)
                    #expect(
                        after.count == sinceInit.count + 1, "something arrived besides the missed events and the marker"
                    )
                    sinceInit.append((marker, "marker"))
                    await again.close()
                }
                await admin.close()
            }
        }

        @Test("an id older than history gets a fresh init with the current state")
        func resumeOutsideHistory() async throws {
            try await LiveStack.with(environment: ["HERALD_HUB_ARGS": "--history-events 10"]) { stack in
                let admin = try await stack.admin()
                let old = try await admin.publish(channel: "feed", data: "{\"count\":0}", merge: true)
                var last = old
                for index in 1...50 {
                    last = try await admin.publish(channel: "feed", data: "{\"count\":\(index)}", merge: true)
                }
                let client = try await RecordingClient.open(
                    port: stack.port, path: "/stream/feed", headers: [("Last-Event-ID", old)])
                let events = try await client.waitFor("init") { !$0.isEmpty }
                #expect(events[0].type == "init")
                #expect(events[0].lastEventId == last)
                #expect(try JSONValue(parsing: events[0].data) == JSONValue(parsing: "{\"count\":50}"))
                await client.close()
                await admin.close()
            }
        }

        @Test("garbage, foreign and future ids get 200 and a fresh init, never an error")
        func garbageIDs() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                let id = try await admin.publish(channel: "feed", data: "x")
                let epoch = try #require(EventID(parsing: id)).epoch.rawValue
                let garbage = [
                    "garbage", "-1", "abc-", "\(epoch)--5", "\(epoch)-+1", "\(epoch)-999999999", "zzzzzzzzzz-1",
                    "\(epoch)-18446744073709551616",
                    String(repeating: "9", count: 5000), "\(epoch)-1;2",
                ]
                for value in garbage {
                    let client = try await RecordingClient.open(
                        port: stack.port, path: "/stream/feed", headers: [("Last-Event-ID", value)])
                    let events = try await client.waitFor("init for \(value.prefix(20))") { !$0.isEmpty }
                    #expect(await client.record.status == 200)
                    #expect(events[0].type == "init", "id \(value.prefix(40)) did not get a fresh init")
                    #expect(events[0].lastEventId == id)
                    await client.close()
                }
                await admin.close()
            }
        }

        @Test(
            "a stream on several channels names the channel in every event type; a single channel keeps the plain format"
        )
        func multiChannelStreams() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                _ = try await admin.request(["state", "set", "a", "{\"x\":1}"])
                let both = try await RecordingClient.open(port: stack.port, path: "/stream?channel=a&channel=b")
                let single = try await RecordingClient.open(port: stack.port, path: "/stream/a")
                let inits = try await both.waitFor("two inits") { $0.count == 2 }
                #expect(Set(inits.map(\.type)) == ["a:init", "b:init"])
                #expect(inits.first { $0.type == "a:init" }?.data == "{\"x\":1}")
                #expect(inits.first { $0.type == "b:init" }?.data == "{}")
                _ = try await single.waitFor("init") { !$0.isEmpty }
                let toA = try await admin.publish(channel: "a", data: "{\"x\":2}", merge: true)
                let toB = try await admin.publish(channel: "b", data: "hello", event: "note")
                let events = try await both.waitFor(id: toB)
                #expect(Array(events.dropFirst(2).map(\.type)) == ["a:delta", "b:note"])
                #expect(Array(events.dropFirst(2).map(\.lastEventId)) == [toA, toB])
                let plain = try await single.waitFor(id: toA)
                #expect(plain.last?.type == "delta")
                await both.close()
                await single.close()
                await admin.close()
            }
        }

        @Test(
            "state set reaches connected clients as one delta, the merge patch from the old state; where none can say it, a fresh init"
        )
        func stateSetIsADelta() async throws {
            try await LiveStack.with { stack in
                let admin = try await stack.admin()
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/rooms")
                _ = try await client.waitFor("init") { !$0.isEmpty }
                let board = #"{"Aurora":{"busy":false,"by":""},"Boreal":{"busy":true,"by":"marta"},"Cirrus":{"busy":false,"by":""}}"#
                let first = try #require(try await admin.request(["state", "set", "rooms", board]).lines.first)
                // From the empty state the whole board is the patch.
                #expect(try await client.waitFor(id: first).last == SSEMessage(type: "delta", data: board, lastEventId: first))

                // One room booked, one gone, one added: only that travels.
                let next = #"{"Aurora":{"busy":true,"by":"ana"},"Boreal":{"busy":true,"by":"marta"},"Dune":{"busy":false,"by":""}}"#
                let id = try #require(try await admin.request(["state", "set", "rooms", next]).lines.first)
                let delta = #"{"Cirrus":null,"Aurora":{"busy":true,"by":"ana"},"Dune":{"busy":false,"by":""}}"#
                #expect(try await client.waitFor(id: id).last == SSEMessage(type: "delta", data: delta, lastEventId: id))
                #expect(try await admin.request(["state", "get", "rooms"]).lines == [next])

                // A null member cannot travel in a merge patch: a fresh init instead.
                let withNull = #"{"Aurora":{"busy":true,"by":null}}"#
                let initID = try #require(try await admin.request(["state", "set", "rooms", withNull]).lines.first)
                #expect(
                    try await client.waitFor(id: initID).last
                        == SSEMessage(type: "init", data: withNull, lastEventId: initID))

                // A client that joins now gets the state as its init, as always.
                let late = try await RecordingClient.open(port: stack.port, path: "/stream/rooms")
                #expect(try await late.waitFor("init") { !$0.isEmpty }.first?.data == withNull)
                await late.close()
                let refused = try await admin.request(["state", "set", "rooms", "{not json"])
                #expect(refused.error?.contains("JSON") == true)
                let notObject = try await admin.request(["publish", "rooms", "[1,2]", "--merge"])
                #expect(notObject.error?.contains("JSON object") == true)
                await client.close()
                await admin.close()
            }
        }

        @Test("PUT /state/<channel> with the publish token replaces the state; clients get the merge patch")
        func putStateOverHTTP() async throws {
            try await LiveStack.with(workers: 1) { stack in
                let token = try #require(stack.publishToken)
                let client = try await RecordingClient.open(port: stack.port, path: "/stream/board")
                _ = try await client.waitFor("init") { !$0.isEmpty }
                func put(_ body: String, key: String? = nil, auth: Bool = true) async throws -> HTTPResult {
                    var headers: [(String, String)] = auth ? [("Authorization", "Bearer \(token)")] : []
                    if let key { headers.append(("Idempotency-Key", key)) }
                    return try await HTTPExchange.send(
                        port: stack.port, method: .PUT, path: "/state/board", headers: headers, body: Array(body.utf8))
                }
                let first = try await put(#"{"a":1,"b":2}"#)
                #expect(first.status == 200)
                let firstID = first.body.trimmingCharacters(in: .whitespacesAndNewlines)
                _ = try await client.waitFor(id: firstID)
                let second = try await put(#"{"a":1,"b":3}"#, key: "put-1")
                let secondID = second.body.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(
                    try await client.waitFor(id: secondID).last
                        == SSEMessage(type: "delta", data: #"{"b":3}"#, lastEventId: secondID))
                // The same key again: answered with the first id, not replaced again.
                let again = try await put(#"{"a":1,"b":3}"#, key: "put-1")
                #expect(again.body.trimmingCharacters(in: .whitespacesAndNewlines) == secondID)
                #expect(again.headers["idempotent-replayed"] == "true")
                let admin = try await stack.admin()
                #expect(try await admin.request(["state", "get", "board"]).lines == [#"{"a":1,"b":3}"#])
                let bad = try await put("{not json")
                #expect(bad.status == 400 && bad.body.contains("JSON"), "\(bad.status) \(bad.body)")
                #expect(try await put("{}", auth: false).status == 401)
                await client.close()
                await admin.close()
            }
        }

        @Test("a long poll answers with the missed events, waits for the next one, or gives a fresh init")
        func longPoll() async throws {
            try await LiveStack.with(environment: ["HERALD_WORKER_ARGS": "--poll-timeout 2"]) { stack in
                let admin = try await stack.admin()
                let first = try await admin.publish(channel: "feed", data: "{\"n\":1}", merge: true)
                let fresh = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/poll/feed")
                #expect(fresh.status == 200)
                let freshBody = try JSONValue(parsing: fresh.body)
                #expect(
                    freshBody
                        == (try JSONValue(
                            parsing:
                                "{\"events\":[{\"id\":\"\(first)\",\"event\":\"init\",\"data\":\"{\\\"n\\\":1}\"}],\"lastEventId\":\"\(first)\"}"
                        )))

                let second = try await admin.publish(channel: "feed", data: "{\"n\":2}", merge: true)
                let missed = try await HTTPExchange.send(
                    port: stack.port, method: .GET, path: "/poll/feed?lastEventId=\(first)")
                #expect(
                    try JSONValue(parsing: missed.body)
                        == (try JSONValue(
                            parsing:
                                "{\"events\":[{\"id\":\"\(second)\",\"event\":\"delta\",\"data\":\"{\\\"n\\\":2}\"}],\"lastEventId\":\"\(second)\"}"
                        )))

                // Nothing newer: the poll waits, and the next publish answers it.
                async let waiting = HTTPExchange.send(
                    port: stack.port, method: .GET, path: "/poll/feed?lastEventId=\(second)")
                let parked = try await stack.eventually {
                    try stack.stats().workers.reduce(0) { $0 + $1.pollsWaiting } == 1
                }
                #expect(parked, "the long poll is not waiting in a worker")
                let third = try await admin.publish(channel: "feed", data: "{\"n\":3}", merge: true)
                let answered = try await waiting
                #expect(answered.body.contains("\"lastEventId\":\"\(third)\""))

                // Nothing at all within the poll timeout: an empty answer that keeps the id.
                let idle = try await HTTPExchange.send(
                    port: stack.port, method: .GET, path: "/poll/feed?lastEventId=\(third)")
                #expect(
                    try JSONValue(parsing: idle.body)
                        == (try JSONValue(parsing: "{\"events\":[],\"lastEventId\":\"\(third)\"}")))
                await admin.close()
            }
        }

        @Test("drain ends every stream with a jittered retry")
        func drain() async throws {
            try await LiveStack.with { stack in
                let clients = [
                    try await RecordingClient.open(port: stack.port, path: "/stream/rooms"),
                    try await RecordingClient.open(port: stack.port, path: "/stream/rooms"),
                ]
                for client in clients { _ = try await client.waitFor("init") { !$0.isEmpty } }
                let result = try stack.heraldctl(["drain", "--retry", "3000", "--jitter", "1000"])
                #expect(result.status == 0)
                #expect(result.output.contains("draining worker-1"))
                for client in clients {
                    let ended = try await stack.eventually { await client.record.ended }
                    #expect(ended, "the stream did not end")
                    let retries = await client.record.retries
                    #expect(retries.count == 2)  // 2000 at the start, then the drain's
                    #expect((3000...4000).contains(retries.last ?? 0))
                }
                let unknown = try stack.heraldctl(["drain", "worker-9"])
                #expect(unknown.status != 0)
                #expect(unknown.error.contains("no connected worker worker-9"))
            }
        }
    }

    /// A small deterministic random generator, so a failing run can be repeated.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
