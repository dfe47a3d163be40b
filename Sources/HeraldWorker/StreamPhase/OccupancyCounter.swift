// The worker's open streams per channel, over all its event loops, and which counts changed
// since the hub last heard them: the registries count, the hub link reports (one `occupancy`
// frame for every change made before it runs, so a burst of connects is one frame).
import HeraldProtocol
import NIOConcurrencyHelpers

/// Streams per channel on this worker. Counted from any loop; reported by the hub link.
final class OccupancyCounter: Sendable {
    private struct Counts {
        var byChannel: [String: Int] = [:]
        /// Channels whose count the hub has not been told yet.
        var changed: Set<String> = []
        /// A report is queued on the link's loop.
        var reportQueued = false
    }

    private let counts = NIOLockedValueBox(Counts())
    /// Queues a report on the link's loop (set by the hub link).
    private let queueReport = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    init() {}

    /// Tells the counter how to ask for a report; before that, changes wait.
    func onChange(_ queue: @escaping @Sendable () -> Void) {
        queueReport.withLockedValue { $0 = queue }
    }

    /// A stream on `channels` opened (`by` 1) or closed (`by` -1).
    func add(_ channels: [String], by delta: Int) {
        let queue = counts.withLockedValue { counts -> Bool in
            for channel in channels {
                let now = (counts.byChannel[channel] ?? 0) + delta
                counts.byChannel[channel] = now > 0 ? now : nil
                counts.changed.insert(channel)
            }
            guard !counts.reportQueued else { return false }
            counts.reportQueued = true
            return true
        }
        if queue { queueReport.withLockedValue { $0 }?() }
    }

    /// The changed channels' counts (0 for none left), and forgets that they changed.
    func takeChanges() -> [ChannelCount] {
        counts.withLockedValue { counts in
            counts.reportQueued = false
            defer { counts.changed.removeAll() }
            return counts.changed.sorted().map { ChannelCount(channel: $0, subscribers: counts.byChannel[$0] ?? 0) }
        }
    }

    /// Every channel with streams (a new link starts from nothing), and forgets the changes.
    func takeAll() -> [ChannelCount] {
        counts.withLockedValue { counts in
            counts.reportQueued = false
            counts.changed.removeAll()
            return counts.byChannel.keys.sorted().map { ChannelCount(channel: $0, subscribers: counts.byChannel[$0]!) }
        }
    }
}
