// The live path through real processes: nginx, a hub and two workers started by deploy/run.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

extension LiveSuites {
    @Suite("Live path through nginx")
    struct LivePathTests {
        @Test("stream headers, retry and init arrive before anything is published")
        func streamStartsAtOnce() async throws {
            try await LiveStack.with { stack in
                let stream = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                let head = try await stream.head()
                #expect(head.status == 200)
                #expect(head.headers["content-type"]?.hasPrefix("text/event-stream") == true)
                #expect(head.headers["cache-control"] == "no-cache, no-transform")
                #expect(head.headers["access-control-allow-origin"] == "*")
                #expect(try await stream.next() == .item(.retry(2000)))
                let initEvent = try await stream.nextEvent()
                #expect(initEvent.type == "init")
                #expect(initEvent.data == "{}")
                let id = try #require(EventID(parsing: initEvent.lastEventId))
                #expect(id.sequence == 0)
                #expect(try stack.stats().eventsPublished == 0)
                await stream.close()
            }
        }

        @Test("an event published with heraldctl reaches subscribers on both workers")
        func publishReachesBothWorkers() async throws {
            try await LiveStack.with { stack in
                var streams: [StreamProbe] = []
                for _ in 0..<4 {
                    let stream = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                    _ = try await stream.head()
                    #expect(try await stream.nextEvent().type == "init")
                    streams.append(stream)
                }
                let stats = try stack.stats()
                #expect(stats.workers.count == 2)
                #expect(
                    stats.workers.allSatisfy { $0.streamsByChannel["rooms"] ?? 0 >= 1 },
                    "least_conn spreads streams over both workers")

                let published = try stack.heraldctl(["publish", "rooms", #"{"room":"A","busy":true}"#])
                #expect(published.status == 0)
                let id = published.output.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(EventID(parsing: id)?.sequence == 1)
                for stream in streams {
                    let event = try await stream.nextEvent()
                    #expect(event == SSEMessage(type: "delta", data: #"{"room":"A","busy":true}"#, lastEventId: id))
                }
                let named = try stack.heraldctl(["publish", "rooms", "line one\nline two", "--event", "notice"])
                for stream in streams {
                    let event = try await stream.nextEvent()
                    #expect(event.type == "notice")
                    #expect(event.data == "line one\nline two")
                    #expect(event.lastEventId == named.output.trimmingCharacters(in: .whitespacesAndNewlines))
                    await stream.close()
                }
            }
        }

        @Test("with HERALD_NGINX_WORKERS=2, two nginx workers share the port and every stream gets the events")
        func twoNginxWorkers() async throws {
            try await LiveStack.with(environment: ["HERALD_NGINX_WORKERS": "2"]) { stack in
                let nginxWorkers = RunProcesses.read(runDirectory: stack.runDirectory).keys.filter {
                    $0.hasPrefix("nginx-worker-")
                }
                #expect(nginxWorkers.count == 2)
                var streams: [StreamProbe] = []
                for _ in 0..<8 {
                    let stream = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                    #expect(try await stream.head().status == 200)
                    #expect(try await stream.nextEvent().type == "init")
                    streams.append(stream)
                }
                let published = try stack.heraldctl(["publish", "rooms", "both nginx workers"])
                for stream in streams {
                    #expect(try await stream.nextEvent().data == "both nginx workers")
                    await stream.close()
                }
                #expect(published.status == 0)
            }
        }

        @Test("a stream only receives the events of its own channel")
        func channelsAreSeparate() async throws {
            try await LiveStack.with { stack in
                let rooms = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                let news = try await StreamProbe(port: stack.port, path: "/stream/news")
                for stream in [rooms, news] {
                    _ = try await stream.head()
                    _ = try await stream.nextEvent()
                }
                _ = try stack.heraldctl(["publish", "news", "first"])
                _ = try stack.heraldctl(["publish", "rooms", "second"])
                #expect(try await rooms.nextEvent().data == "second")
                #expect(try await news.nextEvent().data == "first")
                await rooms.close()
                await news.close()
            }
        }

        @Test("a CORS preflight gets the allowed methods and headers")
        func preflight() async throws {
            try await LiveStack.with { stack in
                let response = try await HTTPExchange.send(
                    port: stack.port, method: .OPTIONS, path: "/stream/rooms",
                    headers: [("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")])
                #expect(response.status == 204)
                #expect(response.headers["access-control-allow-origin"] == "*")
                #expect(response.headers["access-control-allow-methods"] == "GET, OPTIONS")
                #expect(
                    response.headers["access-control-allow-headers"]
                        == "Last-Event-ID, Cache-Control, X-Requested-With, Authorization, Idempotency-Key"
                )
            }
        }

        @Test("a client that disconnects disappears from stats")
        func disconnectedClientLeavesStats() async throws {
            try await LiveStack.with { stack in
                let stream = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                _ = try await stream.head()
                _ = try await stream.nextEvent()
                #expect(try stack.stats().streams == 1)
                await stream.close()
                let gone = try await stack.eventually { try stack.stats().streams == 0 }
                #expect(gone, "the worker still counts the closed stream")
            }
        }

        @Test("HTTP publishing with the bearer token reaches subscribers and answers with the id")
        func httpPublish() async throws {
            try await LiveStack.with { stack in
                let stream = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                _ = try await stream.head()
                _ = try await stream.nextEvent()
                let response = try await HTTPExchange.send(
                    port: stack.port, method: .POST, path: "/publish/rooms?event=booked",
                    headers: [("Authorization", "Bearer live-test-publish-token")], body: Array(#"{"room":"B"}"#.utf8))
                #expect(response.status == 200)
                let id = response.body.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(EventID(parsing: id) != nil)
                #expect(
                    try await stream.nextEvent() == SSEMessage(type: "booked", data: #"{"room":"B"}"#, lastEventId: id))
                await stream.close()
            }
        }

        @Test("bad requests get a clear status and message")
        func errorStatuses() async throws {
            try await LiveStack.with { stack in
                let badName = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/stream/no%20spaces")
                #expect(badName.status == 400)
                #expect(badName.body.contains("invalid channel name"))

                let tooLong = try await HTTPExchange.send(
                    port: stack.port, method: .GET, path: "/stream/" + String(repeating: "x", count: 65))
                #expect(tooLong.status == 400)

                let unknown = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/nowhere")
                #expect(unknown.status == 404)
                #expect(unknown.body.contains("no such path"))

                let wrongMethod = try await HTTPExchange.send(port: stack.port, method: .DELETE, path: "/stream/rooms")
                #expect(wrongMethod.status == 405)

                let oversize = try await HTTPExchange.send(
                    port: stack.port, method: .POST, path: "/publish/rooms",
                    headers: [("Authorization", "Bearer live-test-publish-token")],
                    body: Array(repeating: UInt8(ascii: "a"), count: 64 * 1024 + 1))
                #expect(oversize.status == 413)
                #expect(oversize.body.contains("too large"))

                let wrongToken = try await HTTPExchange.send(
                    port: stack.port, method: .POST, path: "/publish/rooms",
                    headers: [("Authorization", "Bearer nope")],
                    body: Array("x".utf8))
                #expect(wrongToken.status == 401)

                let badAdmin = try stack.heraldctl(["publish", "bad name", "x"])
                #expect(badAdmin.status != 0)
                #expect(badAdmin.error.contains("invalid channel name"))
                #expect(try stack.stats().eventsPublished == 0)
            }
        }

        @Test("without a configured token HTTP publishing is refused with a hint")
        func publishWithoutToken() async throws {
            try await LiveStack.with(publishToken: nil) { stack in
                let response = try await HTTPExchange.send(
                    port: stack.port, method: .POST, path: "/publish/rooms",
                    headers: [("Authorization", "Bearer anything")], body: Array("x".utf8))
                #expect(response.status == 403)
                #expect(response.body.contains("HERALD_PUBLISH_TOKEN"))
            }
        }
    }
}

extension LiveSuites {
    @Suite("Operations view")
    struct OperationsViewTests {
        @Test(
            "GET /metrics on the internal listener gives the hub's and every worker's figures in the Prometheus format; the public port answers /status and /metrics 404"
        )
        func prometheusMetrics() async throws {
            try await LiveStack.with { stack in
                let streams = [
                    try await RecordingClient.open(port: stack.port, path: "/stream/rooms"),
                    try await RecordingClient.open(port: stack.port, path: "/stream/rooms"),
                    // A name a subscriber picked: no events, so no series of its own.
                    try await RecordingClient.open(port: stack.port, path: "/stream/picked-by-a-client"),
                ]
                for stream in streams { _ = try await stream.waitFor("init") { !$0.isEmpty } }
                let admin = try await stack.admin()
                _ = try await admin.publish(channel: "rooms", data: "{}", merge: true)
                let response = try await HTTPExchange.send(port: stack.internalPort, method: .GET, path: "/metrics")
                #expect(response.status == 200)
                #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
                let lines = Set(response.body.split(separator: "\n").map(String.init))
                #expect(lines.contains("herald_hub_up 1.0"))
                #expect(lines.contains("herald_hub_sequence 1.0"))
                #expect(lines.contains("herald_hub_workers 2.0"))
                #expect(lines.contains("# TYPE herald_worker_events_sent_total counter"))
                for worker in ["worker-1", "worker-2"] {
                    #expect(lines.contains("herald_worker_hub_link_up{worker=\"\(worker)\"} 1.0"))
                    #expect(lines.contains("herald_worker_channel_streams{worker=\"\(worker)\",channel=\"rooms\"} 1.0"))
                }
                #expect(!response.body.contains("picked-by-a-client"), "a series for a channel without events")
                let other = lines.filter { $0.hasPrefix("herald_worker_channel_streams{") && $0.contains("(other)") }
                #expect(other.count == 2 && other.filter { $0.hasSuffix("} 1.0") }.count == 1, "\(other)")
                let fromAdmin = try await admin.request(["metrics"])
                #expect(fromAdmin.lines.contains("herald_hub_sequence 1.0"))

                let status = try await HTTPExchange.send(port: stack.internalPort, method: .GET, path: "/status")
                let worker = try #require(
                    WorkerStatsJSON.decode(status.body.trimmingCharacters(in: .whitespacesAndNewlines)))
                #expect((1...2).contains(worker.streams), "three streams over two workers")
                #expect(worker.hubLink == "live")

                // The public port: 404 from nginx for both (and their prefixes), never a worker's
                // figures; the internal listener serves nothing else.
                for path in ["/status", "/metrics", "/status.json", "/metrics/", "/status?x=1"] {
                    let hidden = try await HTTPExchange.send(port: stack.port, method: .GET, path: path)
                    #expect(hidden.status == 404, "\(path) on the public port")
                    #expect(hidden.body.contains("internal listener"), "\(path) on the public port")
                }
                for path in ["/", "/stream/rooms", "/publish/rooms"] {
                    let other = try await HTTPExchange.send(port: stack.internalPort, method: .GET, path: path)
                    #expect(other.status == 404, "\(path) on the internal listener")
                }
                for stream in streams { await stream.close() }
                await admin.close()
            }
        }
    }
}
