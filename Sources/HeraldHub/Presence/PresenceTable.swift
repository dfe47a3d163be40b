// Who is subscribed where: each worker's latest `occupancy` counts and their sums. The hub
// core owns it; a worker's counts go when its link closes.

/// Open streams per channel, per worker and in total.
struct PresenceTable {
    /// A channel's total before and after a change.
    struct Change: Equatable {
        var channel: String
        var before: Int
        var after: Int
    }

    private var byWorker: [ObjectIdentifier: [String: Int]] = [:]
    /// Open streams per channel over every worker; channels without any are absent.
    private(set) var totals: [String: Int] = [:]

    /// A worker's counts for the listed channels are now these (0: none).
    mutating func update(worker: ObjectIdentifier, counts: [(channel: String, subscribers: Int)]) -> [Change] {
        var changes: [Change] = []
        for (channel, count) in counts {
            let previous = byWorker[worker]?[channel] ?? 0
            guard previous != count else { continue }
            byWorker[worker, default: [:]][channel] = count > 0 ? count : nil
            changes.append(shift(channel, by: count - previous))
        }
        if byWorker[worker]?.isEmpty == true { byWorker[worker] = nil }
        return changes
    }

    /// A worker's link closed: its streams no longer count.
    mutating func remove(worker: ObjectIdentifier) -> [Change] {
        guard let counts = byWorker.removeValue(forKey: worker) else { return [] }
        return counts.keys.sorted().map { shift($0, by: -counts[$0]!) }
    }

    /// Open streams on `channel` over every worker.
    func subscribers(of channel: String) -> Int { totals[channel] ?? 0 }

    private mutating func shift(_ channel: String, by delta: Int) -> Change {
        let before = totals[channel] ?? 0
        let after = max(0, before + delta)
        totals[channel] = after > 0 ? after : nil
        return Change(channel: channel, before: before, after: after)
    }
}
