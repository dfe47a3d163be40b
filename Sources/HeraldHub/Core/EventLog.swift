// The seam between the hub's core and where its events are kept: the local journal
// (JournalLog), the cluster's PostgreSQL log (ClusterEventLog), or memory only (MemoryLog).
// The core hands every accepted change to its log and gets the written records back; it alone
// applies them to its state and releases them (workers, tail followers, acknowledgements).
// What differs between the logs is who orders a change (this hub, or the database) and when a
// written record may be shown and acknowledged: `visibleThrough` and `durableThrough`.
import HeraldProtocol
import NIOCore

/// One change handed to the log: a publish (one event or a batch) or a state replacement.
enum LogChange: Sendable {
    case publish([PublishRequest])
    case setState(channel: String, json: String)

    /// Orders the change after `state`: the records it becomes, each with the channel state it
    /// leads to, and its repeats (known idempotency keys). The pure step every log uses.
    func prepare(after state: HubState, now: UInt64) -> Result<PreparedPublish, PublishRefusal> {
        switch self {
        case .publish(let requests): state.prepare(requests, now: now)
        case .setState(let channel, let json): state.prepareSet(channel: channel, json: json)
        }
    }

    /// The checks that need no state (the same rules and messages as `prepare`): a log that
    /// orders elsewhere refuses bad input before sending it anywhere.
    func refusal(maxEventBytes: Int) -> PublishRefusal? {
        switch self {
        case .publish(let requests):
            if let refusal = PublishCheck.repeatedKeys(requests) { return refusal }
            for (index, request) in requests.enumerated() {
                if case .failure(let refusal) = PublishCheck.publish(request, maxEventBytes: maxEventBytes) {
                    return refusal.onLine(index + 1, of: requests.count)
                }
            }
            return nil
        case .setState(let channel, let json):
            if case .failure(let refusal) = PublishCheck.stateReplacement(channel: channel, json: json) {
                return refusal
            }
            return nil
        }
    }

    /// Every channel the change touches.
    var channels: [String] {
        switch self {
        case .publish(let requests): requests.map(\.channel)
        case .setState(let channel, _): [channel]
        }
    }
}

/// What became of a change handed to the log.
enum LogAppendOutcome {
    /// Ordered and written: its records in order (with the states they lead to, when the log
    /// computed them on this hub) and its repeats.
    case written(PreparedPublish)
    /// Not written; the publisher is told `result` (refused, unavailable or uncertain).
    case notWritten(PublishResult)
}

/// Where the hub's changes are ordered and kept. Every method runs on the hub's loop, and so
/// do the completions and the delegate's calls.
protocol EventLog: AnyObject {
    /// The core, told when records arrive from elsewhere and when the limits move.
    var delegate: (any EventLogDelegate)? { get set }

    /// Orders `change` and writes it. A log that orders on this hub calls `order`, which
    /// prepares the change after the hub's state; one whose database orders does it there.
    /// `completion` runs once: at once (the journal) or after a round trip (the cluster).
    func append(
        _ change: LogChange, order: () -> Result<PreparedPublish, PublishRefusal>,
        completion: @escaping (LogAppendOutcome) -> Void)

    /// Written records up to this sequence may be shown to subscribers.
    var visibleThrough: UInt64 { get }
    /// Publishers whose events are up to this sequence (and visible) may be acknowledged.
    var durableThrough: UInt64 { get }

    /// The core made every record through `visible` visible; `pending` are written and not
    /// visible yet. A chance to snapshot (the journal) or to wake waiting subscribers (the cluster).
    func released(through visible: UInt64, state: HubState, pending: CircularBuffer<WrittenEvent>)

    /// A subscriber resumes after `sequence`, past what this hub has read: a future to wait on
    /// before answering it (bounded), or nil when there is nothing to wait for.
    func waitUntilRead(_ sequence: UInt64, visible: UInt64) -> EventLoopFuture<Void>?

    /// The hub stops: what was written is made durable (the journal).
    func close()

    /// Adds the log's figures to the hub's.
    func addStats(to stats: inout HubStats, visible: UInt64)
}

/// What a log tells the core.
protocol EventLogDelegate: AnyObject {
    /// `visibleThrough` or `durableThrough` moved.
    func logAdvanced()
    /// Records the log committed, in order (in cluster mode, other hubs' too). False when they
    /// do not follow on from the hub's state (events are missing: the log must catch up).
    func logCommitted(_ records: [JournalRecord]) -> Bool
    /// The log can no longer keep events (a failed fsync): nothing more is acknowledged.
    func logFailed(_ message: String)
    /// The log starts over from `restore` (the cluster's log was replaced or pruned past this hub).
    func logRestarted(_ restore: LogRestore, reason: String)
    /// Events up to `sequence` are gone from the log: the hub's history follows.
    func logPruned(through sequence: UInt64)
}
