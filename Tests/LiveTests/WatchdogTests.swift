// Hung processes through real processes: a worker or the hub stopped with SIGSTOP stops
// feeding its watchdog file; deploy/run finds it hung, kills it and restarts it. Clients
// reconnect (worker) or keep their streams while the workers catch up (hub), and every
// acknowledged event arrives exactly once.
import Foundation
import HeraldClient
import HeraldProtocol
import SocketFiles
import Testing

extension LiveSuites {
    @Suite("Hung processes")
    struct WatchdogTests {
        /// deploy/run's default HERALD_WATCHDOG_SECONDS.
        static let bound: Double = 2
        /// From the stop to a new process serving its socket: the bound, up to 0.5 s until
        /// deploy/run's next check, its 1 s before a restart, the start itself, and slack for
        /// a loaded 2-core machine.
        static let replacementLimit: Double = bound + 0.5 + 1 + 3

        /// Polls (every 20 ms, for at most 60 s) until `component` runs under another pid than
        /// `old` and serves `socket`; returns when that was seen.
        static func replacement(of component: String, old: Int32, socket: String, in stack: LiveStack)
            -> Task<ContinuousClock.Instant?, Never>
        {
            Task {
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, !Task.isCancelled {
                    if let pid = stack.pid(of: component), pid != old, UnixListener.isServed(socket) {
                        return ContinuousClock.now
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return nil
            }
        }

        static func supervisorLog(_ stack: LiveStack) -> String {
            (try? String(contentsOfFile: "\(stack.runDirectory)/deploy-run.err", encoding: .utf8)) ?? ""
        }

        @Test(
            "a worker stopped with SIGSTOP under reconnecting clients is replaced within the watchdog bound, and every event arrives exactly once",
            .timeLimit(.minutes(3)))
        func stoppedWorker() async throws {
            try await LiveStack.with { stack in
                let clients = try await ResilienceTests.openClients(stack, count: 100)
                #expect(try stack.stats().workers.allSatisfy { $0.streams > 0 }, "both workers hold streams")
                let log = try String(contentsOfFile: "\(stack.runDirectory)/worker-1.log", encoding: .utf8)
                #expect(log.contains("watchdog feeding on"), "the worker says at start that it feeds its watchdog")
                let victim = try #require(stack.pid(of: "worker-1"))
                defer { kill(victim, SIGCONT) }
                let replaced = Self.replacement(
                    of: "worker-1", old: victim, socket: "\(stack.runDirectory)/worker-1.sock", in: stack)
                defer { replaced.cancel() }
                var stoppedAt: ContinuousClock.Instant?
                // 800 events at 100/s: publishing goes on past the replacement.
                let acknowledged = try await ResilienceTests.publish(
                    stack, channel: "load", count: 800, faultAfter: 100,
                    fault: {
                        kill(victim, SIGSTOP)
                        stoppedAt = .now
                    })
                let start = try #require(stoppedAt)
                let end = try #require(await replaced.value, "worker-1 was not replaced within 60 s")
                let took = (end - start) / .seconds(1)
                #expect(took <= Self.replacementLimit, "replaced after \(took) s")
                #expect(took >= Self.bound, "killed before its watchdog file was \(Self.bound) s old (\(took) s)")
                #expect(Self.supervisorLog(stack).contains("worker-1 (pid \(victim)) is hung"))

                try await ResilienceTests.expectExactlyOnce(clients, acknowledged.map(\.id))
                let reconnected = await clients.asyncCount { await $0.record.disconnects > 0 }
                #expect(reconnected > 0, "the stopped worker's clients reconnected")
                print(
                    "hung worker: SIGSTOP to a new worker serving its socket in \(String(format: "%.1f", took)) s "
                        + "(HERALD_WATCHDOG_SECONDS=\(Int(Self.bound))); \(reconnected) of \(clients.count) clients reconnected, "
                        + "\(acknowledged.count) events each exactly once")
                for client in clients { await client.close() }
            }
        }

        @Test(
            "a hub stopped with SIGSTOP is replaced within the watchdog bound; the workers keep their clients, catch up, and every event arrives exactly once",
            .timeLimit(.minutes(3)))
        func stoppedHub() async throws {
            try await LiveStack.with { stack in
                let clients = try await ResilienceTests.openClients(stack, count: 100)
                let epoch = try stack.stats().epoch
                let log = try String(contentsOfFile: "\(stack.runDirectory)/hub.log", encoding: .utf8)
                #expect(log.contains("watchdog feeding on"), "the hub says at start that it feeds its watchdog")
                let victim = try #require(stack.pid(of: "hub"))
                defer { kill(victim, SIGCONT) }
                let replaced = Self.replacement(of: "hub", old: victim, socket: stack.adminSocket, in: stack)
                defer { replaced.cancel() }
                var stoppedAt: ContinuousClock.Instant?
                // Publishes wait while the hub is stopped, fail when it is killed, and go on
                // (on a new connection) once the new hub serves.
                let acknowledged = try await ResilienceTests.publish(
                    stack, channel: "load", count: 600, faultAfter: 100,
                    fault: {
                        kill(victim, SIGSTOP)
                        stoppedAt = .now
                    })
                let start = try #require(stoppedAt)
                let end = try #require(await replaced.value, "the hub was not replaced within 60 s")
                let took = (end - start) / .seconds(1)
                #expect(took <= Self.replacementLimit, "replaced after \(took) s")
                #expect(took >= Self.bound, "killed before its watchdog file was \(Self.bound) s old (\(took) s)")
                #expect(Self.supervisorLog(stack).contains("hub (pid \(victim)) is hung"))

                try await stack.waitForHub()
                #expect(try stack.stats().epoch == epoch, "the new hub kept the journal's epoch")
                try await ResilienceTests.expectExactlyOnce(clients, acknowledged.map(\.id))
                let reconnected = await clients.asyncCount { await $0.record.disconnects > 0 }
                #expect(reconnected == 0, "the workers kept every stream while the hub was replaced")
                print(
                    "hung hub: SIGSTOP to a new hub serving its sockets in \(String(format: "%.1f", took)) s "
                        + "(HERALD_WATCHDOG_SECONDS=\(Int(Self.bound))); workers caught up, \(clients.count) clients kept "
                        + "their streams, \(acknowledged.count) events each exactly once")
                for client in clients { await client.close() }
            }
        }
    }
}
