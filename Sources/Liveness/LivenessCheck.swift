// Whether every event loop of a process turned recently: the last tick each loop recorded, and
// the decision, at each check, to feed the watchdogs (systemd's, deploy/run's file) or to hold
// back. No I/O and no clock of its own: the caller passes the time in.
import NIOCore

/// The ticks of the watched event loops and the feeding decision made from them.
///
/// A loop proves it turns by running a small repeated task that calls ``tick(loop:at:)``. The
/// watchdogs are fed only when every loop ticked within ``stallAfter``: one loop that stops
/// turning (the process stopped, a deadlock, a blocking call on the loop) stops the feeding,
/// and the supervisor replaces the process.
public struct LivenessCheck: Sendable {
    /// A watched loop that did not tick within ``LivenessCheck/stallAfter``.
    public struct Stall: Equatable, Sendable {
        /// The loop's number, in the order the loops were added (0 first).
        public var loop: Int
        /// How long ago it last ticked; nil if it never did.
        public var silentFor: TimeAmount?

        /// Loop `loop`, silent for `silentFor` (nil: never ticked).
        public init(loop: Int, silentFor: TimeAmount?) {
            self.loop = loop
            self.silentFor = silentFor
        }
    }

    /// What one check decided.
    public struct Decision: Equatable, Sendable {
        /// At least one loop is watched and every one ticked within ``LivenessCheck/stallAfter``.
        public var fed: Bool
        /// Send systemd `WATCHDOG=1` now: fed, and half of systemd's watchdog time has passed
        /// since the last one (or there was none yet).
        public var pingSystemd: Bool
        /// The loops that hold the feeding back (empty when fed).
        public var stalled: [Stall]

        /// A decision with these parts.
        public init(fed: Bool, pingSystemd: Bool, stalled: [Stall]) {
            self.fed = fed
            self.pingSystemd = pingSystemd
            self.stalled = stalled
        }
    }

    /// A loop counts as stalled once it has not ticked for this long.
    public let stallAfter: TimeAmount
    /// How often systemd wants `WATCHDOG=1` (half of `WATCHDOG_USEC`); nil: no systemd watchdog.
    public let systemdPingInterval: TimeAmount?
    private var lastTicks: [NIODeadline?] = []
    private var lastPing: NIODeadline?

    /// No loops yet: nothing is fed until loops are added and tick.
    public init(stallAfter: TimeAmount, systemdPingInterval: TimeAmount?) {
        self.stallAfter = stallAfter
        self.systemdPingInterval = systemdPingInterval
    }

    /// How many loops are watched.
    public var loops: Int { lastTicks.count }

    /// Watches one more loop, which has not ticked yet; returns its number for ``tick(loop:at:)``.
    public mutating func addLoop() -> Int {
        lastTicks.append(nil)
        return lastTicks.count - 1
    }

    /// Loop `loop` ran its tick task at `now`.
    public mutating func tick(loop: Int, at now: NIODeadline) {
        guard lastTicks.indices.contains(loop) else { return }
        lastTicks[loop] = now
    }

    /// Decides whether to feed at `now`; a systemd ping it asks for counts as sent.
    public mutating func check(at now: NIODeadline) -> Decision {
        var stalled: [Stall] = []
        for (loop, last) in lastTicks.enumerated() {
            guard let last else {
                stalled.append(Stall(loop: loop, silentFor: nil))
                continue
            }
            // A tick "in the future" (clocks read on different threads) is fresh, not stale.
            if now > last, now - last > stallAfter {
                stalled.append(Stall(loop: loop, silentFor: now - last))
            }
        }
        let fed = !lastTicks.isEmpty && stalled.isEmpty
        var ping = false
        if fed, let interval = systemdPingInterval {
            if let lastPing, now < lastPing + interval {
                ping = false
            } else {
                ping = true
                lastPing = now
            }
        }
        return Decision(fed: fed, pingSystemd: ping, stalled: stalled)
    }
}
