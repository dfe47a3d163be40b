// sd_notify by hand: NOTIFY_SOCKET parsing (a path, or "@" for the abstract namespace), the
// datagram reaching a real unix socket bound by the test, and the watchdog time systemd sets.
import Foundation
import Liveness
import NIOCore
import Testing

@Suite("systemd notifications")
struct SystemdNotifierTests {
    @Test("NOTIFY_SOCKET names a socket file or, with a leading @, an abstract name; anything else is no systemd")
    func parsing() {
        #expect(SystemdNotifier(notifySocket: "/run/systemd/notify")?.address == .path("/run/systemd/notify"))
        #expect(
            SystemdNotifier(notifySocket: "@/org/freedesktop/systemd1/notify/1")?.address
                == .abstract("/org/freedesktop/systemd1/notify/1"))
        for bad in [nil, "", "@", "run/notify", "notify", "/" + String(repeating: "x", count: 107)] {
            #expect(SystemdNotifier(notifySocket: bad) == nil, "\(bad ?? "nil")")
        }
        // The longest path that fits with its NUL: 107 bytes.
        #expect(SystemdNotifier(notifySocket: "/" + String(repeating: "x", count: 106)) != nil)
    }

    @Test("a message reaches a socket file as one datagram")
    func sendsToPath() throws {
        let receiver = try DatagramReceiver.path()
        defer { receiver.close() }
        let notifier = try #require(SystemdNotifier(notifySocket: receiver.notifySocket))
        try notifier.send("READY=1")
        try notifier.send("WATCHDOG=1")
        #expect(receiver.received() == ["READY=1", "WATCHDOG=1"])
    }

    @Test("a message reaches an abstract socket (@name): a leading NUL and no terminator in the address")
    func sendsToAbstract() throws {
        let receiver = try DatagramReceiver.abstract()
        defer { receiver.close() }
        let notifier = try #require(SystemdNotifier(notifySocket: receiver.notifySocket))
        #expect(receiver.notifySocket.hasPrefix("@"))
        try notifier.send("STOPPING=1")
        #expect(receiver.received() == ["STOPPING=1"])
        // Without the leading @ the same name is a (relative) path: not accepted at all.
        #expect(SystemdNotifier(notifySocket: String(receiver.notifySocket.dropFirst())) == nil)
    }

    @Test("nobody listening: the send fails at once with an error naming the socket")
    func nobodyListening() throws {
        let path = "/tmp/herald-no-such-notify-\(getpid())"
        let notifier = try #require(SystemdNotifier(notifySocket: path))
        #expect {
            try notifier.send("READY=1")
        } throws: { error in
            "\(error)".contains(path)
        }
        let abstract = try #require(SystemdNotifier(notifySocket: "@herald-nobody-\(getpid())"))
        #expect(throws: SystemdNotifyError.self) { try abstract.send("READY=1") }
    }

    @Test("WATCHDOG_USEC is the watchdog time unless WATCHDOG_PID names another process")
    func watchdogTime() {
        #expect(SystemdNotifier.watchdogTime(usec: "4000000", pid: nil, ownPID: 42) == .seconds(4))
        #expect(SystemdNotifier.watchdogTime(usec: "4000000", pid: "42", ownPID: 42) == .seconds(4))
        #expect(SystemdNotifier.watchdogTime(usec: "4000000", pid: "43", ownPID: 42) == nil)
        for bad in [nil, "", "0", "-5", "4s"] {
            #expect(SystemdNotifier.watchdogTime(usec: bad, pid: nil, ownPID: 42) == nil, "\(bad ?? "nil")")
        }
    }

    @Test("the environment maps onto the settings: no NOTIFY_SOCKET means no systemd watchdog either")
    func environment() {
        var settings = LivenessSettings()
        settings.readSystemdEnvironment(["WATCHDOG_USEC": "4000000"], ownPID: 7)
        #expect(settings.systemd == nil && settings.systemdWatchdogTime == nil)
        settings.readSystemdEnvironment(["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "4000000"], ownPID: 7)
        #expect(settings.systemd?.address == .abstract("x") && settings.systemdWatchdogTime == .seconds(4))
    }
}
