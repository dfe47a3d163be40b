// The cluster's log as the hub's event log, on the hub's event loop: changes wait in a bounded
// queue for the publisher's next transaction (the database orders them); the records read
// from the shared log (by the follower, or by the publisher right after its commit) go to the
// core in sequence order, each once; a hub that finds a gap (events pruned before it read
// them) or another epoch starts over from a snapshot of the database. Committed records are
// durable and may be shown at once.
import HeraldProtocol
import Logging
import NIOCore

/// What wakes the follower.
enum ClusterWake: Sendable {
    /// A NOTIFY: a commit reached this sequence.
    case notified(UInt64)
    /// The poll interval passed.
    case tick
    /// Someone waits for events this hub has not read yet.
    case catchUp
    /// The notification stream ended: the connection is gone.
    case lost
}

/// What a read of the log's head means for this hub.
enum ClusterHeadCheck: Sendable {
    case current
    /// Committed events wait to be read.
    case behind
    /// Another epoch, or events this hub never read were pruned: reload from a snapshot.
    case reload
}

/// Cluster mode's log. Owned by the hub's event loop.
final class ClusterEventLog: EventLog {
    weak var delegate: (any EventLogDelegate)?
    let settings: ClusterSettings
    private let loop: EventLoop
    private let maxEventBytes: Int
    private let publisherWake: AsyncStream<Void>.Continuation
    private let followerWake: AsyncStream<ClusterWake>.Continuation
    private var queue = CircularBuffer<ClusterWrite>()
    private var completions: [UInt64: (LogAppendOutcome) -> Void] = [:]
    private var nextWriteID: UInt64 = 1
    private var resumeWaiters: [(id: UInt64, sequence: UInt64, promise: EventLoopPromise<Void>)] = []
    /// The cluster's epoch as this hub last loaded it.
    private var epoch: String
    /// The last sequence the hub has made visible.
    private(set) var readThrough: UInt64
    private var connected = false
    private var disconnectedSince: NIODeadline? = .now()
    private var lastError: String?
    private var reconnects: UInt64 = 0
    private var everConnected = false
    private var headSequence: UInt64 = 0
    private var prunedThrough: UInt64 = 0

    let visibleThrough = UInt64.max
    let durableThrough = UInt64.max

    /// A log that starts from `snapshot`; the restore to build the hub's state from comes with it.
    init(
        settings: ClusterSettings, loop: EventLoop, maxEventBytes: Int, snapshot: ClusterSnapshot,
        publisherWake: AsyncStream<Void>.Continuation, followerWake: AsyncStream<ClusterWake>.Continuation
    ) {
        self.settings = settings
        self.loop = loop
        self.maxEventBytes = maxEventBytes
        self.publisherWake = publisherWake
        self.followerWake = followerWake
        epoch = snapshot.head.epoch
        readThrough = snapshot.head.sequence
        observe(snapshot.head)
    }

    // MARK: Writes

    /// Refuses what can be refused without the database (the same rules as on one machine),
    /// queues the rest for the publisher; `order` is not used: the database orders.
    func append(
        _ change: LogChange, order: () -> Result<PreparedPublish, PublishRefusal>,
        completion: @escaping (LogAppendOutcome) -> Void
    ) {
        if let refusal = change.refusal(maxEventBytes: maxEventBytes) {
            return completion(.notWritten(.refused(refusal.message)))
        }
        guard queue.count < settings.maximumQueued else {
            return completion(
                .notWritten(
                    .unavailable("\(queue.count) publishes already wait for the cluster database; try again shortly")))
        }
        let id = nextWriteID
        nextWriteID += 1
        completions[id] = completion
        queue.append(ClusterWrite(id: id, change: change))
        publisherWake.yield()
    }

    /// The publisher takes the next writes for one transaction.
    func takeBatch() -> [ClusterWrite] {
        var batch: [ClusterWrite] = []
        while batch.count < settings.maximumBatch, let write = queue.popFirst() { batch.append(write) }
        return batch
    }

    /// Answers the writers of a batch. After a commit its records go to the core first (they
    /// follow on from what this hub has read, or the follower catches up), so each publisher
    /// is acknowledged once its event is visible here and sees it when it asks right after.
    func batchFinished(_ batch: [ClusterWrite], _ result: Result<[ClusterWriteOutcome], ClusterWriteError>) {
        switch result {
        case .success(let outcomes):
            let records = outcomes.flatMap { outcome -> [JournalRecord] in
                if case .stored(let records, _) = outcome { return records }
                return []
            }
            if !committed(records) { wakeFollower(.catchUp) }
            for (write, outcome) in zip(batch, outcomes) {
                let completion = completions.removeValue(forKey: write.id)
                switch outcome {
                case .stored(let records, let repeats):
                    completion?(.written(PreparedPublish(records: records.map { ($0, nil) }, repeats: repeats)))
                case .refused(let message):
                    completion?(.notWritten(.refused(message)))
                }
            }
        case .failure(let error):
            noteError(error.underlying)
            for write in batch {
                completions.removeValue(forKey: write.id)?(
                    .notWritten(error.duringCommit ? .uncertain(error.description) : .unavailable(error.description)))
            }
        }
    }

    /// Fails every queued write (the hub is stopping).
    func failAll(_ message: String) {
        queue.removeAll()
        let waiting = completions
        completions.removeAll()
        for completion in waiting.values { completion(.notWritten(.unavailable(message))) }
    }

    func close() {}

    // MARK: Reading

    /// Committed records, ascending, read by the follower or the publisher: the core takes
    /// those that follow on. False when one leaves a gap (events are missing).
    func committed(_ records: [JournalRecord]) -> Bool {
        loop.preconditionInEventLoop()
        guard !records.isEmpty else { return true }
        return delegate?.logCommitted(records) ?? true
    }

    func released(through visible: UInt64, state: HubState, pending: CircularBuffer<WrittenEvent>) {
        readThrough = visible
        observe(ClusterHead(epoch: epoch, sequence: visible, prunedThrough: 0))
        guard resumeWaiters.contains(where: { $0.sequence <= visible }) else { return }
        let ready = resumeWaiters.filter { $0.sequence <= visible }
        resumeWaiters.removeAll { $0.sequence <= visible }
        for waiter in ready { waiter.promise.succeed(()) }
    }

    /// Waits (at most `resumeWait`) until this hub has read through `sequence`.
    func waitUntilRead(_ sequence: UInt64, visible: UInt64) -> EventLoopFuture<Void>? {
        let promise = loop.makePromise(of: Void.self)
        let id = nextWriteID
        nextWriteID += 1
        resumeWaiters.append((id, sequence, promise))
        wakeFollower(.catchUp)
        let log = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: settings.resumeWait) {
            guard let index = log.value.resumeWaiters.firstIndex(where: { $0.id == id }) else { return }
            log.value.resumeWaiters.remove(at: index).promise.succeed(())
        }
        return promise.futureResult
    }

    /// Takes a fresh read of the log's head: applies a prune to the history, and says whether
    /// this hub is current, behind, or must reload.
    func headSeen(_ head: ClusterHead) -> ClusterHeadCheck {
        observe(head)
        if head.epoch != epoch || head.prunedThrough > readThrough { return .reload }
        delegate?.logPruned(through: head.prunedThrough)
        return head.sequence > readThrough ? .behind : .current
    }

    /// A prune made by this hub: its own history follows at once.
    func pruned(through sequence: UInt64) {
        observe(ClusterHead(epoch: epoch, sequence: 0, prunedThrough: sequence))
        delegate?.logPruned(through: sequence)
    }

    /// Starts over from a snapshot of the log (another epoch, or events pruned before this hub
    /// read them).
    func reload(_ snapshot: ClusterSnapshot) {
        epoch = snapshot.head.epoch
        readThrough = snapshot.head.sequence
        observe(snapshot.head)
        delegate?.logRestarted(
            snapshot.restore,
            reason: "reloaded the cluster log: events this hub had not read were pruned, or the database was replaced")
        let waiters = resumeWaiters
        resumeWaiters.removeAll()
        for waiter in waiters { waiter.promise.succeed(()) }
    }

    func wakeFollower(_ wake: ClusterWake) { followerWake.yield(wake) }

    // MARK: Link state

    /// Remembers what a read of the head showed.
    private func observe(_ head: ClusterHead) {
        headSequence = max(headSequence, head.sequence)
        prunedThrough = max(prunedThrough, head.prunedThrough)
    }

    /// The reading connection came up or went down (with the error that took it).
    func linkChanged(connected: Bool, error: String?) {
        if connected, !self.connected {
            if everConnected { reconnects += 1 }
            everConnected = true
            disconnectedSince = nil
        } else if !connected, self.connected || disconnectedSince == nil {
            disconnectedSince = .now()
        }
        self.connected = connected
        if let error { lastError = error }
    }

    /// Remembers a database error met outside the reading connection (by a publish).
    func noteError(_ error: String) { lastError = error }

    func addStats(to stats: inout HubStats, visible: UInt64) {
        stats.cluster = ClusterStats(
            database: settings.database.description, connected: connected, lastSequenceRead: visible,
            headSequence: max(headSequence, visible), prunedThrough: prunedThrough,
            publishQueue: queue.count + completions.count, reconnects: reconnects,
            disconnectedSeconds: disconnectedSince.map { Double((NIODeadline.now() - $0).nanoseconds) / 1e9 },
            lastError: lastError)
    }
}

extension ClusterSnapshot {
    /// What the hub starts from: the states as of the head, the recent events as history; the
    /// keys stay in the database.
    var restore: LogRestore {
        LogRestore(
            epoch: Epoch(head.epoch) ?? .random(), sequence: head.sequence,
            channels: channels.map {
                .init(
                    name: $0.name, state: $0.state, visibleSequence: $0.sequence,
                    lastDropped: lastDroppedByChannel[$0.name] ?? 0)
            },
            history: records.map(\.event), lastDropped: lastDropped, keys: nil)
    }
}
