// Everything that sets how a process proves it is alive, with its default; the same for the
// hub and the workers (HubConfiguration.liveness, WorkerConfiguration.liveness).
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the event loops prove they turn and which watchdogs that feeds.
public struct LivenessSettings: Sendable {
    /// `--watchdog-file`: a file touched each time every event loop proved it turns
    /// (deploy/run kills the process once it grows too old); nil: no file.
    public var watchdogFile: String?
    /// `NOTIFY_SOCKET`: where systemd takes `READY=1`, `WATCHDOG=1` and `STOPPING=1`; nil: not
    /// under systemd (or a unit without `Type=notify`).
    public var systemd: SystemdNotifier?
    /// `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or this process): systemd's `WatchdogSec=`.
    /// `WATCHDOG=1` goes out every half of it while the loops turn; nil: no systemd watchdog.
    public var systemdWatchdogTime: TimeAmount?
    /// How often each event loop runs its tick task.
    public var tickInterval: TimeAmount = .milliseconds(250)
    /// A loop that has not ticked for this long holds the feeding back. A loop that cannot run a
    /// timer task for a second already fails its streams' latency; far longer than any fan-out
    /// burst measured on these machines (9,000 writes: 12 ms).
    public var stallAfter: TimeAmount = .seconds(1)
    /// How often the ticks are checked and, if every loop turns, the watchdog file touched
    /// (shortened to a quarter of the systemd watchdog time when that is less).
    public var checkInterval: TimeAmount = .milliseconds(500)

    /// No watchdog file, no systemd, the default intervals.
    public init() {}

    /// Takes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment`.
    public mutating func readSystemdEnvironment(_ environment: [String: String], ownPID: pid_t) {
        systemd = SystemdNotifier(notifySocket: environment["NOTIFY_SOCKET"])
        systemdWatchdogTime =
            systemd == nil
            ? nil
            : SystemdNotifier.watchdogTime(
                usec: environment["WATCHDOG_USEC"], pid: environment["WATCHDOG_PID"], ownPID: ownPID)
    }

    /// The interval between checks: ``checkInterval``, or a quarter of the systemd watchdog time if shorter.
    var effectiveCheckInterval: TimeAmount {
        guard let systemdWatchdogTime else { return checkInterval }
        return min(checkInterval, .nanoseconds(max(1_000_000, systemdWatchdogTime.nanoseconds / 4)))
    }
}
