// The feeding decision: fed only when every watched loop ticked within the stall bound, systemd
// pinged every half of its watchdog time, never while a loop is stalled. The clock is the test's.
import Liveness
import NIOCore
import Testing

/// A fixed origin, so that every time in these tests reads as an offset from it.
let origin = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

func at(_ milliseconds: Int64) -> NIODeadline { origin + .milliseconds(milliseconds) }

@Suite("Liveness check")
struct LivenessCheckTests {
    @Test("with no loop watched nothing is fed: nothing proves the process turns")
    func noLoops() {
        var check = LivenessCheck(stallAfter: .seconds(1), systemdPingInterval: .seconds(2))
        let decision = check.check(at: at(0))
        #expect(!decision.fed && !decision.pingSystemd && decision.stalled.isEmpty)
    }

    @Test("fed only once every loop has ticked; a loop that never ticked holds it back")
    func everyLoopMustTick() {
        var check = LivenessCheck(stallAfter: .seconds(1), systemdPingInterval: nil)
        let first = check.addLoop()
        let second = check.addLoop()
        check.tick(loop: first, at: at(0))
        #expect(
            check.check(at: at(10)) == .init(fed: false, pingSystemd: false, stalled: [.init(loop: 1, silentFor: nil)]))
        check.tick(loop: second, at: at(100))
        #expect(check.check(at: at(200)).fed)
    }

    @Test("a loop silent for longer than stallAfter stops the feeding and is named with its silence")
    func stalledLoop() {
        var check = LivenessCheck(stallAfter: .seconds(1), systemdPingInterval: nil)
        let first = check.addLoop()
        let second = check.addLoop()
        check.tick(loop: first, at: at(0))
        check.tick(loop: second, at: at(0))
        // Exactly at the bound still counts as turning; past it does not.
        #expect(check.check(at: at(1000)).fed)
        check.tick(loop: first, at: at(1400))
        let decision = check.check(at: at(1500))
        #expect(!decision.fed)
        #expect(decision.stalled == [.init(loop: second, silentFor: .milliseconds(1500))])
        // The loop turns again: fed again.
        check.tick(loop: second, at: at(1600))
        #expect(check.check(at: at(1700)).fed)
    }

    @Test("systemd is pinged at once, then every half watchdog time, and never while a loop is stalled")
    func systemdCadence() {
        var check = LivenessCheck(stallAfter: .seconds(1), systemdPingInterval: .seconds(2))
        let loop = check.addLoop()
        var pings: [Int64] = []
        for milliseconds in stride(from: Int64(0), through: 9000, by: 500) {
            // The loop turns until 4.5 s, stops, and turns again from 7 s on.
            if milliseconds <= 4500 || milliseconds >= 7000 { check.tick(loop: loop, at: at(milliseconds)) }
            let decision = check.check(at: at(milliseconds))
            if decision.pingSystemd { pings.append(milliseconds) }
            // Silent for exactly stallAfter (at 5.5 s) still counts as turning.
            #expect(decision.fed == !(6000...6500).contains(milliseconds), "at \(milliseconds) ms")
        }
        #expect(pings == [0, 2000, 4000, 7000, 9000])
    }

    @Test("without a systemd watchdog no ping is ever asked for; a tick for an unknown loop is ignored")
    func noSystemd() {
        var check = LivenessCheck(stallAfter: .seconds(1), systemdPingInterval: nil)
        let loop = check.addLoop()
        check.tick(loop: loop + 5, at: at(0))
        #expect(!check.check(at: at(0)).fed)
        check.tick(loop: loop, at: at(0))
        let decision = check.check(at: at(0))
        #expect(decision.fed && !decision.pingSystemd)
    }
}
