// The hub's single source of truth at run time: it orders publishes, journals them (the commit
// path is in HubCommit.swift), answers subscriptions with the state or the missed events, and
// keeps the workers and tail followers. It lives on one event loop; every method runs there.
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix

/// A worker connected over the hub link, after its `hello`.
final class WorkerSession {
    let id: String
    let channel: Channel
    let connectedAt: NIODeadline

    init(id: String, channel: Channel) {
        self.id = id
        self.channel = channel
        self.connectedAt = .now()
    }
}

/// An admin connection following the events of one channel (or all, for `*`).
struct TailFollower {
    let channelName: String?
    let channel: Channel
}

/// Orders events and answers subscriptions. Not thread-safe by design: owned by `loop`.
final class HubCore {
    let loop: EventLoop
    let configuration: HubConfiguration
    let logger: Logger
    let startedAt = NIODeadline.now()
    let blockingWork: BlockingWork
    /// Called once an fsync failed: the process must stop (tests observe it instead).
    let onFatal: (String) -> Void

    var state: HubState
    /// The last sequence delivered to workers, tail followers and history.
    var visibleSequence: UInt64 = 0
    var eventsPublished: UInt64 = 0
    /// Tail followers closed because they stopped reading.
    var tailFollowersDropped: UInt64 = 0
    /// Events answered as repeats of earlier ones (their idempotency keys were known).
    var idempotentRepeats: UInt64 = 0
    /// Worker links and tail followers written in this loop pass, flushed once at its end:
    /// every event is visible as soon as it is written, and those of one pass (one read burst
    /// of publish frames) reach each worker as one write. The acknowledgements too.
    lazy var flushes = DeferredFlush(loop: loop)
    var journal: Journal?
    var progress = CommitProgress()
    /// Events written but not yet visible (their reservation is not durable yet), in order.
    var written = CircularBuffer<WrittenEvent>()
    /// Publishers waiting for their acknowledgement, in order.
    var acknowledgements = CircularBuffer<WaitingAcknowledgement>()
    private var snapshotInFlight = false
    var workers: [ObjectIdentifier: WorkerSession] = [:]
    var tails: [ObjectIdentifier: TailFollower] = [:]
    /// Cluster mode's side of the hub (nil on a single machine).
    var cluster: ClusterBridge?
    private var nextRequestID: UInt64 = 1
    private var pendingStats: [UInt64: StatsGathering] = [:]

    /// Stops the process with `message` (a failed fsync).
    static func exitProcess(_ message: String) {
        let line = "herald-hub: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        exit(70)
    }

    /// Opens the journal (if configured) and rebuilds the state it holds; blocking file work
    /// runs on `threadPool`.
    convenience init(loop: EventLoop, configuration: HubConfiguration, logger: Logger, threadPool: NIOThreadPool)
        throws
    {
        try self.init(
            loop: loop, configuration: configuration, logger: logger, files: PosixJournalFiles(),
            blockingWork: .threadPool(threadPool), onFatal: HubCore.exitProcess)
    }

    /// Opens the journal (if configured) through `files` and rebuilds the state it holds, then
    /// reserves the first range of sequence numbers (synced before anything is published).
    init(
        loop: EventLoop, configuration: HubConfiguration, logger: Logger, files: any JournalFileSystem,
        blockingWork: BlockingWork, onFatal: @escaping (String) -> Void
    ) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.blockingWork = blockingWork
        self.onFatal = onFatal
        let history = HistoryRing(maximumEvents: configuration.historyEvents, maximumBytes: configuration.historyBytes)
        guard let directory = configuration.dataDirectory else {
            state = HubState(
                epoch: .random(), history: history, maxEventBytes: configuration.maxEventBytes,
                keys: configuration.emptyIdempotencyWindow)
            logger.warning("no --data-dir: events and state live in memory only and are lost when the hub stops")
            return
        }
        let (journal, recovered) = try Journal.open(directory: directory, files: files, logger: logger)
        self.journal = journal
        state = HubState(
            epoch: recovered.epoch, history: history, maxEventBytes: configuration.maxEventBytes,
            keys: configuration.emptyIdempotencyWindow)
        if let snapshot = recovered.snapshot {
            for entry in snapshot.keys { state.keys.insert(entry) }
            state.sequence = snapshot.sequence
            var droppedByChannel: [String: UInt64] = [:]
            for channel in snapshot.channels {
                let value = (try? JSONValue(parsing: channel.state)) ?? .object(JSONObject())
                state.channels[channel.name] = ChannelState(
                    state: value, visibleState: channel.state, visibleSequence: channel.visibleSequence)
                if channel.lastDropped > 0 { droppedByChannel[channel.name] = channel.lastDropped }
            }
            state.history.restore(
                lastDropped: snapshot.lastDropped, lastDroppedByChannel: droppedByChannel,
                lostThrough: snapshot.lostThrough)
            for event in snapshot.history { state.history.append(event) }
        }
        for record in recovered.records {
            state.apply(record)
            state.makeVisible(
                record,
                stateText: record.kind == .message ? nil : state.channels[record.event.channel]?.state.serialized)
        }
        // Numbers a power loss may have taken after clients saw them: never reused, and resume
        // ids among them are unknown.
        if recovered.lostThrough > state.history.lostThrough { state.history.markLost(through: recovered.lostThrough) }
        state.sequence = max(state.sequence, recovered.lastSequence)
        state.keys.expire(now: IdempotencyWindow.now())
        visibleSequence = state.sequence
        let reservation = state.sequence + UInt64(max(2, configuration.reservationSize))
        try journal.reserve(through: reservation)
        try journal.file.sync()
        progress.durable = state.sequence
        progress.reservedThrough = reservation
        logger.info(
            recovered.created ? "journal created" : "journal recovered",
            metadata: [
                "journal.directory": "\(directory)", "hub.epoch": "\(state.epoch)", "hub.sequence": "\(state.sequence)",
                "hub.channels": "\(state.channels.count)", "journal.replayed": "\(recovered.records.count)",
            ])
    }

    /// Starts from a cluster's log (`--cluster`): epoch, states and history come from the database.
    init(
        loop: EventLoop, configuration: HubConfiguration, logger: Logger, threadPool: NIOThreadPool,
        cluster snapshot: ClusterSnapshot, bridge: ClusterBridge
    ) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.blockingWork = .threadPool(threadPool)
        self.onFatal = HubCore.exitProcess
        let history = HistoryRing(maximumEvents: configuration.historyEvents, maximumBytes: configuration.historyBytes)
        state = HubState(cluster: snapshot, history: history, maxEventBytes: configuration.maxEventBytes)
        visibleSequence = snapshot.head.sequence
        cluster = bridge
        bridge.observe(snapshot.head)
        logger.info(
            "cluster log loaded",
            metadata: [
                "cluster.database": "\(bridge.settings.database)", "hub.epoch": "\(state.epoch)",
                "hub.sequence": "\(visibleSequence)", "hub.channels": "\(state.channels.count)",
                "hub.historyEvents": "\(state.history.events.count)",
            ])
    }

    var epoch: Epoch { state.epoch }
    var workerSessions: [WorkerSession] { Array(workers.values) }

    // MARK: Publishing

    /// Validates, orders and journals one event; the future completes once it is durable and
    /// delivered to the workers, with its sequence number or why it was refused.
    func publish(_ request: PublishRequest) -> EventLoopFuture<PublishResult> {
        publish([request])
    }

    /// Validates, orders and journals a batch, whole or not at all: its events get consecutive
    /// sequence numbers, one journal write and one sync. The result carries the first event's
    /// sequence.
    func publish(_ requests: [PublishRequest]) -> EventLoopFuture<PublishResult> {
        loop.preconditionInEventLoop()
        if cluster != nil {
            return clusterWrite(ClusterWrite.Change.validating(requests, maxEventBytes: configuration.maxEventBytes))
        }
        let now = IdempotencyWindow.now()
        state.keys.expire(now: now)
        let prepared = state.prepare(requests, now: now)
        if case .success(let publish) = prepared { idempotentRepeats += UInt64(publish.repeats.count) }
        return commit(prepared)
    }

    /// Replaces a channel's state; connected clients get it as a fresh `init`.
    func setState(channel: String, json: String) -> EventLoopFuture<PublishResult> {
        loop.preconditionInEventLoop()
        if cluster != nil { return clusterWrite(ClusterWrite.Change.validatingState(channel: channel, json: json)) }
        return commit(state.prepareSet(channel: channel, json: json))
    }

    /// Writes `events` (in order, just made visible) to every worker and to the tail followers
    /// of their channels: the only place that does. A peer that stopped reading (its output
    /// over the high-water mark) is dropped and logged; a worker reconnects and catches up.
    func deliver(_ events: [HubEvent]) {
        guard !events.isEmpty else { return }
        if !workers.isEmpty {
            var batch = ByteBufferAllocator().buffer(capacity: 256)
            for event in events { HubFrame.event(event).encode(into: &batch) }
            for session in workers.values {
                guard session.channel.isWritable else {
                    logger.warning(
                        "dropping a worker link that stopped reading (its output passed the high-water mark); the worker reconnects and catches up",
                        metadata: ["worker.id": "\(session.id)"])
                    workers[ObjectIdentifier(session.channel)] = nil
                    session.channel.close(promise: nil)
                    continue
                }
                flushes.write(batch, to: session.channel)
            }
        }
        guard !tails.isEmpty else { return }
        // Each event's line is made once, whatever the number of followers.
        let eventLines = events.map { (channel: $0.channel, line: tailLine($0) + "\n") }
        for (key, follower) in tails {
            var lines = ByteBufferAllocator().buffer(capacity: 256)
            for event in eventLines where follower.channelName == nil || follower.channelName == event.channel {
                lines.writeString(event.line)
            }
            guard lines.readableBytes > 0 else { continue }
            guard follower.channel.isWritable else {
                tails[key] = nil
                tailFollowersDropped += 1
                logger.warning(
                    "dropping a tail follower that stopped reading (its output passed the high-water mark)",
                    metadata: ["tail.channel": "\(follower.channelName ?? "*")"])
                follower.channel.close(promise: nil)
                continue
            }
            flushes.write(lines, to: follower.channel)
        }
    }

    /// Once the segment is large, starts a new one and writes a snapshot that replaces the old ones.
    func maybeSnapshot() {
        guard let journal, !snapshotInFlight, !progress.syncInFlight, progress.reservationWritten == 0,
            progress.fatal == nil, journal.segmentBytes >= configuration.snapshotBytes
        else { return }
        // Synced whatever the policy: a later segment must never follow a torn one.
        do {
            try journal.file.sync()
        } catch {
            fsyncFailed(error)
            return
        }
        progress.durable = state.sequence
        let closed: Int
        do {
            closed = try journal.rotate(sync: false)
            // The reservation moves to the new segment before the old ones may go.
            try journal.reserve(through: progress.reservedThrough)
        } catch {
            logger.error("journal rotation failed; segments are kept", metadata: ["error": "\(error)"])
            return
        }
        // Written but not yet visible events are in the closed segment: keep them in the snapshot's history.
        var history = Array(state.history.events)
        history.append(contentsOf: written.map(\.record.event))
        var taken = JournalSnapshot(
            epoch: state.epoch.rawValue, sequence: state.sequence, lastDropped: state.history.lastDropped,
            channels: state.channels.map { name, channel in
                .init(
                    name: name, state: channel.state.serialized, visibleSequence: channel.visibleSequence,
                    lastDropped: state.history.lastDroppedByChannel[name] ?? 0)
            }, history: history, lostThrough: state.history.lostThrough)
        state.keys.expire(now: IdempotencyWindow.now())
        taken.keys = Array(state.keys.entries)
        let snapshot = taken
        snapshotInFlight = true
        let directory = journal.directory
        let files = journal.files
        let segment = journal.file
        let started = NIODeadline.now()
        blockingWork.run(on: loop) {
            try segment.sync()
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: closed, files: files)
        }.assumeIsolated().whenComplete { result in
            self.snapshotInFlight = false
            switch result {
            case .success:
                self.logger.info(
                    "journal snapshot written",
                    metadata: [
                        "hub.sequence": "\(snapshot.sequence)", "journal.historyEvents": "\(snapshot.history.count)",
                        "journal.milliseconds": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                    ])
            case .failure(let error):
                self.logger.error("journal snapshot failed; segments are kept", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Subscriptions

    /// Where a new stream on `channelNames` starts. With `resumeAfter` > 0 (an id of this
    /// epoch), channels whose events after it are all in history get exactly those; the others
    /// (and every channel of a fresh stream) start from their state as of now.
    func subscribe(request: UInt64, channelNames: [String], resumeAfter: UInt64) -> HubFrame {
        loop.preconditionInEventLoop()
        guard !channelNames.isEmpty, channelNames.count <= configuration.maxChannelsPerStream else {
            return .failure(message: "a stream takes 1 to \(configuration.maxChannelsPerStream) channels")
        }
        var replayChannels = Set<String>()
        var snapshots: [ChannelSnapshot] = []
        for name in channelNames {
            if resumeAfter > 0, resumeAfter <= visibleSequence, state.history.covers(channel: name, after: resumeAfter)
            {
                replayChannels.insert(name)
            } else {
                // Unknown channels are not created here: a subscriber must not be able to grow the hub.
                snapshots.append(ChannelSnapshot(channel: name, state: state.channels[name]?.visibleState ?? "{}"))
            }
        }
        let replay = replayChannels.isEmpty ? [] : state.history.events(after: resumeAfter, channels: replayChannels)
        return .subscribed(request: request, sequence: visibleSequence, replay: replay, snapshots: snapshots)
    }

    // MARK: Workers

    /// Registers a worker after its `hello`: sends `welcome` and the events it missed, or asks
    /// it to subscribe its streams again when they cannot be replayed.
    func workerJoined(_ session: WorkerSession, epoch workerEpoch: String, lastSequence: UInt64) {
        loop.preconditionInEventLoop()
        workers[ObjectIdentifier(session.channel)] = session
        let sameHistory = workerEpoch == state.epoch.rawValue && lastSequence <= visibleSequence
        let canReplay = sameHistory && state.history.coversAll(after: lastSequence)
        let fresh = workerEpoch.isEmpty
        var buffer = session.channel.allocator.buffer(capacity: 64)
        HubFrame.welcome(epoch: state.epoch.rawValue, sequence: visibleSequence, resnapshot: !fresh && !canReplay)
            .encode(into: &buffer)
        var missed = 0
        if canReplay {
            for event in state.history.events(after: lastSequence) {
                HubFrame.event(event).encode(into: &buffer)
                missed += 1
            }
        }
        session.channel.writeAndFlush(buffer, promise: nil)
        if !fresh, workerEpoch == state.epoch.rawValue, lastSequence > visibleSequence {
            logger.error(
                "a worker has delivered events this hub does not have (journal tail lost?); its streams start over",
                metadata: [
                    "worker.id": "\(session.id)", "worker.lastSequence": "\(lastSequence)",
                    "hub.sequence": "\(visibleSequence)",
                ])
        }
        logger.info(
            "worker connected",
            metadata: [
                "worker.id": "\(session.id)", "hub.workers": "\(workers.count)", "worker.replayed": "\(missed)",
                "worker.resnapshot": "\(!fresh && !canReplay)",
            ])
    }

    /// Forgets a worker whose link closed.
    func workerLeft(channel: Channel) {
        loop.preconditionInEventLoop()
        guard let session = workers.removeValue(forKey: ObjectIdentifier(channel)) else { return }
        logger.info("worker disconnected", metadata: ["worker.id": "\(session.id)", "hub.workers": "\(workers.count)"])
        for (request, gathering) in pendingStats where gathering.waitingFor.remove(ObjectIdentifier(channel)) != nil {
            finishIfComplete(request)
        }
    }

    /// Tells the named workers (all when `workerID` is nil) to drain their streams. Returns the
    /// ids of the workers told.
    func drain(workerID: String?, retryMilliseconds: UInt32, jitterMilliseconds: UInt32) -> [String] {
        var told: [String] = []
        for session in workers.values where workerID == nil || session.id == workerID {
            var buffer = session.channel.allocator.buffer(capacity: 16)
            HubFrame.drain(retryMilliseconds: retryMilliseconds, jitterMilliseconds: jitterMilliseconds).encode(
                into: &buffer)
            session.channel.writeAndFlush(buffer, promise: nil)
            told.append(session.id)
        }
        return told.sorted()
    }

    // MARK: Tail followers

    /// Starts sending every visible event of `channelName` (all channels when nil) to `channel`.
    func follow(channelName: String?, channel: Channel) {
        tails[ObjectIdentifier(channel)] = TailFollower(channelName: channelName, channel: channel)
    }

    func unfollow(channel: Channel) {
        tails[ObjectIdentifier(channel)] = nil
    }

    /// One line of JSON per event, as `tail` prints it.
    func tailLine(_ event: HubEvent) -> String {
        "{\"id\":\(JSONValue.quoted(EventID(epoch: state.epoch, sequence: event.sequence).description)),"
            + "\"channel\":\(JSONValue.quoted(event.channel)),\"event\":\(JSONValue.quoted(event.name)),"
            + "\"data\":\(JSONValue.quoted(event.data))}"
    }

    // MARK: Channels

    /// Every channel with its last sequence, state size and events in history.
    func channelSummaries() -> [ChannelSummary] {
        let counts = state.history.countsByChannel
        return state.channels.keys.sorted().map { name in
            let channel = state.channels[name]!
            return ChannelSummary(
                name: name, lastEventId: EventID(epoch: state.epoch, sequence: channel.visibleSequence).description,
                stateBytes: channel.visibleState.utf8.count, historyEvents: counts[name] ?? 0)
        }
    }

    /// The state of `channel` as subscribers get it now.
    func visibleState(of channel: String) -> String {
        state.channels[channel]?.visibleState ?? "{}"
    }

    // MARK: Stats

    /// The hub's figures and those of every worker that answers within the stats timeout.
    func gatherStats() -> EventLoopFuture<HubStats> {
        loop.preconditionInEventLoop()
        let request = nextRequestID
        nextRequestID += 1
        let promise = loop.makePromise(of: HubStats.self)
        let gathering = StatsGathering(promise: promise, waitingFor: Set(workers.keys))
        pendingStats[request] = gathering
        var buffer = ByteBufferAllocator().buffer(capacity: 16)
        HubFrame.statsRequest(request: request).encode(into: &buffer)
        for session in workers.values { session.channel.writeAndFlush(buffer, promise: nil) }
        let core = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: configuration.statsTimeout) { core.value.finish(request) }
        finishIfComplete(request)
        return promise.futureResult
    }

    /// Takes one worker's answer to a stats request.
    func statsArrived(request: UInt64, from channel: Channel, json: String) {
        guard let gathering = pendingStats[request] else { return }
        if let stats = WorkerStatsJSON.decode(json) {
            gathering.replies.append(stats)
        } else {
            logger.warning("worker sent unreadable stats", metadata: ["hub.stats": "\(json.prefix(200))"])
        }
        gathering.waitingFor.remove(ObjectIdentifier(channel))
        finishIfComplete(request)
    }

    private func finishIfComplete(_ request: UInt64) {
        if let gathering = pendingStats[request], gathering.waitingFor.isEmpty { finish(request) }
    }

    private func finish(_ request: UInt64) {
        guard let gathering = pendingStats.removeValue(forKey: request) else { return }
        let workers = gathering.replies.sorted { $0.id < $1.id }
        var stats = HubStats(
            epoch: state.epoch.rawValue, sequence: visibleSequence, channels: state.channels.count,
            eventsPublished: eventsPublished, tailFollowersDropped: tailFollowersDropped,
            uptimeSeconds: Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9,
            streams: workers.reduce(0) { $0 + $1.streams }, workers: workers)
        stats.cluster = cluster?.stats(visibleSequence: visibleSequence)
        stats.idempotencyKeys = state.keys.count
        stats.idempotentRepeats = idempotentRepeats
        stats.idempotencyKeysEvictedEarly = state.keys.evictedEarly
        gathering.promise.succeed(stats)
    }
}

/// One line of `channels`.
struct ChannelSummary: Codable, Sendable {
    var name: String
    var lastEventId: String
    var stateBytes: Int
    var historyEvents: Int
}

/// A stats request waiting for workers' answers.
final class StatsGathering {
    let promise: EventLoopPromise<HubStats>
    var waitingFor: Set<ObjectIdentifier>
    var replies: [WorkerStats] = []

    init(promise: EventLoopPromise<HubStats>, waitingFor: Set<ObjectIdentifier>) {
        self.promise = promise
        self.waitingFor = waitingFor
    }
}

#if canImport(Glibc)
    import Glibc
#endif
