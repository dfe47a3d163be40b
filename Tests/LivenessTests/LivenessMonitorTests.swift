// The monitor on real (embedded) event loops, driven step by step: the tick tasks it schedules
// run only when a loop turns, so a loop the test does not advance is a loop that stopped. The
// watchdog file and a bound datagram socket (standing in for systemd) show what was fed.
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import Liveness

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now = NIOLockedValueBox(origin)
    func read() -> NIODeadline { now.withLockedValue { $0 } }
    func advance(by amount: TimeAmount) { now.withLockedValue { $0 = $0 + amount } }
}

/// Modification time of `path`, or nil if there is no such file.
func modificationTime(_ path: String) -> Date? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
}

@Suite("Liveness monitor")
struct LivenessMonitorTests {
    @Test("two loops: the watchdogs are fed while both turn, not while one is stopped, and again once it turns")
    func feedsOnlyWhileEveryLoopTurns() throws {
        let receiver = try DatagramReceiver.abstract()
        defer { receiver.close() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("herald-alive-\(UUID())").path
        defer { unlink(file) }
        var settings = LivenessSettings()
        settings.watchdogFile = file
        settings.systemd = SystemdNotifier(notifySocket: receiver.notifySocket)
        settings.systemdWatchdogTime = .seconds(4)
        let clock = ManualClock()
        let monitor = LivenessMonitor(
            settings: settings, readyParts: [], logger: Logger(label: "test"), clock: { clock.read() })
        let first = EmbeddedEventLoop()
        let second = EmbeddedEventLoop()
        monitor.watch([first, second], name: "test loops")

        // Nothing ran on the loops yet: no tick, nothing fed.
        #expect(!monitor.feed().fed)
        #expect(modificationTime(file) == nil && receiver.received().isEmpty)

        // Both loops turn (their first tick is due at once).
        first.run()
        second.run()
        #expect(monitor.feed().fed)
        #expect(modificationTime(file) != nil)
        #expect(receiver.received() == ["WATCHDOG=1"])

        // 1.5 s later only the first loop has turned: the second is stalled, nothing is fed.
        clock.advance(by: .milliseconds(1500))
        first.advanceTime(by: .milliseconds(1500))
        unlink(file)
        let stalled = monitor.feed()
        #expect(!stalled.fed)
        #expect(stalled.stalled == [.init(loop: 1, silentFor: .milliseconds(1500))])
        #expect(modificationTime(file) == nil && receiver.received().isEmpty)

        // The second loop turns again: fed again, and systemd's half interval (2 s) has passed.
        clock.advance(by: .milliseconds(500))
        first.advanceTime(by: .milliseconds(500))
        second.advanceTime(by: .seconds(2))
        #expect(monitor.feed().fed)
        #expect(modificationTime(file) != nil)
        #expect(receiver.received() == ["WATCHDOG=1"])
        try first.syncShutdownGracefully()
        try second.syncShutdownGracefully()
    }

    @Test("READY=1 once every part is ready, once; STOPPING=1 once")
    func readinessAndStopping() throws {
        let receiver = try DatagramReceiver.path()
        defer { receiver.close() }
        var settings = LivenessSettings()
        settings.systemd = SystemdNotifier(notifySocket: receiver.notifySocket)
        let monitor = LivenessMonitor(
            settings: settings, readyParts: ["FastCGI socket", "hub link"], logger: Logger(label: "test"))
        monitor.partReady("hub link")
        #expect(receiver.received().isEmpty)
        monitor.partReady("FastCGI socket")
        monitor.partReady("hub link")  // a later reconnect: no second READY=1
        #expect(receiver.received() == ["READY=1"])
        monitor.stopping()
        monitor.stopping()
        #expect(receiver.received() == ["STOPPING=1"])
    }

    @Test("without systemd and without a watchdog file nothing is fed, and no systemd ping is asked for")
    func feedsNothingWhenOff() {
        let monitor = LivenessMonitor(settings: LivenessSettings(), readyParts: [], logger: Logger(label: "test"))
        #expect(!monitor.feeds)
        let loop = EmbeddedEventLoop()
        monitor.watch([loop], name: "test loop")
        loop.run()
        let decision = monitor.feed()
        #expect(decision.fed && !decision.pingSystemd)
    }
}

@Suite("Watchdog file")
struct WatchdogFileTests {
    @Test("touch creates a missing file and sets an old file's time to now")
    func touch() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-alive-\(UUID())").path
        defer { unlink(path) }
        let file = WatchdogFile(path: path)
        try file.touch()
        #expect(modificationTime(path) != nil)
        let old = Date(timeIntervalSinceNow: -3600)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path)
        #expect(modificationTime(path).map { $0 < Date(timeIntervalSinceNow: -3000) } == true)
        try file.touch()
        #expect(modificationTime(path).map { abs($0.timeIntervalSinceNow) < 60 } == true)
    }

    @Test("a file that cannot be made fails with its path and the cause")
    func failure() {
        let path = "/nonexistent-herald-dir/worker-1.alive"
        #expect {
            try WatchdogFile(path: path).touch()
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("No such file")
        }
    }
}
