// Measuring from the outside, for the live tests and the benchmark: a monotonic clock that
// publisher and subscribers in one process share, and the resident memory of processes.
import Foundation

/// The monotonic clock in nanoseconds (CLOCK_MONOTONIC): comparable within one machine.
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Resident memory of processes, from /proc.
public enum ProcessMemory {
    /// VmRSS of `pid` in kilobytes (0 if it is gone).
    public static func resident(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    /// The resident memory of every process with a pid file in `runDirectory` (hub, worker-N,
    /// nginx) and of nginx's worker processes, by name.
    public static func read(runDirectory: String) -> [String: Int] {
        var result: [String: Int] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        for file in files where file.hasSuffix(".pid") && !file.hasPrefix("deploy") {
            guard let text = try? String(contentsOfFile: "\(runDirectory)/\(file)", encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            let name = String(file.dropLast(4))
            result[name] = resident(pid)
            if name == "nginx",
                let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
            {
                for child in children.split(separator: " ").compactMap({ Int32($0) }) {
                    result["nginx-worker-\(child)"] = resident(child)
                }
            }
        }
        return result
    }
}
