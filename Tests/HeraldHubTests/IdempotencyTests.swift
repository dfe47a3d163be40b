// Idempotent publishing on one machine: the key window as a value, HubState turning known keys
// into repeats, and HubCore answering a repeat with the first event's id, without a second
// event, also after a restart and after a snapshot replaced the segment that held the key.
import HeraldProtocol
import NIOCore
import Testing

@testable import HeraldHub

@Suite("Idempotency")
struct IdempotencyTests {
    // MARK: The window

    @Test("a key is remembered for the window and forgotten after it")
    func windowExpires() {
        var window = IdempotencyWindow(windowMilliseconds: 1000, maximumKeys: 10, maximumBytes: 1 << 20)
        window.insert(IdempotencyEntry(key: "a", sequence: 7, acceptedAt: 5000))
        #expect(window.sequence(for: "a", now: 5999) == 7)
        #expect(window.sequence(for: "a", now: 6000) == nil)
        #expect(window.sequence(for: "b", now: 5000) == nil)
        window.expire(now: 6000)
        #expect(window.count == 0)
        #expect(window.bytes == 0)
        #expect(window.evictedEarly == 0)
    }

    @Test("past the count or byte bound the oldest keys go first, counted as early")
    func windowBounds() {
        var byCount = IdempotencyWindow(windowMilliseconds: 60_000, maximumKeys: 2, maximumBytes: 1 << 20)
        for (index, key) in ["a", "b", "c"].enumerated() {
            byCount.insert(IdempotencyEntry(key: key, sequence: UInt64(index + 1), acceptedAt: 0))
        }
        #expect(byCount.sequence(for: "a", now: 1) == nil)
        #expect(byCount.sequence(for: "b", now: 1) == 2)
        #expect(byCount.sequence(for: "c", now: 1) == 3)
        #expect(byCount.evictedEarly == 1)
        let entryBytes = 1 + IdempotencyWindow.entryOverhead
        var byBytes = IdempotencyWindow(windowMilliseconds: 60_000, maximumKeys: 100, maximumBytes: 2 * entryBytes)
        for (index, key) in ["a", "b", "c"].enumerated() {
            byBytes.insert(IdempotencyEntry(key: key, sequence: UInt64(index + 1), acceptedAt: 0))
        }
        #expect(byBytes.count == 2)
        #expect(byBytes.bytes == 2 * entryBytes)
        #expect(byBytes.sequence(for: "a", now: 1) == nil)
        #expect(byBytes.evictedEarly == 1)
    }

    @Test("a key used again after its window names the new event; the old entry leaving does not forget it")
    func windowReuse() {
        var window = IdempotencyWindow(windowMilliseconds: 100, maximumKeys: 10, maximumBytes: 1 << 20)
        window.insert(IdempotencyEntry(key: "a", sequence: 1, acceptedAt: 0))
        window.insert(IdempotencyEntry(key: "a", sequence: 5, acceptedAt: 150))
        window.expire(now: 120)
        #expect(window.sequence(for: "a", now: 120) == 5)
    }

    @Test("a window of zero remembers nothing")
    func windowOff() {
        var window = IdempotencyWindow(windowMilliseconds: 0, maximumKeys: 10, maximumBytes: 1 << 20)
        window.insert(IdempotencyEntry(key: "a", sequence: 1, acceptedAt: 0))
        #expect(window.sequence(for: "a", now: 0) == nil)
        #expect(window.count == 0)
    }

    // MARK: HubState

    private static func state() -> HubState {
        HubState(
            epoch: Epoch("abc")!, history: HistoryRing(maximumEvents: 100, maximumBytes: 1 << 20), maxEventBytes: 1024,
            keys: IdempotencyWindow(windowMilliseconds: 600_000, maximumKeys: 100, maximumBytes: 1 << 20))
    }

    @Test("a known key becomes a repeat with the first sequence; the new events of the batch stay consecutive")
    func stateRepeats() throws {
        var state = Self.state()
        let first = try state.prepare(PublishRequest(channel: "c", data: "a", key: "k1"), now: 10).get()
        for (record, newState) in first.records { state.apply(record, newState: newState) }
        #expect(first.records[0].0.key == "k1")
        #expect(first.records[0].0.acceptedAt == 10)
        let batch = try state.prepare(
            [
                PublishRequest(channel: "c", data: "b", key: "k2"),
                PublishRequest(channel: "c", data: "a", key: "k1"),
                PublishRequest(channel: "c", data: "c"),
            ], now: 20
        ).get()
        #expect(batch.records.map(\.0.event.sequence) == [2, 3])
        #expect(batch.records.map(\.0.event.data) == ["b", "c"])
        #expect(batch.repeats == [PublishRepeat(index: 1, sequence: 1)])
        #expect(
            PublishResult.accepted(sequence: 2, repeats: batch.repeats).sequences(count: 3) == [2, 1, 3])
    }

    @Test("a batch that uses one key twice is refused, naming both lines")
    func stateRefusesKeyTwice() {
        let state = Self.state()
        let result = state.prepare(
            [
                PublishRequest(channel: "c", data: "a", key: "same"),
                PublishRequest(channel: "c", data: "b"),
                PublishRequest(channel: "c", data: "c", key: "same"),
            ], now: 0)
        guard case .failure(let refusal) = result else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.message == #"line 3: idempotency key "same" is already on line 1"#)
    }

    @Test("a key that is not 1 to 255 visible ASCII characters is refused")
    func stateRefusesBadKey() {
        let state = Self.state()
        for key in ["", "has space", String(repeating: "k", count: 256), "caf\u{E9}"] {
            guard case .failure(let refusal) = state.prepare(PublishRequest(channel: "c", data: "a", key: key), now: 0)
            else {
                Issue.record("\(key) was accepted")
                continue
            }
            #expect(refusal.message.hasPrefix("invalid idempotency key"))
        }
        #expect((try? state.prepare(PublishRequest(channel: "c", data: "a", key: String(repeating: "k", count: 255))).get()) != nil)
    }

    // MARK: HubCore

    private static func keyed(_ data: String, _ key: String) -> PublishRequest {
        PublishRequest(channel: "c", data: data, key: key)
    }

    @Test("the same publish twice with one key gives one event and the first id; the repeat waits for the first's sync")
    func coreRepeat() throws {
        let hub = try CoreHarness()
        let worker = try hub.worker("w1")
        let first = hub.core.publish(Self.keyed("hello", "order-1"))
        let again = hub.core.publish(Self.keyed("hello", "order-1"))
        #expect(try hub.frames(worker) == [.event(HubEvent(sequence: 1, channel: "c", name: "delta", data: "hello"))])
        #expect(outcome(again) == nil)  // the first event is not durable yet
        hub.held.runAll()
        #expect(outcome(first) == .accepted(sequence: 1))
        #expect(outcome(again) == .accepted(sequence: 0, repeats: [PublishRepeat(index: 0, sequence: 1)]))
        #expect(hub.core.idempotentRepeats == 1)
        #expect(hub.core.state.sequence == 1)
        // Another key is a new event.
        let other = hub.core.publish(Self.keyed("hello", "order-2"))
        hub.held.runAll()
        #expect(outcome(other) == .accepted(sequence: 2))
    }

    @Test("a restarted hub still knows the keys of its journal, and of a snapshot that replaced the segment")
    func coreRepeatAfterRestart() throws {
        let hub = try CoreHarness()
        _ = hub.core.publish(Self.keyed("a", "k-journal"))
        hub.held.runAll()
        let restarted = try CoreHarness(disk: hub.disk)
        let again = restarted.core.publish(Self.keyed("a", "k-journal"))
        restarted.held.runAll()
        #expect(outcome(again) == .accepted(sequence: 0, repeats: [PublishRepeat(index: 0, sequence: 1)]))

        let snapshotting = try CoreHarness(disk: SimulatedDisk()) { $0.snapshotBytes = 1 }
        _ = snapshotting.core.publish(Self.keyed("a", "k-snapshot"))
        snapshotting.held.runAll()
        snapshotting.held.runAll()
        let segments = try snapshotting.disk.names(in: CoreHarness.directory).filter { $0.hasPrefix("journal-") }
        // The key's record is only in the snapshot now: its segment is gone.
        #expect(snapshotting.disk.contents(CoreHarness.directory + "/snapshot.bin") != nil)
        #expect(!segments.contains("journal-00000001.log"))
        let afterSnapshot = try CoreHarness(disk: snapshotting.disk) { $0.snapshotBytes = 1 }
        let repeated = afterSnapshot.core.publish(Self.keyed("a", "k-snapshot"))
        afterSnapshot.held.runAll()
        #expect(outcome(repeated) == .accepted(sequence: 0, repeats: [PublishRepeat(index: 0, sequence: 1)]))
    }

    @Test("a publish refused by a full disk leaves its key unknown: the retry publishes once space returns")
    func coreFullDiskForgetsKey() throws {
        let hub = try CoreHarness()
        _ = hub.core.publish(PublishRequest(channel: "c", data: "fill"))
        hub.held.runAll()
        hub.disk.setFreeBytes(0)
        guard case .unavailable = outcome(hub.core.publish(Self.keyed("x", "k"))) else {
            Issue.record("a full disk must refuse the publish")
            return
        }
        hub.disk.setFreeBytes(nil)
        let retry = hub.core.publish(Self.keyed("x", "k"))
        hub.held.runAll()
        #expect(outcome(retry) == .accepted(sequence: 2))
    }
}
