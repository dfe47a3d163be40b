// The coordinator's view of the subscriber processes: herald-bench starts copies of itself,
// each holding a share of the streams on its own event loops, so that the client spreads over
// both cores and no process comes near the open-file limit. They talk in lines (FleetLine).
import Foundation

final class SubscriberFleet {
    private struct Member {
        let process: Process
        let input: FileHandle
        let output: LineReader
    }

    private let members: [Member]

    /// Starts one subscriber process per entry of `shares` (its number of subscribers), each
    /// with `arguments` plus its own `--subscribers` and `--first-subscriber` (the fleet-wide
    /// number of its first one).
    init(shares: [Int], arguments: [String]) throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var members: [Member] = []
        var first = 0
        for share in shares {
            let process = Process()
            process.executableURL = executable
            process.arguments =
                ["--subscriber-process", "--subscribers", "\(share)", "--first-subscriber", "\(first)"] + arguments
            first += share
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            members.append(
                Member(
                    process: process, input: input.fileHandleForWriting,
                    output: LineReader(output.fileHandleForReading)))
        }
        self.members = members
    }

    /// Waits until every process has all its streams up; returns their connect times.
    func waitUntilReady() async throws -> [Double] {
        var times: [Double] = []
        for member in members {
            let line = await member.output.next() ?? "\(FleetLine.failed) exited"
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.first.map(String.init) == FleetLine.ready, words.count == 2, let time = Double(words[1])
            else { throw BenchError("a subscriber process: \(line)") }
            times.append(time)
        }
        return times
    }

    /// Sends `line` to every process.
    func send(_ line: String) {
        for member in members { try? member.input.write(contentsOf: Data((line + "\n").utf8)) }
    }

    /// Collects every process's figures once it has drained, and waits for it to exit.
    func collect() async throws -> [SubscriberShare] {
        var shares: [SubscriberShare] = []
        for member in members {
            guard let line = await member.output.next() else { throw BenchError("a subscriber process exited") }
            shares.append(try JSONDecoder().decode(SubscriberShare.self, from: Data(line.utf8)))
            member.process.waitUntilExit()
        }
        return shares
    }

    /// Stops processes that are still running (after an error).
    func terminate() {
        for member in members where member.process.isRunning { member.process.terminate() }
    }
}

/// Reads lines from a pipe. The reads block, which is fine here: the coordinator waits for
/// these lines only while nothing else is going on (before and after publishing).
actor LineReader {
    private let handle: FileHandle
    private var pending = Data()

    init(_ handle: FileHandle) {
        self.handle = handle
    }

    /// The next line without its newline, or nil at end of file.
    func next() -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
        }
    }
}
