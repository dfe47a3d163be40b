// A client that stops reading on a channel with state is not cut off: past its queued-bytes
// bound the worker skips the deltas, and once the socket drains writes one fresh init and the
// deltas after it, on the same connection. The client (curl, stopped with SIGSTOP while 20 MB
// of merge patches flow, then continued) ends with the hub's exact state.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension LiveSuites {
    @Suite("Slow clients on state")
    struct SlowStateClientTests {
        @Test("a stopped client catches up on 20 MB of merge patches with a fresh init on the same connection")
        func stoppedClientCatchesUpByInit() async throws {
            let environment = ["HERALD_HUB_ARGS": "--fsync off"]
            try await LiveStack.with(workers: 1, environment: environment) { stack in
                let output = "\(stack.runDirectory)/slow-client.sse"
                let curl = Process()
                curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                curl.arguments = ["-sN", "--max-time", "120", "-o", output, "http://127.0.0.1:\(stack.port)/stream/board"]
                try curl.run()
                defer {
                    kill(curl.processIdentifier, SIGCONT)
                    kill(curl.processIdentifier, SIGKILL)
                    curl.waitUntilExit()
                }
                let started = try await stack.eventually {
                    ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("event: init")
                }
                try #require(started, "curl got no init")
                #expect(kill(curl.processIdentifier, SIGSTOP) == 0)

                // 200 patches of 100 KB, each replacing the one key: 20 MB through a client that
                // reads nothing, with a state of 100 KB (the hub serializes it once per event). It
                // takes well under nginx's 60 s send_timeout for a client that takes nothing.
                let admin = try await stack.admin()
                let block = String(repeating: "x", count: 100_000)
                for index in 0..<200 {
                    _ = try await admin.publish(
                        channel: "board", data: #"{"k":"\#(index)-\#(block)"}"#, merge: true)
                }
                let figures = try stack.stats().workers.first
                #expect(figures?.slowClientsCaughtUp == 1, "the stream was not caught up: \(String(describing: figures))")
                #expect(figures?.slowClientsDropped == 0)
                #expect(kill(curl.processIdentifier, SIGCONT) == 0)

                // After the catch-up init, a marker delta: once it is in the file, all came.
                let marker = try await admin.publish(channel: "board", data: #"{"marker":true}"#, merge: true)
                let arrived = try await stack.eventually(within: 60) {
                    ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("id: \(marker)\n")
                }
                try #require(arrived, "the marker never reached the client")
                #expect(curl.isRunning, "curl's one connection ended")

                // Replay what the client got, in order: its state is the hub's.
                var parser = SSEParser()
                let bytes = try #require(FileManager.default.contents(atPath: output))
                var state = JSONValue.object(JSONObject())
                var inits = 0
                var deltas = 0
                for case .event(let message) in parser.feed(bytes) {
                    let value = try JSONValue(parsing: message.data)
                    if message.type == "init" {
                        inits += 1
                        state = value
                    } else if message.type == "delta" {
                        deltas += 1
                        state = state.merging(patch: value)
                    }
                }
                let hubState = try #require(try await admin.request(["state", "get", "board"]).lines.first)
                #expect(state.serialized == hubState, "the client's state is not the hub's")
                #expect(inits == 2, "one init at the start, one to catch up: \(inits)")
                #expect(deltas < 201, "some deltas were skipped, not all 201 written (\(deltas))")
                await admin.close()
            }
        }
    }
}
