// The journal on a simulated disk: a read error during recovery stops it naming file and
// offset and cuts nothing; reservations keep sequence numbers from being reused after a power
// loss (seeded random runs), and resume ids inside the lost range get a fresh init.
import HeraldProtocol
import Logging
import NIOCore
import Testing

@testable import HeraldHub

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Journal faults")
struct JournalFaultTests {
    private let logger = Logger(label: "test")

    @Test("a read error during recovery names the file and offset and cuts nothing, not even a torn tail")
    func readErrorDuringRecovery() throws {
        let hub = try CoreHarness(policy: .off)
        _ = hub.publish("a")
        let path = Journal.segmentPath(CoreHarness.directory, 1)
        // A torn record at the end, which recovery would otherwise cut.
        let torn = (hub.disk.contents(path) ?? []) + [0, 0, 0, 40, 1, 2]
        hub.disk.setContents(path, torn)
        hub.disk.setReadError(path: path, offset: 12)
        let error = #expect(throws: JournalError.self) {
            try Journal.open(directory: CoreHarness.directory, files: hub.disk, logger: logger)
        }
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("at byte 12") == true)
        #expect(hub.disk.contents(path) == torn)
    }

    @Test("after a power loss the hub continues past the reservation and resumes inside the lost range get init")
    func powerLossAfterReservation() throws {
        let hub = try CoreHarness(policy: .off, reservationSize: 10)
        let worker = try hub.worker("w")
        for index in 1...3 { _ = hub.publish("e\(index)") }
        #expect(try hub.frames(worker).count == 3)  // seen by clients, never synced
        hub.disk.powerLoss()
        let restarted = try CoreHarness(disk: hub.disk, policy: .off, reservationSize: 10)
        #expect(restarted.core.state.sequence == 11)  // reserved through 10, 11 marks the loss
        #expect(restarted.core.state.history.lostThrough == 11)
        let resumed = restarted.core.subscribe(request: 1, channelNames: ["c"], resumeAfter: 3)
        guard case .subscribed(_, _, let replay, let snapshots) = resumed else {
            Issue.record("no subscribed frame")
            return
        }
        #expect(replay.isEmpty)
        #expect(snapshots.map(\.channel) == ["c"])
        #expect(outcome(restarted.publish("next")) == .accepted(sequence: 12))
        // A later restart replays the journal with its gap and still knows the lost range.
        let again = try CoreHarness(disk: hub.disk, policy: .off, reservationSize: 10)
        #expect(again.core.state.sequence == 12)
        #expect(again.core.state.history.lostThrough == 11)
        #expect(again.core.state.history.events.map(\.data) == ["next"])
    }

    @Test("a killed hub (same kernel, page cache intact) loses nothing and keeps resume ids")
    func killKeepsEverything() throws {
        let hub = try CoreHarness(policy: .off, reservationSize: 10)
        for index in 1...3 { _ = hub.publish("e\(index)") }
        let restarted = try CoreHarness(disk: hub.disk, policy: .off, reservationSize: 10)
        #expect(restarted.core.state.sequence == 3)
        #expect(restarted.core.state.history.lostThrough == 0)
    }

    @Test("a clean stop trims the reservation: a restart after a reboot loses nothing", arguments: [FsyncPolicy.off])
    func cleanStopTrims(_ policy: FsyncPolicy) throws {
        let hub = try CoreHarness(policy: policy, reservationSize: 10)
        for index in 1...3 { _ = hub.publish("e\(index)") }
        hub.core.close()
        hub.disk.powerLoss()
        let restarted = try CoreHarness(disk: hub.disk, policy: policy, reservationSize: 10)
        #expect(restarted.core.state.sequence == 3)
        #expect(restarted.core.state.history.lostThrough == 0)
    }

    @Test("power loss at random points never reuses a sequence number", arguments: Array(UInt64(1)...40))
    func randomPowerLoss(_ seed: UInt64) throws {
        var random = SeededGenerator(state: seed)
        let policy = FsyncPolicy.allCases.randomElement(using: &random)!
        let reservation = Int.random(in: 2...12, using: &random)
        var hub = try CoreHarness(policy: policy, reservationSize: reservation)
        var highestSeen: UInt64 = 0
        var acknowledged: [UInt64: String] = [:]
        var results: [(EventLoopFuture<PublishResult>, String)] = []
        for round in 0..<Int.random(in: 1...4, using: &random) {
            let worker = try hub.worker("w\(round)")
            for step in 0..<Int.random(in: 1...40, using: &random) {
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<6:
                    let data = "r\(round)s\(step)"
                    results.append((hub.publish(data), data))
                case 6..<8: hub.held.runAll()
                default: hub.loop.advanceTime(by: .milliseconds(5))
                }
                for frame in try hub.frames(worker) {
                    if case .event(let event) = frame { highestSeen = max(highestSeen, event.sequence) }
                }
            }
            for (future, data) in results {
                if case .accepted(let sequence, _) = outcome(future) { acknowledged[sequence] = data }
            }
            results.removeAll()
            hub.disk.powerLoss()
            let comment = Comment(rawValue: "seed \(seed), policy \(policy), reservation \(reservation)")
            // What is really on disk now.
            let (_, onDisk) = try Journal.open(directory: CoreHarness.directory, files: hub.disk, logger: logger)
            let kept = Dictionary(uniqueKeysWithValues: onDisk.records.map { ($0.event.sequence, $0.event.data) })
            if policy != .off {
                for (sequence, data) in acknowledged { #expect(kept[sequence] == data, comment) }
            }
            hub = try CoreHarness(disk: hub.disk, policy: policy, reservationSize: reservation)
            let core = hub.core
            #expect(core.state.sequence >= highestSeen, comment)
            // A resume from an id a client saw and the hub lost gets init.
            let lastKept = onDisk.records.last?.event.sequence ?? 0
            for id in (lastKept + 1)...max(lastKept + 1, highestSeen) where id <= highestSeen {
                guard case .subscribed(_, _, let replay, let snapshots) = core.subscribe(
                    request: 1, channelNames: ["c"], resumeAfter: id)
                else { continue }
                #expect(replay.isEmpty && snapshots.map(\.channel) == ["c"], "resume after \(id); \(comment)")
            }
        }
    }
}
