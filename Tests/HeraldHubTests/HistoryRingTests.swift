// The history ring: its count and byte bounds, what it can still vouch for per channel and
// overall, and the events it gives back after a sequence (binary search, channel filter).
import HeraldProtocol
import Testing

@testable import HeraldHub

/// An event of `channel` at `sequence`.
func hubEvent(_ sequence: UInt64, _ channel: String = "a", name: String = "delta", data: String = "")
    -> HubEvent
{
    HubEvent(sequence: sequence, channel: channel, name: name, data: data)
}

/// A ring holding `events`, appended in order.
private func ring(_ events: [HubEvent], maximumEvents: Int = 1000, maximumBytes: Int = 1 << 20) -> HistoryRing {
    var ring = HistoryRing(maximumEvents: maximumEvents, maximumBytes: maximumBytes)
    for event in events { ring.append(event) }
    return ring
}

@Suite("History ring")
struct HistoryRingTests {
    // MARK: Bounds

    @Test("counts an event's data, channel and name bytes plus 48")
    func cost() {
        #expect(HistoryRing.cost(of: hubEvent(1, "ab", name: "delta", data: "h\u{E9}llo")) == 6 + 2 + 5 + 48)
        #expect(HistoryRing.cost(of: hubEvent(1, "c", name: "n", data: "")) == 50)
    }

    @Test("keeps at most maximumEvents, dropping the oldest")
    func countBound() {
        let ring = ring((1...5).map { hubEvent($0) }, maximumEvents: 3)
        #expect(ring.events.map(\.sequence) == [3, 4, 5])
        #expect(ring.lastDropped == 2)
        #expect(ring.lastDroppedByChannel == ["a": 2])
        #expect(ring.bytes == 3 * (1 + 5 + 48))
    }

    @Test(
        "keeps events while their cost is at most maximumBytes",
        arguments: [
            (120, [2, 3]),  // two events of 60 bytes fit exactly
            (119, [3]),
            (60, [3]),
            (59, []),  // a single event larger than the bound is not kept at all
            (0, []),
        ])
    func byteBound(_ maximumBytes: Int, _ kept: [UInt64]) {
        // Each event costs 10 + 1 + 1 + 48 = 60 bytes.
        let ring = ring((1...3).map { hubEvent($0, "c", name: "n", data: "0123456789") }, maximumBytes: maximumBytes)
        #expect(ring.events.map(\.sequence) == kept)
        #expect(ring.bytes == 60 * kept.count)
        #expect(ring.lastDropped == (kept.first ?? 4) - 1)
    }

    @Test("drops as many old events as a large new one needs")
    func largeEventDropsSeveral() {
        var ring = ring((1...4).map { hubEvent($0, "c", name: "n", data: "0123456789") }, maximumBytes: 250)
        #expect(ring.events.map(\.sequence) == [1, 2, 3, 4])
        ring.append(hubEvent(5, "c", name: "n", data: String(repeating: "x", count: 130)))  // costs 180
        #expect(ring.events.map(\.sequence) == [4, 5])
        #expect(ring.bytes == 240)
        #expect(ring.lastDropped == 3)
    }

    @Test("keeps nothing with zero or negative bounds")
    func zeroBounds() {
        var ring = HistoryRing(maximumEvents: -1, maximumBytes: -5)
        #expect(ring.maximumEvents == 0)
        #expect(ring.maximumBytes == 0)
        ring.append(hubEvent(1))
        #expect(ring.events.isEmpty)
        #expect(ring.bytes == 0)
        #expect(ring.lastDropped == 1)
        #expect(!ring.covers(channel: "a", after: 0))
        #expect(ring.covers(channel: "a", after: 1))
    }

    // MARK: Coverage

    @Test("covers a quiet channel whose events were never dropped, even after others were dropped")
    func coversPerChannel() {
        // a1 a2 q3 a4 a5 with room for three: a1 and a2 are dropped.
        let ring = ring(
            [hubEvent(1, "a"), hubEvent(2, "a"), hubEvent(3, "q"), hubEvent(4, "a"), hubEvent(5, "a")],
            maximumEvents: 3)
        #expect(ring.events.map(\.sequence) == [3, 4, 5])
        #expect(ring.covers(channel: "q", after: 0))
        #expect(ring.covers(channel: "never-seen", after: 0))
        #expect(!ring.covers(channel: "a", after: 0))
        #expect(!ring.covers(channel: "a", after: 1))
        #expect(ring.covers(channel: "a", after: 2))
        #expect(ring.covers(channel: "a", after: 5))
        #expect(!ring.coversAll(after: 0))
        #expect(!ring.coversAll(after: 1))
        #expect(ring.coversAll(after: 2))
        #expect(ring.coversAll(after: 100))
    }

    @Test("stops covering a channel once its own events are dropped")
    func quietChannelEventually() {
        var ring = ring([hubEvent(1, "q"), hubEvent(2, "a")], maximumEvents: 2)
        #expect(ring.covers(channel: "q", after: 0))
        ring.append(hubEvent(3, "a"))
        #expect(!ring.covers(channel: "q", after: 0))
        #expect(ring.covers(channel: "q", after: 1))
        #expect(ring.covers(channel: "a", after: 0))
        #expect(ring.lastDroppedByChannel == ["q": 1])
    }

    @Test("covers everything while nothing was dropped")
    func coversEverythingAtFirst() {
        let ring = ring([hubEvent(1), hubEvent(2, "b")])
        #expect(ring.coversAll(after: 0))
        #expect(ring.covers(channel: "a", after: 0))
        #expect(ring.covers(channel: "b", after: 0))
        #expect(ring.lastDropped == 0)
    }

    @Test("restores the dropped bookkeeping of a snapshot")
    func restore() {
        var ring = ring([hubEvent(8, "a"), hubEvent(9, "b")])
        ring.restore(lastDropped: 7, lastDroppedByChannel: ["a": 7, "b": 4])
        #expect(ring.lastDropped == 7)
        #expect(!ring.coversAll(after: 6))
        #expect(ring.coversAll(after: 7))
        #expect(!ring.covers(channel: "a", after: 6))
        #expect(ring.covers(channel: "a", after: 7))
        #expect(!ring.covers(channel: "b", after: 3))
        #expect(ring.covers(channel: "b", after: 4))
        #expect(ring.covers(channel: "c", after: 0))
        #expect(ring.events.map(\.sequence) == [8, 9])
    }

    // MARK: Events after a sequence

    /// Sequences with gaps: the other channels' events in between are not in this ring.
    static let gapped = [hubEvent(3, "a"), hubEvent(5, "b"), hubEvent(6, "a"), hubEvent(9, "b"), hubEvent(12, "a")]

    static let afterTable: [(UInt64, [UInt64])] = [
        (0, [3, 5, 6, 9, 12]),
        (2, [3, 5, 6, 9, 12]),
        (3, [5, 6, 9, 12]),
        (4, [5, 6, 9, 12]),
        (5, [6, 9, 12]),
        (6, [9, 12]),
        (7, [9, 12]),
        (9, [12]),
        (11, [12]),
        (12, []),
        (13, []),
        (UInt64.max, []),
    ]

    @Test("gives the events after a sequence, found by binary search", arguments: afterTable)
    func eventsAfter(_ sequence: UInt64, _ expected: [UInt64]) {
        #expect(ring(Self.gapped).events(after: sequence).map(\.sequence) == expected)
    }

    static let filteredTable: [(UInt64, Set<String>, [UInt64])] = [
        (0, ["a"], [3, 6, 12]),
        (3, ["a"], [6, 12]),
        (5, ["b"], [9]),
        (9, ["b"], []),
        (0, ["a", "b"], [3, 5, 6, 9, 12]),
        (4, ["a", "c"], [6, 12]),
        (0, ["c"], []),
        (0, [], []),
    ]

    @Test("filters the events after a sequence by channel", arguments: filteredTable)
    func eventsAfterFiltered(_ sequence: UInt64, _ channels: Set<String>, _ expected: [UInt64]) {
        #expect(ring(Self.gapped).events(after: sequence, channels: channels).map(\.sequence) == expected)
    }

    @Test("gives what is left after a dropped sequence")
    func eventsAfterDropped() {
        let ring = ring(Self.gapped, maximumEvents: 3)
        #expect(ring.events.map(\.sequence) == [6, 9, 12])
        #expect(ring.events(after: 3).map(\.sequence) == [6, 9, 12])
        #expect(ring.events(after: 5).map(\.sequence) == [6, 9, 12])
        #expect(ring.events(after: 5, channels: ["b"]).map(\.sequence) == [9])
        #expect(!ring.coversAll(after: 3))
        #expect(ring.coversAll(after: 5))
    }

    @Test("gives nothing from an empty ring")
    func emptyRing() {
        let ring = HistoryRing(maximumEvents: 4, maximumBytes: 1000)
        #expect(ring.events(after: 0).isEmpty)
        #expect(ring.events(after: 5, channels: ["a"]).isEmpty)
    }

    @Test("agrees with a linear scan at every point while the ring wraps around")
    func binarySearchMatchesScan() {
        var ring = HistoryRing(maximumEvents: 7, maximumBytes: 1 << 20)
        var all: [HubEvent] = []
        for step in 1...60 {
            let event = hubEvent(UInt64(step) * 2 + UInt64(step % 3), ["a", "b", "c"][step % 3])
            ring.append(event)
            all.append(event)
            let kept = Array(all.suffix(7))
            #expect(ring.events.map(\.sequence) == kept.map(\.sequence))
            for after in UInt64(0)...(event.sequence + 1) {
                #expect(ring.events(after: after) == kept.filter { $0.sequence > after })
                #expect(
                    ring.events(after: after, channels: ["b"])
                        == kept.filter { $0.sequence > after && $0.channel == "b" })
            }
        }
    }

    @Test("counts the events kept per channel")
    func countsByChannel() {
        let ring = ring(Self.gapped, maximumEvents: 4)
        #expect(ring.countsByChannel == ["a": 2, "b": 2])
    }
}
