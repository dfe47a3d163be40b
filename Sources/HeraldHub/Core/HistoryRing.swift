// The hub's recent events in sequence order, bounded by count and bytes. It remembers, per
// channel and overall, the newest event it had to drop, so it can tell exactly whether the
// events after a given sequence are all still here.
import HeraldProtocol
import NIOCore

/// Recent events, oldest first.
struct HistoryRing {
    /// At most this many events are kept.
    let maximumEvents: Int
    /// At most this many bytes of event data (plus a small per-event overhead) are kept.
    let maximumBytes: Int

    private(set) var events = CircularBuffer<HubEvent>()
    private(set) var bytes = 0
    /// The newest sequence dropped from the ring (0: nothing dropped yet).
    private(set) var lastDropped: UInt64 = 0
    /// Per channel, the newest sequence of that channel dropped from the ring.
    private(set) var lastDroppedByChannel: [String: UInt64] = [:]
    /// Sequences up to this one may have reached clients and then been lost (a power loss
    /// before their journal sync): no resume from before it is covered, on any channel.
    private(set) var lostThrough: UInt64 = 0

    init(maximumEvents: Int, maximumBytes: Int) {
        self.maximumEvents = max(0, maximumEvents)
        self.maximumBytes = max(0, maximumBytes)
    }

    /// What one event counts against the byte bound.
    static func cost(of event: HubEvent) -> Int {
        event.data.utf8.count + event.channel.utf8.count + event.name.utf8.count + 48
    }

    /// Appends an event (sequences must increase) and drops the oldest ones beyond the bounds.
    mutating func append(_ event: HubEvent) {
        events.append(event)
        bytes += Self.cost(of: event)
        while events.count > maximumEvents || (bytes > maximumBytes && !events.isEmpty) {
            let dropped = events.removeFirst()
            bytes -= Self.cost(of: dropped)
            lastDropped = dropped.sequence
            lastDroppedByChannel[dropped.channel] = dropped.sequence
        }
    }

    /// Restores the bookkeeping of a ring loaded from a snapshot.
    mutating func restore(lastDropped: UInt64, lastDroppedByChannel: [String: UInt64], lostThrough: UInt64 = 0) {
        self.lastDropped = max(lastDropped, lostThrough)
        self.lastDroppedByChannel = lastDroppedByChannel
        self.lostThrough = lostThrough
    }

    /// Forgets every event up to `sequence` and treats every resume from before it as unknown
    /// (on every channel, whether or not it had events there): numbers up to it were lost.
    mutating func markLost(through sequence: UInt64) {
        dropThrough(sequence)
        lostThrough = max(lostThrough, sequence)
    }

    /// Drops every event up to `sequence` (a prune of the cluster's log reached it), so that a
    /// resume from before it gets a fresh `init`, as on every other hub.
    mutating func dropThrough(_ sequence: UInt64) {
        while let first = events.first, first.sequence <= sequence {
            events.removeFirst()
            bytes -= Self.cost(of: first)
            lastDroppedByChannel[first.channel] = first.sequence
        }
        lastDropped = max(lastDropped, sequence)
    }

    /// Whether every event of `channel` after `sequence` is still in the ring.
    func covers(channel: String, after sequence: UInt64) -> Bool {
        lostThrough <= sequence && (lastDroppedByChannel[channel] ?? 0) <= sequence
    }

    /// Whether every event after `sequence`, of any channel, is still in the ring.
    func coversAll(after sequence: UInt64) -> Bool {
        lastDropped <= sequence
    }

    /// The events after `sequence` (of `channels` only, if given), in order.
    func events(after sequence: UInt64, channels: Set<String>? = nil) -> [HubEvent] {
        // Binary search for the first event past `sequence`: the ring is sorted by sequence.
        var low = events.startIndex
        var count = events.count
        while count > 0 {
            let half = count / 2
            let middle = events.index(low, offsetBy: half)
            if events[middle].sequence <= sequence {
                low = events.index(after: middle)
                count -= half + 1
            } else {
                count = half
            }
        }
        var result: [HubEvent] = []
        var index = low
        while index != events.endIndex {
            let event = events[index]
            if channels?.contains(event.channel) ?? true { result.append(event) }
            index = events.index(after: index)
        }
        return result
    }

    /// Events kept per channel.
    var countsByChannel: [String: Int] {
        var counts: [String: Int] = [:]
        for event in events { counts[event.channel, default: 0] += 1 }
        return counts
    }
}
