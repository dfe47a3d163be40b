// Measuring from the outside, for the live tests and the benchmark: a monotonic clock that
// publisher and subscribers share (also across processes), and the resident memory and CPU
// time of the processes of a run directory.
import Foundation

/// The monotonic clock in nanoseconds (CLOCK_MONOTONIC): comparable within one machine.
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// The processes of a run directory: every pid file (hub, worker-N, nginx), and nginx's worker
/// processes as `nginx-worker-PID`.
public enum RunProcesses {
    /// Pids by name.
    public static func read(runDirectory: String) -> [String: Int32] {
        var result: [String: Int32] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        for file in files where file.hasSuffix(".pid") && !file.hasPrefix("deploy") {
            guard let text = try? String(contentsOfFile: "\(runDirectory)/\(file)", encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            let name = String(file.dropLast(4))
            result[name] = pid
            if name == "nginx",
                let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
            {
                for child in children.split(separator: " ").compactMap({ Int32($0) }) {
                    result["nginx-worker-\(child)"] = child
                }
            }
        }
        return result
    }
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

    /// The resident memory of every process of `runDirectory` (see ``RunProcesses``), by name.
    public static func read(runDirectory: String) -> [String: Int] {
        RunProcesses.read(runDirectory: runDirectory).mapValues(resident)
    }
}

/// CPU time (user + system) of processes, from /proc.
public enum ProcessCPU {
    /// Seconds of CPU `pid` has used so far (0 if it is gone).
    public static func seconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Seconds of CPU this process has used so far.
    public static func ownSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The CPU seconds of every process of `runDirectory` (see ``RunProcesses``), by name.
    public static func read(runDirectory: String) -> [String: Double] {
        RunProcesses.read(runDirectory: runDirectory).mapValues(seconds)
    }
}
