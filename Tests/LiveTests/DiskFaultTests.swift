// The journal and the hub's output against real limits: a hub whose data dir is a small tmpfs
// refuses publishes once it is full, works again once space returns, and after SIGKILL has
// every acknowledged event and none it refused; a tail follower that never reads is dropped
// and the hub's memory stays flat while ~30 MB are published.
import Foundation
import HeraldClient
import HeraldProtocol
import SocketFiles
import Testing

extension LiveSuites {
    @Suite("Disk faults and bounded output", .serialized)
    struct DiskFaultTests {
        /// Mounts a tmpfs of `size` on a new directory (tests run as root).
        static func mountTmpfs(size: String) throws -> String {
            var template = Array("/tmp/herald-disk.XXXXXX".utf8CString)
            guard let pointer = mkdtemp(&template) else { throw LiveStackError("mkdtemp failed") }
            let path = String(cString: pointer)
            guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path]) == 0 else {
                rmdir(path)
                throw LiveStackError("mount -t tmpfs on \(path) failed (the live tests run as root)")
            }
            return path
        }

        /// Unmounts (lazily if something still holds it) and removes the directory.
        static func unmount(_ path: String) {
            if run("/bin/umount", [path]) != 0 { _ = run("/bin/umount", ["-l", path]) }
            rmdir(path)
        }

        @discardableResult
        static func run(_ executable: String, _ arguments: [String]) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            guard (try? process.run()) != nil else { return -1 }
            process.waitUntilExit()
            return process.terminationStatus
        }

        /// The resident set of a process, in bytes (VmRSS of /proc/PID/status).
        static func residentBytes(_ pid: Int32) -> Int? {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
            else { return nil }
            return kilobytes * 1024
        }

        @Test(
            "a full disk: publishes are refused until space returns, then work; after SIGKILL every acknowledged event is there and no refused one",
            .timeLimit(.minutes(3)))
        func fullDisk() async throws {
            let mount = try Self.mountTmpfs(size: "3m")
            defer { Self.unmount(mount) }
            // Ballast taken away later to make room.
            try Data(count: 256 * 1024).write(to: URL(fileURLWithPath: "\(mount)/ballast"))
            // The read-back replays ~3 MB to one stream at once: room for it in the stream's queue.
            let environment = [
                "HERALD_HUB_ARGS": "--data-dir \(mount)/data", "HERALD_WORKER_ARGS": "--max-queued-bytes 33554432",
            ]
            try await LiveStack.with(environment: environment) { stack in
                let admin = try await stack.admin()
                let marker = try await admin.publish(channel: "disk", data: "marker")
                let padding = String(repeating: "x", count: 4096)
                var acknowledged: [String: String] = [:]  // id → data
                var refused: [String] = []
                var refusal: String?
                for number in 0..<2000 {
                    let data = "n\(number) \(padding)"
                    let reply = try await admin.request(["publish", "disk", data])
                    if let error = reply.error {
                        refused.append(data)
                        refusal = error
                        break
                    }
                    acknowledged[reply.lines[0]] = data
                }
                #expect(refusal?.contains("could not write its journal in \(mount)/data") == true, "\(refusal ?? "-")")
                #expect(refusal?.contains("No space left on device") == true)
                #expect(acknowledged.count > 100)
                // Still full: refused again.
                let again = try await admin.request(["publish", "disk", "full \(padding)"])
                #expect(again.error != nil)
                if again.error != nil { refused.append("full \(padding)") }

                try FileManager.default.removeItem(atPath: "\(mount)/ballast")
                let afterSpace = "after \(padding)"
                let id = try await admin.publish(channel: "disk", data: afterSpace)
                acknowledged[id] = afterSpace
                await admin.close()

                try stack.killHub()
                try await stack.waitForHub()
                // Everything after the marker comes back, in order: exactly the acknowledged
                // events, none that was refused.
                let ordered = acknowledged.keys.sorted { EventID(parsing: $0)!.sequence < EventID(parsing: $1)!.sequence }
                let client = try await RecordingClient.open(
                    port: stack.port, path: "/stream/disk", headers: [("Last-Event-ID", marker)])
                let events = try await client.waitFor(id: ordered.last!, within: 60)
                await client.close()
                #expect(events.map(\.lastEventId) == ordered, "the acknowledged events are back, nothing else")
                #expect(events.map(\.data) == ordered.map { acknowledged[$0]! })
                #expect(!events.contains { Set(refused).contains($0.data) }, "a refused event came back")
            }
        }

        @Test("a tail follower that never reads is dropped and the hub's memory stays within a few MB while ~30 MB are published")
        func stoppedTailIsDropped() async throws {
            try await LiveStack.with(environment: ["HERALD_HUB_ARGS": "--history-bytes 1048576"]) { stack in
                guard let pid = stack.pid(of: "hub") else { throw LiveStackError("no hub.pid") }
                let padding = String(repeating: "y", count: 4096)
                let batch = (0..<250).map { ["publish", "flood", "\($0) \(padding)"] }
                // Warm up: allocator pools and history at their working size first.
                for _ in 0..<4 { _ = try await onOwnThread { try stack.adminRequests(batch) } }
                let before = Self.residentBytes(pid) ?? 0

                let tail = try RawUnixSocket(path: stack.adminSocket)
                var small: Int32 = 4096
                setsockopt(tail.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
                tail.send(Array("tail *\n".utf8))
                _ = tail.read(within: 5) { $0.count >= 3 }  // "ok"; never read again
                for _ in 0..<30 {  // 30 × 250 × 4 KB ≈ 30 MB
                    let replies = try await onOwnThread { try stack.adminRequests(batch) }
                    #expect(replies.allSatisfy { $0.error == nil })
                }
                let after = Self.residentBytes(pid) ?? 0
                let stats = try stack.stats()
                #expect(stats.tailFollowersDropped >= 1)
                #expect(
                    after - before < 10 << 20,
                    "hub RSS grew from \(before >> 20) MB to \(after >> 20) MB while a tail follower did not read")
                tail.close()
            }
        }
    }
}
