// Faults under load through real processes: a worker killed or stopped, nginx reloaded,
// clients that never read, 5,000 clients moved at once, and an admin peer of the wrong uid.
// Clients here behave as browsers do: they reconnect after `retry` with Last-Event-ID.
import Foundation
import HeraldClient
import HeraldProtocol
import SSE
import Testing

extension LiveSuites {
    @Suite("Faults and slow clients")
    struct ResilienceTests {
        /// Publishes on `channel` at `perSecond` until `count` events were acknowledged, calling
        /// `fault` once after `faultAfter` of them. Returns the acknowledged ids with their send time.
        static func publish(
            _ stack: LiveStack, channel: String, count: Int, perSecond: Int = 100, payloadBytes: Int = 0,
            faultAfter: Int? = nil,
            fault: () throws -> Void = {}
        ) async throws -> [(id: String, sent: ContinuousClock.Instant)] {
            var acknowledged: [(id: String, sent: ContinuousClock.Instant)] = []
            var admin: AdminConnection? = try await stack.admin()
            var next = ContinuousClock.now
            let padding = String(repeating: "x", count: payloadBytes)
            var faulted = false
            let deadline = ContinuousClock.now + .seconds(120)
            while acknowledged.count < count {
                guard ContinuousClock.now < deadline else {
                    throw ProbeError("only \(acknowledged.count) of \(count) publishes acknowledged within 120 s")
                }
                if let faultAfter, !faulted, acknowledged.count >= faultAfter {
                    try fault()
                    faulted = true
                }
                let sent = ContinuousClock.now
                do {
                    if admin == nil { admin = try await stack.admin() }
                    let id = try await admin!.publish(channel: channel, data: "\(acknowledged.count) \(padding)")
                    acknowledged.append((id, sent))
                } catch {
                    await admin?.close()
                    admin = nil
                }
                next += .milliseconds(1000 / perSecond)  // the load's pace, not a wait for anything
                try await Task.sleep(until: next)
            }
            await admin?.close()
            return acknowledged
        }

        /// Every client received every acknowledged event exactly once, in order, without a
        /// fresh init after its first (it resumed, it did not start over).
        static func expectExactlyOnce(
            _ clients: [RecordingClient], _ acknowledged: [String], within seconds: Double = 30
        ) async throws {
            let expected = Set(acknowledged.compactMap { EventID(parsing: $0)?.sequence })
            let last = try #require(acknowledged.last)
            for client in clients {
                let events = try await client.waitFor(id: last, within: seconds)
                let sequences = events.dropFirst().compactMap { EventID(parsing: $0.lastEventId)?.sequence }
                #expect(events.dropFirst().allSatisfy { $0.type == "delta" }, "a client had to start over with an init")
                #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 }, "duplicate or out-of-order event")
                #expect(expected.isSubset(of: Set(sequences)), "an acknowledged event is missing")
            }
        }

        static func openClients(_ stack: LiveStack, count: Int, path: String = "/stream/load") async throws
            -> [RecordingClient]
        {
            var clients: [RecordingClient] = []
            for _ in 0..<count {
                clients.append(try await RecordingClient.open(port: stack.port, path: path, reconnect: true))
            }
            for client in clients { _ = try await client.waitFor("init") { !$0.isEmpty } }
            return clients
        }

        @Test(
            "a worker killed with SIGKILL under load: its clients reconnect through nginx and every event arrives exactly once"
        )
        func workerCrash() async throws {
            try await LiveStack.with { stack in
                let clients = try await Self.openClients(stack, count: 100)
                let stats = try stack.stats()
                #expect(stats.workers.allSatisfy { $0.streams > 0 }, "both workers hold streams")
                let victim = try #require(stack.pid(of: "worker-1"))
                let acknowledged = try await Self.publish(stack, channel: "load", count: 400, faultAfter: 100) {
                    kill(victim, SIGKILL)
                }
                try await Self.expectExactlyOnce(clients, acknowledged.map(\.id))
                let reconnected = await clients.asyncCount { await $0.record.disconnects > 0 }
                #expect(reconnected > 0, "some clients were on the killed worker and had to reconnect")
                for client in clients { await client.close() }
            }
        }

        @Test("SIGTERM on a worker drains its streams with a jittered retry; its clients resume on the other worker")
        func workerGracefulStop() async throws {
            try await LiveStack.with { stack in
                let clients = try await Self.openClients(stack, count: 60)
                let worker = try #require(stack.pid(of: "worker-2"))
                let acknowledged = try await Self.publish(stack, channel: "load", count: 500, faultAfter: 50) {
                    kill(worker, SIGTERM)
                }
                try await Self.expectExactlyOnce(clients, acknowledged.map(\.id))
                var drainedRetries: [Int] = []
                for client in clients where await client.record.retries.count > 1 {
                    drainedRetries.append(contentsOf: await client.record.retries.dropFirst().filter { $0 != 2000 })
                }
                #expect(!drainedRetries.isEmpty, "the stopped worker sent its clients a retry before closing")
                #expect(drainedRetries.allSatisfy { (2000...7000).contains($0) })
                for client in clients { await client.close() }
            }
        }

        @Test("nginx reloaded under load: clients reconnect to the new nginx workers and lose nothing")
        func nginxReload() async throws {
            try await LiveStack.with { stack in
                let clients = try await Self.openClients(stack, count: 60)
                let nginx = try #require(stack.pid(of: "nginx"))
                // Old nginx workers close their streams at worker_shutdown_timeout (10 s): publish past it.
                let acknowledged = try await Self.publish(stack, channel: "load", count: 1600, faultAfter: 100) {
                    kill(nginx, SIGHUP)
                }
                try await Self.expectExactlyOnce(clients, acknowledged.map(\.id))
                let reconnected = await clients.asyncCount { await $0.record.disconnects > 0 }
                #expect(reconnected == clients.count, "every stream moved to a new nginx worker")
                for client in clients { await client.close() }
            }
        }

        @Test(
            "50 clients that never read next to 500 that do: the slow ones are dropped, the others get every event, worker memory stays bounded"
        )
        func slowClients() async throws {
            try await LiveStack.with(environment: ["HERALD_WORKER_ARGS": "--max-queued-bytes 131072"]) { stack in
                var normal: [CountingClient] = []
                for _ in 0..<500 {
                    normal.append(try await CountingClient.open(port: stack.port, path: "/stream/load"))
                }
                let ready = try await stack.eventually { normal.allSatisfy { $0.record.events >= 1 } }
                #expect(ready, "every normal client got its init")
                let workers = ["worker-1", "worker-2"].compactMap { stack.pid(of: $0) }
                let rssBefore = workers.map(ProcessMemory.resident)

                // Without slow clients first: the latency the normal clients see.
                let quiet = try await Self.publishTimed(stack, count: 100, firehoseBytes: nil)
                let quietLatency = try await Self.latencies(normal, upTo: quiet, within: 30)

                // 50 clients that never read, on a firehose of 8 KB events on the same workers.
                let slow = try (0..<50).map { _ in try NeverReadingClient(port: stack.port, path: "/stream/firehose") }
                let connected = try await stack.eventually(within: 10) { try stack.stats().streams == 550 }
                #expect(connected, "the 50 slow clients are connected")
                let loaded = try await Self.publishTimed(stack, count: 100, firehoseBytes: 8000)
                let loadedLatency = try await Self.latencies(normal, upTo: loaded, within: 30)

                let allDropped = try await stack.eventually(within: 20) {
                    try stack.stats().workers.reduce(0) { $0 + $1.slowClientsDropped } >= 50
                }
                #expect(allDropped, "every client that never reads is dropped")
                for client in normal {
                    let record = client.record
                    #expect(
                        record.events == 201 && record.outOfOrder == 0 && record.lastSequence == loaded,
                        "a normal client missed events")
                }
                let rssAfter = workers.map(ProcessMemory.resident)
                for (before, after) in zip(rssBefore, rssAfter) {
                    #expect(after - before < 64 * 1024, "worker RSS grew by \(after - before) KB with 50 slow clients")
                }
                print(
                    "slow clients: 500 normal clients, publish-to-arrival p50/p99 without slow clients \(quietLatency.p50)/\(quietLatency.p99) ms, "
                        + "with 50 clients that never read \(loadedLatency.p50)/\(loadedLatency.p99) ms; worker RSS \(rssBefore) -> \(rssAfter) KB"
                )
                for client in slow { client.close() }
                for client in normal { await client.close() }
            }
        }

        /// Publishes `count` small events on `load` at 100/s, each starting with the monotonic
        /// time it was sent, and with `firehoseBytes` an event of that size on `firehose` at each
        /// tick too. Returns the last sequence on `load`.
        static func publishTimed(_ stack: LiveStack, count: Int, firehoseBytes: Int?) async throws -> UInt64 {
            let admin = try await stack.admin()
            let padding = firehoseBytes.map { String(repeating: "x", count: $0) }
            var next = ContinuousClock.now
            var last: UInt64 = 0
            for _ in 0..<count {
                if let padding { _ = try await admin.publish(channel: "firehose", data: padding) }
                let id = try await admin.publish(channel: "load", data: "\(monotonicNanoseconds()) tick")
                last = EventID(parsing: id)?.sequence ?? 0
                next += .milliseconds(10)  // the load's pace, not a wait for anything
                try await Task.sleep(until: next)
            }
            await admin.close()
            return last
        }

        /// p50 and p99 (ms) of the latencies recorded since the last call, once every client has `sequence`.
        static func latencies(_ clients: [CountingClient], upTo sequence: UInt64, within seconds: Double) async throws
            -> (p50: Int, p99: Int)
        {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while !clients.allSatisfy({ $0.record.lastSequence >= sequence }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            var samples: [Double] = []
            for client in clients {
                samples += client.state.value.withLock { record in
                    defer { record.latencies.removeAll() }
                    return record.latencies
                }
            }
            samples.sort()
            guard !samples.isEmpty else { return (0, 0) }
            return (Int(samples[samples.count / 2]), Int(samples[min(samples.count - 1, samples.count * 99 / 100)]))
        }

        @Test("5,000 clients drained at once are all streaming again, spread out by the retry jitter")
        func reconnectStorm() async throws {
            try await LiveStack.with { stack in
                var clients: [RecordingClient] = []
                for _ in 0..<5000 {
                    clients.append(
                        try await RecordingClient.open(port: stack.port, path: "/stream/storm", reconnect: true))
                }
                let connected = try await stack.eventually(within: 60) { try stack.stats().streams == 5000 }
                #expect(connected)
                let start = ContinuousClock.now
                let drained = try stack.adminRequest(["drain", "--retry", "1000", "--jitter", "4000"])
                #expect(drained.error == nil)
                let allBack = try await stack.eventually(within: 60) {
                    guard try stack.stats().streams == 5000 else { return false }
                    return await clients.asyncCount { await $0.record.disconnects >= 1 } == 5000
                }
                let elapsed = ContinuousClock.now - start
                #expect(allBack, "not every client was streaming again")
                let id = try #require(try stack.adminRequest(["publish", "storm", "after"]).lines.first)
                for client in clients { _ = try await client.waitFor(id: id) }
                print(
                    "reconnect storm: 5000 clients drained with retry 1000 ms + up to 4000 ms jitter, all streaming again after \(elapsed)"
                )
                for client in clients { await client.close() }
            }
        }

        @Test("the admin socket refuses a peer whose uid is not allowed, and accepts it once allowed")
        func adminPeerCredentials() async throws {
            for allowed in [false, true] {
                let hubArguments = "--admin-socket-mode 0666" + (allowed ? " --admin-uid 65534" : "")
                try await LiveStack.with(environment: ["HERALD_HUB_ARGS": hubArguments]) { stack in
                    chmod(stack.runDirectory, 0o711)  // let uid 65534 reach the socket file
                    let result = try stack.heraldctl(["stats"], asUser: 65534)
                    if allowed {
                        #expect(result.status == 0, "\(result.error)")
                        #expect(result.output.contains("workers: 2"))
                    } else {
                        #expect(result.status != 0)
                        #expect(result.error.contains("uid 65534 may not use this admin socket"))
                    }
                }
            }
        }
    }
}

/// A client that sends its request and never reads, with a small receive buffer.
final class NeverReadingClient: Sendable {
    let fd: Int32

    init(port: Int, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw LiveStackError("connect failed") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    }

    func close() { _ = Glibc.close(fd) }
}

extension Array where Element: Sendable {
    /// How many elements satisfy an async predicate.
    func asyncCount(_ predicate: (Element) async -> Bool) async -> Int {
        var count = 0
        for element in self where await predicate(element) { count += 1 }
        return count
    }
}
