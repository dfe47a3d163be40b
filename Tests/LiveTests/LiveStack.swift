// A whole Herald for one test: deploy/run with the binaries this test build made, on a
// temporary run dir and a free loopback port, stopped by PID when the test ends.
import Foundation
import HeraldClient
import HeraldProtocol
import NIOCore
import NIOPosix
import SocketFiles
import Testing

/// A running hub, workers and nginx, started through `deploy/run`.
final class LiveStack: Sendable {
    let port: Int
    /// nginx's internal listener (`HERALD_INTERNAL_PORT`): `/status` and `/metrics`.
    let internalPort: Int
    let runDirectory: String
    let binDirectory: String
    let publishToken: String?
    private let process: ChildProcess

    /// The repository root (this file is Tests/LiveTests/LiveStack.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The directory with herald-hub, herald-worker and heraldctl: `HERALD_BIN_DIR`, or the
    /// directory of this test binary (SwiftPM puts products beside it).
    static var binDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["HERALD_BIN_DIR"], !configured.isEmpty {
            return configured
        }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // On Linux the test binary is .build/debug/HeraldPackageTests.xctest itself.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("herald-hub").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }

    private init(
        port: Int, internalPort: Int, runDirectory: String, binDirectory: String, publishToken: String?,
        process: ChildProcess
    ) {
        self.port = port
        self.internalPort = internalPort
        self.runDirectory = runDirectory
        self.binDirectory = binDirectory
        self.publishToken = publishToken
        self.process = process
    }

    /// Starts a stack and waits for its `Herald ready` line.
    static func start(workers: Int = 2, publishToken: String? = "live-test-publish-token", extraEnvironment: [String: String] = [:])
        async throws -> LiveStack
    {
        let runDirectory = try makeTemporaryDirectory()
        let port = try freePort()
        var internalPort = try freePort()
        while internalPort == port { internalPort = try freePort() }
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_BIN_DIR"] = binDirectory
        environment["HERALD_RUN_DIR"] = runDirectory
        environment["HERALD_PORT"] = "\(port)"
        environment["HERALD_INTERNAL_PORT"] = "\(internalPort)"
        environment["HERALD_WORKERS"] = "\(workers)"
        environment["HERALD_PUBLISH_TOKEN"] = publishToken ?? ""
        environment["HERALD_STOP_WITH_PARENT"] = "1"
        environment["HERALD_SEED"] = "0"  // the demo rooms would be state the tests do not expect
        environment.merge(extraEnvironment) { $1 }
        let process = try ChildProcess.spawn(
            "/bin/bash", arguments: ["\(repositoryRoot)/deploy/run"], environment: environment,
            errorLog: "\(runDirectory)/deploy-run.err")
        let stack = LiveStack(
            port: port, internalPort: internalPort, runDirectory: runDirectory, binDirectory: binDirectory,
            publishToken: publishToken, process: process)
        // Readiness: deploy/run prints its one stdout line once every piece accepts connections.
        guard await process.waitForOutput(containing: "Herald ready: ") else {
            let log = (try? String(contentsOfFile: "\(runDirectory)/deploy-run.err", encoding: .utf8)) ?? ""
            await stack.stop()
            throw LiveStackError("deploy/run did not become ready:\n\(log.suffix(3000))")
        }
        return stack
    }

    /// Stops deploy/run (which stops what it started, by PID) and waits for it.
    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(atPath: runDirectory)
    }

    var adminSocket: String { "\(runDirectory)/admin.sock" }

    /// The pid in a pid file of the run dir (`hub`, `worker-1`, `nginx`).
    func pid(of component: String) -> Int32? {
        (try? String(contentsOfFile: "\(runDirectory)/\(component).pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Runs heraldctl against this stack (as user `asUser` if given, through setpriv); returns
    /// its exit status and standard output.
    func heraldctl(_ arguments: [String], asUser uid: Int? = nil, input: String? = nil) throws -> (
        status: Int32, output: String, error: String
    ) {
        let process = Process()
        if let uid {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments =
                ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "\(binDirectory)/heraldctl"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "\(binDirectory)/heraldctl")
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_ADMIN_SOCKET"] = adminSocket
        process.environment = environment
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let inputPipe = Pipe()
        if input != nil { process.standardInput = inputPipe }
        try process.run()
        if let input {
            inputPipe.fileHandleForWriting.write(Data(input.utf8))
            try inputPipe.fileHandleForWriting.close()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outputData, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self)
        )
    }

    /// `stats --json` on the admin socket, decoded. (Not through heraldctl: spawning a
    /// process while a test holds thousands of sockets crashed Foundation's Process.)
    func stats() throws -> HubStats {
        let reply = try adminRequest(["stats", "--json"])
        guard reply.error == nil, let json = reply.lines.first, let stats = WorkerStatsJSON.decodeHub(json) else {
            throw LiveStackError("stats failed: \(reply.error ?? "unreadable reply")")
        }
        return stats
    }

    /// One blocking admin request on a new connection.
    func adminRequest(_ words: [String]) throws -> AdminReply {
        try adminRequests([words])[0]
    }

    /// Blocking admin requests on a new connection, sent in one write (pipelined); the
    /// replies, in the order the hub sent them.
    func adminRequests(_ requests: [[String]]) throws -> [AdminReply] {
        guard let fd = UnixListener.connect(adminSocket) else {
            throw LiveStackError("cannot connect to \(adminSocket)")
        }
        defer { close(fd) }
        let line = Array(requests.map { AdminLine.join($0) + "\n" }.joined().utf8)
        guard line.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == line.count else {
            throw LiveStackError("cannot send to \(adminSocket)")
        }
        // Every reply ends with an empty line: read until there are as many as requests.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var ends = 0
        while ends < requests.count {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            for byte in buffer[0..<count] {
                if byte == 10, received.last == 10 || received.isEmpty { ends += 1 }
                received.append(byte)
            }
        }
        var replies: [AdminReply] = []
        for block in String(decoding: received, as: UTF8.self).components(separatedBy: "\n\n") where !block.isEmpty {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let reply = AdminReply(lines: lines) else {
                throw LiveStackError("unexpected reply from the hub: \(lines.first ?? "")")
            }
            replies.append(reply)
        }
        guard replies.count == requests.count else {
            throw LiveStackError("the hub sent \(replies.count) replies to \(requests.count) requests")
        }
        return replies
    }

    /// Polls `condition` until it holds or `seconds` pass: for state that settles asynchronously
    /// (a closed client leaving the stats), never as a stand-in for a readiness signal.
    func eventually(within seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs `body` with a fresh stack and always stops it.
    static func with<T>(
        workers: Int = 2, publishToken: String? = "live-test-publish-token", environment: [String: String] = [:],
        _ body: (LiveStack) async throws -> T
    ) async throws -> T {
        let stack = try await start(workers: workers, publishToken: publishToken, extraEnvironment: environment)
        do {
            let result = try await body(stack)
            await stack.stop()
            return result
        } catch {
            await stack.stop()
            throw error
        }
    }

    /// A new connection to the hub's admin socket.
    func admin() async throws -> AdminConnection {
        try await AdminConnection.connect(path: adminSocket)
    }

    /// Waits until a (re)started hub accepts admin connections and its workers are back.
    func waitForHub(workers: Int = 2, within seconds: Double = 30) async throws {
        let ready = try await eventually(within: seconds) {
            guard UnixListener.isServed(adminSocket) else { return false }
            return (try? stats().workers.count) == workers
        }
        guard ready else {
            let admin = UnixListener.isServed(adminSocket) ? "served" : "not served"
            let workers = (try? stats().workers.count).map { "\($0)" } ?? "no answer"
            throw LiveStackError(
                "the hub did not come back within \(seconds) s (admin socket \(admin), workers in stats: \(workers))\n"
                    + "hub.log:\n\(logTail("hub.log"))\ndeploy-run.err:\n\(logTail("deploy-run.err"))")
        }
    }

    /// `kill -9` of the hub; deploy/run restarts it after a second.
    /// The last `lines` lines of a log in the run dir, for failure messages.
    func logTail(_ name: String, lines: Int = 25) -> String {
        let text = (try? String(contentsOfFile: "\(runDirectory)/\(name)", encoding: .utf8)) ?? "(no \(name))"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    func killHub() throws {
        guard let pid = pid(of: "hub") else { throw LiveStackError("no hub.pid") }
        kill(pid, SIGKILL)
    }

    private static func makeTemporaryDirectory() throws -> String {
        // Short, because unix socket paths are limited to about 100 bytes.
        var template = Array("/tmp/herald-test.XXXXXX".utf8CString)
        guard let pointer = mkdtemp(&template) else { throw LiveStackError("mkdtemp failed") }
        return String(cString: pointer)
    }

    /// A loopback port nobody listens on right now, below the kernel's ephemeral range (32768
    /// and up here), so that the tests' own outgoing connections cannot take it in the meantime.
    static func freePort() throws -> Int {
        let group = MultiThreadedEventLoopGroup.singleton
        for _ in 0..<100 {
            let candidate = Int.random(in: 20_000..<32_000)
            guard let channel = try? ServerBootstrap(group: group).bind(host: "127.0.0.1", port: candidate).wait()
            else { continue }
            try channel.close().wait()
            return candidate
        }
        throw LiveStackError("no free loopback port between 20000 and 32000")
    }
}

struct LiveStackError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
