// The hub core's side of cluster mode, on the hub's event loop: publishes wait in a bounded
// queue for the publisher's next transaction; events read from the shared log (by the
// follower, or by the publisher right after its commit) become visible in sequence order,
// exactly once; a hub that finds a gap (events pruned before it read them) or another epoch
// reloads everything from the database and lets its workers resubscribe.
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

/// Cluster mode's state in the core. Owned by the hub's event loop.
final class ClusterBridge {
    let settings: ClusterSettings
    private let publisherWake: AsyncStream<Void>.Continuation
    private let followerWake: AsyncStream<ClusterWake>.Continuation
    fileprivate var queue = CircularBuffer<ClusterWrite>()
    fileprivate var promises: [UInt64: EventLoopPromise<PublishResult>] = [:]
    fileprivate var nextWriteID: UInt64 = 1
    fileprivate var resumeWaiters: [(id: UInt64, sequence: UInt64, promise: EventLoopPromise<Void>)] = []
    private var connected = false
    private var disconnectedSince: NIODeadline? = .now()
    private var lastError: String?
    private var reconnects: UInt64 = 0
    private var everConnected = false
    private(set) var headSequence: UInt64 = 0
    private(set) var prunedThrough: UInt64 = 0

    init(
        settings: ClusterSettings, publisherWake: AsyncStream<Void>.Continuation,
        followerWake: AsyncStream<ClusterWake>.Continuation
    ) {
        self.settings = settings
        self.publisherWake = publisherWake
        self.followerWake = followerWake
    }

    /// Remembers what a read of the head showed.
    func observe(_ head: ClusterHead) {
        headSequence = max(headSequence, head.sequence)
        prunedThrough = max(prunedThrough, head.prunedThrough)
    }

    func wakeFollower(_ wake: ClusterWake) { followerWake.yield(wake) }

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

    func stats(visibleSequence: UInt64) -> ClusterStats {
        ClusterStats(
            database: settings.database.description, connected: connected, lastSequenceRead: visibleSequence,
            headSequence: max(headSequence, visibleSequence), prunedThrough: prunedThrough,
            publishQueue: queue.count + promises.count, reconnects: reconnects,
            disconnectedSeconds: disconnectedSince.map { Double((NIODeadline.now() - $0).nanoseconds) / 1e9 },
            lastError: lastError)
    }

    fileprivate func enqueue(_ change: ClusterWrite.Change, promise: EventLoopPromise<PublishResult>) {
        let id = nextWriteID
        nextWriteID += 1
        promises[id] = promise
        queue.append(ClusterWrite(id: id, change: change))
        publisherWake.yield()
    }
}

extension ClusterWrite.Change {
    /// Checks what can be checked without the database (the same rules as on one machine).
    static func validating(_ requests: [PublishRequest], maxEventBytes: Int) -> Result<Self, PublishRefusal> {
        if let refusal = PublishCheck.repeatedKeys(requests) { return .failure(refusal) }
        var events: [(request: PublishRequest, patch: JSONValue?)] = []
        events.reserveCapacity(requests.count)
        for (index, request) in requests.enumerated() {
            switch PublishCheck.publish(request, maxEventBytes: maxEventBytes) {
            case .failure(let refusal): return .failure(refusal.onLine(index + 1, of: requests.count))
            case .success(let patch): events.append((request, patch))
            }
        }
        return .success(.publish(events))
    }

    /// Checks a state replacement's channel name and document.
    static func validatingState(channel: String, json: String) -> Result<Self, PublishRefusal> {
        PublishCheck.stateReplacement(channel: channel, json: json).map { .setState(channel: channel, value: $0) }
    }
}

extension HubCore {
    // MARK: Writes

    /// Queues a checked write for the publisher; the future completes once it is committed and
    /// visible here, refused, or failed.
    func clusterWrite(_ change: Result<ClusterWrite.Change, PublishRefusal>) -> EventLoopFuture<PublishResult> {
        guard let cluster else { preconditionFailure("cluster mode only") }
        switch change {
        case .failure(let refusal):
            return loop.makeSucceededFuture(.refused(refusal.message))
        case .success(let change):
            guard cluster.queue.count < cluster.settings.maximumQueued else {
                return loop.makeSucceededFuture(
                    .unavailable(
                        "\(cluster.queue.count) publishes already wait for the cluster database; try again shortly"))
            }
            let promise = loop.makePromise(of: PublishResult.self)
            cluster.enqueue(change, promise: promise)
            return promise.futureResult
        }
    }

    /// The publisher takes the next writes for one transaction.
    func takeClusterBatch() -> [ClusterWrite] {
        guard let cluster else { return [] }
        var batch: [ClusterWrite] = []
        while batch.count < cluster.settings.maximumBatch, let write = cluster.queue.popFirst() { batch.append(write) }
        return batch
    }

    /// Answers the publishers of a batch: after a commit its events are made visible here first
    /// (when they follow on from what this hub has read), so a publisher that asks right after
    /// its acknowledgement sees its own event.
    func clusterBatchFinished(_ batch: [ClusterWrite], _ result: Result<[ClusterWriteOutcome], ClusterWriteError>) {
        guard let cluster else { return }
        switch result {
        case .success(let outcomes):
            let records = outcomes.flatMap { outcome -> [JournalRecord] in
                if case .stored(let records, _) = outcome { return records }
                return []
            }
            eventsPublished += UInt64(records.count)
            if applyClusterRecords(records) == .gap { cluster.wakeFollower(.catchUp) }
            for (write, outcome) in zip(batch, outcomes) {
                switch outcome {
                case .stored(let records, let repeats):
                    let first = records.first?.event.sequence ?? 0
                    idempotentRepeats += UInt64(repeats.count)
                    cluster.promises.removeValue(forKey: write.id)?.succeed(
                        .accepted(sequence: first, repeats: repeats))
                case .refused(let message):
                    cluster.promises.removeValue(forKey: write.id)?.succeed(.refused(message))
                }
            }
        case .failure(let error):
            cluster.noteError(error.underlying)
            for write in batch {
                cluster.promises.removeValue(forKey: write.id)?.succeed(
                    error.duringCommit ? .uncertain(error.description) : .unavailable(error.description))
            }
        }
    }

    /// Fails every queued write (the hub is stopping).
    func failClusterWrites(_ message: String) {
        guard let cluster else { return }
        cluster.queue.removeAll()
        for promise in cluster.promises.values { promise.succeed(.unavailable(message)) }
        cluster.promises.removeAll()
    }

    // MARK: Reading

    /// Whether `applyClusterRecords` could place every record.
    enum ClusterApply: Equatable {
        case applied
        /// A record does not follow on from what this hub has read: events are missing.
        case gap
    }

    /// Makes committed events visible in sequence order: state, history, workers, tail
    /// followers. Events already visible are skipped, so the follower and the publisher may
    /// both bring the same rows.
    @discardableResult
    func applyClusterRecords(_ records: [JournalRecord]) -> ClusterApply {
        loop.preconditionInEventLoop()
        var events: [HubEvent] = []
        var outcome = ClusterApply.applied
        for record in records where record.event.sequence > visibleSequence {
            guard record.event.sequence == visibleSequence + 1 else {
                outcome = .gap
                break
            }
            state.apply(record)
            state.makeVisible(
                record,
                stateText: record.kind == .message ? nil : state.channels[record.event.channel]?.state.serialized)
            visibleSequence = record.event.sequence
            events.append(record.event)
        }
        deliver(events)
        if let cluster {
            cluster.observe(ClusterHead(epoch: state.epoch.rawValue, sequence: visibleSequence, prunedThrough: 0))
            let ready = cluster.resumeWaiters.filter { $0.sequence <= visibleSequence }
            cluster.resumeWaiters.removeAll { $0.sequence <= visibleSequence }
            for waiter in ready { waiter.promise.succeed(()) }
        }
        return outcome
    }

    /// Takes a fresh read of the log's head: applies a prune to the history, and says whether
    /// this hub is current, behind, or must reload.
    func clusterHeadSeen(_ head: ClusterHead) -> ClusterHeadCheck {
        guard let cluster else { return .current }
        cluster.observe(head)
        if head.epoch != state.epoch.rawValue || head.prunedThrough > visibleSequence { return .reload }
        if head.prunedThrough > state.history.lastDropped { state.history.dropThrough(head.prunedThrough) }
        return head.sequence > visibleSequence ? .behind : .current
    }

    /// A prune made by this hub: its own history follows at once.
    func clusterPruned(through sequence: UInt64) {
        cluster?.observe(ClusterHead(epoch: state.epoch.rawValue, sequence: 0, prunedThrough: sequence))
        if sequence > state.history.lastDropped, sequence <= visibleSequence { state.history.dropThrough(sequence) }
    }

    /// Starts over from a snapshot of the log (another epoch, or events pruned before this hub
    /// read them). Workers are disconnected: they say hello again and get what they missed, or
    /// resubscribe their streams (a fresh `init` where history cannot cover them).
    func clusterReload(_ snapshot: ClusterSnapshot) {
        let previousEpoch = state.epoch
        let previousSequence = visibleSequence
        let history = HistoryRing(maximumEvents: configuration.historyEvents, maximumBytes: configuration.historyBytes)
        state = HubState(cluster: snapshot, history: history, maxEventBytes: configuration.maxEventBytes)
        visibleSequence = snapshot.head.sequence
        cluster?.observe(snapshot.head)
        logger.warning(
            "reloaded the cluster log: events this hub had not read were pruned, or the database was replaced; workers resubscribe their streams",
            metadata: [
                "hub.epoch": "\(state.epoch)", "hub.previousEpoch": "\(previousEpoch)",
                "hub.sequence": "\(visibleSequence)", "hub.previousSequence": "\(previousSequence)",
            ])
        for session in workers.values { session.channel.close(promise: nil) }
        if let cluster {
            let waiters = cluster.resumeWaiters
            cluster.resumeWaiters.removeAll()
            for waiter in waiters { waiter.promise.succeed(()) }
        }
    }

    // MARK: Subscriptions

    /// In cluster mode a client may resume with an id another hub gave it before this hub has
    /// read that far: the answer waits until it has (at most `resumeWait`), so the client gets
    /// exactly what it missed instead of a fresh `init`. Nil when there is nothing to wait for.
    func waitBeforeSubscribe(resumeAfter: UInt64) -> EventLoopFuture<Void>? {
        guard let cluster, resumeAfter > visibleSequence else { return nil }
        let promise = loop.makePromise(of: Void.self)
        let id = cluster.nextWriteID
        cluster.nextWriteID += 1
        cluster.resumeWaiters.append((id, resumeAfter, promise))
        cluster.wakeFollower(.catchUp)
        let core = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: cluster.settings.resumeWait) {
            guard let cluster = core.value.cluster,
                let index = cluster.resumeWaiters.firstIndex(where: { $0.id == id })
            else { return }
            cluster.resumeWaiters.remove(at: index).promise.succeed(())
        }
        return promise.futureResult
    }
}
