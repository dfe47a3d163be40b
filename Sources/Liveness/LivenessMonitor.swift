// The process's voice to its supervisors (systemd, deploy/run). It has every event loop of the
// process run a small repeated tick task and feeds the watchdogs (systemd's WATCHDOG=1, the
// watchdog file) only while every loop ticks: a process that is stopped, deadlocked or blocked
// on a loop goes quiet and is replaced. It also says READY=1 once every part of the process is
// ready and STOPPING=1 when shutdown begins.
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Watches event loops turn and feeds the watchdogs while they all do.
///
/// Run it as the first service of the process's `ServiceGroup`: the group stops services in
/// reverse order, so it stops last and goes on feeding while the others drain.
public final class LivenessMonitor: Service, Sendable {
    private struct State {
        var check: LivenessCheck
        /// Parts not ready yet; READY=1 goes out when the last one is.
        var waitingFor: [String]
        var readySent = false
        var stoppingSent = false
        /// The last check held the feeding back (to log a stall once, and its end).
        var stalled = false
        /// The last error of each watchdog ("file", "systemd"), logged once until it changes.
        var lastErrors: [String: String] = [:]
    }

    private let settings: LivenessSettings
    private let logger: Logger
    private let clock: @Sendable () -> NIODeadline
    private let state: NIOLockedValueBox<State>

    /// A monitor that sends READY=1 once each of `readyParts` was reported with ``partReady(_:)``.
    /// - Parameter clock: monotonic time; tests pass their own.
    public init(
        settings: LivenessSettings, readyParts: [String], logger: Logger,
        clock: @escaping @Sendable () -> NIODeadline = { NIODeadline.now() }
    ) {
        self.settings = settings
        self.logger = logger
        self.clock = clock
        let check = LivenessCheck(
            stallAfter: settings.stallAfter,
            systemdPingInterval: settings.systemdWatchdogTime.map { .nanoseconds($0.nanoseconds / 2) })
        state = NIOLockedValueBox(State(check: check, waitingFor: readyParts))
    }

    /// Whether anything is fed at all: a watchdog file, or a systemd watchdog time.
    public var feeds: Bool { settings.watchdogFile != nil || settings.systemdWatchdogTime != nil }

    /// Starts a tick task on each of `loops`; from now on every one of them must keep turning
    /// for the watchdogs to be fed. Call it once the loops serve (after any long startup work
    /// done on them, such as a journal replay), since a loop busy with that does not tick.
    public func watch(_ loops: [any EventLoop], name: String) {
        let interval = settings.tickInterval
        for loop in loops {
            let index = state.withLockedValue { $0.check.addLoop() }
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [state, clock] _ in
                let now = clock()
                state.withLockedValue { $0.check.tick(loop: index, at: now) }
            }
        }
        logger.info(
            "watching event loops turn",
            metadata: [
                "liveness.loops": "\(loops.count) (\(name))",
                "liveness.stallAfterMs": "\(settings.stallAfter.nanoseconds / 1_000_000)",
            ])
    }

    /// `part` is ready; once every part is, systemd gets READY=1 (once).
    public func partReady(_ part: String) {
        let send = state.withLockedValue { state -> Bool in
            state.waitingFor.removeAll { $0 == part }
            guard state.waitingFor.isEmpty, !state.readySent else { return false }
            state.readySent = true
            return true
        }
        guard send, let systemd = settings.systemd else { return }
        notify(systemd, "READY=1")
    }

    /// Shutdown begins: systemd gets STOPPING=1 (once). The watchdogs are still fed until
    /// ``run()`` ends.
    public func stopping() {
        let send = state.withLockedValue { state -> Bool in
            defer { state.stoppingSent = true }
            return !state.stoppingSent
        }
        guard send, let systemd = settings.systemd else { return }
        notify(systemd, "STOPPING=1")
    }

    /// Checks the ticks every ``LivenessSettings/checkInterval`` and feeds the watchdogs while
    /// every loop turns, until graceful shutdown reaches this service (or it is cancelled).
    ///
    /// This runs on Swift's cooperative pool, apart from the loops it watches, so a stuck loop
    /// cannot hide itself; a stuck pool stops the feeding too. Its I/O is one non-blocking
    /// datagram and one file-time update per check.
    public func run() async throws {
        if feeds {
            var metadata: Logger.Metadata = [
                "watchdog.checkMs": "\(settings.effectiveCheckInterval.nanoseconds / 1_000_000)"
            ]
            if let file = settings.watchdogFile { metadata["watchdog.file"] = "\(file)" }
            if let time = settings.systemdWatchdogTime {
                metadata["watchdog.systemdEveryMs"] = "\(time.nanoseconds / 2_000_000)"
            }
            logger.info("watchdog feeding on: fed only while every event loop turns", metadata: metadata)
        } else {
            logger.info("watchdog feeding off: no --watchdog-file and no systemd WatchdogSec= (WATCHDOG_USEC)")
        }
        let interval = Duration.nanoseconds(settings.effectiveCheckInterval.nanoseconds)
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                _ = self.feed()
            }
        }
    }

    /// One check: feeds the watchdogs if every loop turns, logs a stall when it begins and ends.
    func feed() -> LivenessCheck.Decision {
        let now = clock()
        let (decision, loops, wasStalled) = state.withLockedValue { state in
            let decision = state.check.check(at: now)
            let wasStalled = state.stalled
            state.stalled = !decision.fed && state.check.loops > 0
            return (decision, state.check.loops, wasStalled)
        }
        guard decision.fed else {
            if loops > 0, !wasStalled, feeds {
                let stalls = decision.stalled.map { stall in
                    "loop \(stall.loop): "
                        + (stall.silentFor.map { "\($0.nanoseconds / 1_000_000) ms" } ?? "never ticked")
                }
                logger.warning(
                    "an event loop stopped turning: the watchdog is no longer fed",
                    metadata: ["liveness.stalled": "\(stalls.joined(separator: ", "))"])
            }
            return decision
        }
        if wasStalled, feeds { logger.notice("every event loop turns again: feeding the watchdog") }
        if let file = settings.watchdogFile {
            do {
                try WatchdogFile(path: file).touch()
                noteError(nil, from: "file")
            } catch {
                noteError(error.description, from: "file")
            }
        }
        if decision.pingSystemd, let systemd = settings.systemd {
            notify(systemd, "WATCHDOG=1")
        }
        return decision
    }

    private func notify(_ systemd: SystemdNotifier, _ message: String) {
        do {
            try systemd.send(message)
            noteError(nil, from: "systemd")
            if message != "WATCHDOG=1" { logger.info("told systemd \(message)") }
        } catch {
            noteError(error.description, from: "systemd")
        }
    }

    /// Logs an error of `source` once, until another (or success, `nil`) replaces it.
    private func noteError(_ message: String?, from source: String) {
        let isNew = state.withLockedValue { state -> Bool in
            defer { state.lastErrors[source] = message }
            return state.lastErrors[source] != message
        }
        guard isNew, let message else { return }
        logger.warning(
            source == "file" ? "cannot touch the watchdog file" : "cannot notify systemd",
            metadata: ["error": "\(message)"])
    }
}
