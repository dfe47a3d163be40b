// The hub's single source of truth at run time: it hands publishes to its event log (the
// journal, the cluster's database, or memory), applies the records the log wrote, and releases
// them on one path: visible (state, history, workers, tail followers) once the log allows,
// acknowledged once durable too. It answers subscriptions with the state or the missed events
// and keeps the workers and tail followers. It lives on one event loop; every method runs there.
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

/// An event written by the log, waiting until the log allows it to be shown.
struct WrittenEvent {
    let record: JournalRecord
    /// The channel's state after it (nil for a plain event).
    let stateText: String?
}

/// A publisher waiting for its last event to be visible and durable.
struct WaitingAcknowledgement {
    /// The publish's last sequence (a repeat's first event included).
    let through: UInt64
    /// What the publisher is told then.
    let result: PublishResult
    let promise: EventLoopPromise<PublishResult>
}

/// Orders events and answers subscriptions. Not thread-safe by design: owned by `loop`.
final class HubCore {
    let loop: EventLoop
    let configuration: HubConfiguration
    let logger: Logger
    let startedAt = NIODeadline.now()
    /// Where changes are ordered and kept.
    let log: any EventLog

    private(set) var state: HubState
    /// The last sequence delivered to workers, tail followers and history.
    private(set) var visibleSequence: UInt64 = 0
    private(set) var eventsPublished: UInt64 = 0
    /// Tail followers closed because they stopped reading.
    private(set) var tailFollowersDropped: UInt64 = 0
    /// Events answered as repeats of earlier ones (their idempotency keys were known).
    private(set) var idempotentRepeats: UInt64 = 0
    /// Worker links and tail followers written in this loop pass, flushed once at its end:
    /// every event is visible as soon as it is written, and those of one pass (one read burst
    /// of publish frames) reach each worker as one write. The acknowledgements too.
    private(set) lazy var flushes = DeferredFlush(loop: loop)
    /// Events written but not yet visible (the log does not allow it yet), in order.
    private var written = CircularBuffer<WrittenEvent>()
    /// Publishers waiting for their acknowledgement, in order.
    private var acknowledgements = CircularBuffer<WaitingAcknowledgement>()
    private(set) var workers: [ObjectIdentifier: WorkerSession] = [:]
    private(set) var tails: [ObjectIdentifier: TailFollower] = [:]
    private var nextRequestID: UInt64 = 1
    private var pendingStats: [UInt64: StatsGathering] = [:]
    /// Open streams per channel over this hub's workers, as they report them.
    private(set) var presence = PresenceTable()
    /// Cluster mode: open streams per channel on the cluster's other hubs, as last read from
    /// the database (empty on one machine).
    var otherHubsSubscribers: [String: Int] = [:]
    /// Told of every change of this hub's totals (the occupancy webhooks on one machine).
    var presenceObserver: (([PresenceTable.Change]) -> Void)?
    /// The occupancy webhooks (`--webhook`), if any.
    var occupancy: OccupancyNotifier?
    /// Cluster mode: whether this hub sends the cluster's webhooks now (one hub does).
    var sendsWebhooks = true

    /// Stops the process with `message` (a failed fsync).
    static func exitProcess(_ message: String) {
        let line = "herald-hub: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        exit(70)
    }

    /// A hub on one machine: opens the journal in `--data-dir` through `files` (memory only
    /// without one) and rebuilds the state it holds; blocking file work runs on `blockingWork`.
    convenience init(
        loop: EventLoop, configuration: HubConfiguration, logger: Logger, files: any JournalFileSystem,
        blockingWork: BlockingWork, onFatal: @escaping (String) -> Void
    ) throws {
        guard let directory = configuration.dataDirectory else {
            logger.warning("no --data-dir: events and state live in memory only and are lost when the hub stops")
            self.init(
                loop: loop, configuration: configuration, logger: logger, log: MemoryLog(),
                restore: LogRestore(epoch: .random(), sequence: 0))
            return
        }
        let (log, restore) = try JournalLog.open(
            directory: directory, loop: loop, configuration: configuration, logger: logger, files: files,
            blockingWork: blockingWork, onFatal: onFatal)
        self.init(loop: loop, configuration: configuration, logger: logger, log: log, restore: restore)
    }

    /// A hub on one machine with its blocking file work on `threadPool`.
    convenience init(loop: EventLoop, configuration: HubConfiguration, logger: Logger, threadPool: NIOThreadPool)
        throws
    {
        try self.init(
            loop: loop, configuration: configuration, logger: logger, files: PosixJournalFiles(),
            blockingWork: .threadPool(threadPool), onFatal: HubCore.exitProcess)
    }

    /// A hub that starts from `restore` and keeps its events in `log`.
    init(loop: EventLoop, configuration: HubConfiguration, logger: Logger, log: any EventLog, restore: LogRestore) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.log = log
        state = Self.state(from: restore, configuration: configuration)
        state.keys.expire(now: IdempotencyWindow.now())
        visibleSequence = state.sequence
        log.delegate = self
        logger.info(
            "hub state restored",
            metadata: [
                "hub.epoch": "\(state.epoch)", "hub.sequence": "\(state.sequence)",
                "hub.channels": "\(state.channels.count)", "hub.historyEvents": "\(state.history.events.count)",
            ])
    }

    /// Publishers still waiting when the core goes (the hub stopped) are told it is uncertain.
    deinit {
        for acknowledgement in acknowledgements {
            acknowledgement.promise.succeed(
                .uncertain("the hub stopped before the event was acknowledged; it may or may not be kept"))
        }
    }

    private static func state(from restore: LogRestore, configuration: HubConfiguration) -> HubState {
        HubState(
            restoring: restore,
            history: HistoryRing(maximumEvents: configuration.historyEvents, maximumBytes: configuration.historyBytes),
            maxEventBytes: configuration.maxEventBytes, keys: configuration.emptyIdempotencyWindow)
    }

    var epoch: Epoch { state.epoch }
    var workerSessions: [WorkerSession] { Array(workers.values) }

    // MARK: Publishing

    /// Validates, orders and writes one event; the future completes once it is visible and as
    /// durable as the log promises, with its sequence number or why it was refused.
    func publish(_ request: PublishRequest) -> EventLoopFuture<PublishResult> {
        publish([request])
    }

    /// Validates, orders and writes a batch, whole or not at all: its events get consecutive
    /// sequence numbers, one write and one sync. The result carries the first event's sequence.
    func publish(_ requests: [PublishRequest]) -> EventLoopFuture<PublishResult> {
        state.keys.expire(now: IdempotencyWindow.now())
        return submit(.publish(requests))
    }

    /// Replaces a channel's state; connected clients get it as a fresh `init`.
    func setState(channel: String, json: String) -> EventLoopFuture<PublishResult> {
        submit(.setState(channel: channel, json: json))
    }

    /// Hands `change` to the log, which orders it (after this hub's state, or in its database).
    private func submit(_ change: LogChange) -> EventLoopFuture<PublishResult> {
        loop.preconditionInEventLoop()
        let promise = loop.makePromise(of: PublishResult.self)
        log.append(
            change, order: { change.prepare(after: state, now: IdempotencyWindow.now()) },
            completion: { outcome in self.written(outcome, promise: promise) })
        return promise.futureResult
    }

    /// Takes what the log made of a change: its records join the state (unless the log
    /// already brought them), and its publisher waits for the release.
    private func written(_ outcome: LogAppendOutcome, promise: EventLoopPromise<PublishResult>) {
        let publish: PreparedPublish
        switch outcome {
        case .notWritten(let result): return promise.succeed(result)
        case .written(let value): publish = value
        }
        let through = max(publish.records.last?.0.event.sequence ?? 0, publish.repeats.map(\.sequence).max() ?? 0)
        guard through > 0 else { return promise.succeed(.refused("nothing to publish")) }
        eventsPublished += UInt64(publish.records.count)
        idempotentRepeats += UInt64(publish.repeats.count)
        let result = PublishResult.accepted(sequence: publish.records.first?.0.event.sequence ?? 0, repeats: publish.repeats)
        _ = take(publish.records)
        acknowledgements.append(WaitingAcknowledgement(through: through, result: result, promise: promise))
        release()
    }

    /// Applies written records that follow on from the state, in order; those the state has
    /// already are skipped. False when one leaves a gap (the rest is not taken).
    private func take(_ records: [(JournalRecord, JSONValue?)]) -> Bool {
        for (record, newState) in records where record.event.sequence > state.sequence {
            guard record.event.sequence == state.sequence + 1 else { return false }
            state.apply(record, newState: newState)
            written.append(
                WrittenEvent(
                    record: record,
                    stateText: record.kind == .message ? nil : state.channels[record.event.channel]?.state.serialized))
        }
        return true
    }

    /// The one path from written to visible and acknowledged: delivers the written events the
    /// log allows (state, history, workers, tail followers), then answers every publisher
    /// whose events are visible and as durable as the log promises.
    private func release() {
        let visibleLimit = log.visibleThrough
        var records: [JournalRecord] = []
        while let next = written.first, next.record.event.sequence <= visibleLimit {
            written.removeFirst()
            state.makeVisible(next.record, stateText: next.stateText)
            visibleSequence = next.record.event.sequence
            records.append(next.record)
        }
        deliver(records)
        let acknowledgeLimit = min(visibleSequence, log.durableThrough)
        while let next = acknowledgements.first, next.through <= acknowledgeLimit {
            acknowledgements.removeFirst()
            next.promise.succeed(next.result)
        }
        log.released(through: visibleSequence, state: state, pending: written)
    }

    /// Makes what was written durable (the journal), on shutdown.
    func close() {
        log.close()
    }

    /// Writes `events` (in order, just made visible) to every worker and to the tail followers
    /// of their channels: the only place that does. A peer that stopped reading (its output
    /// over the high-water mark) is dropped and logged; a worker reconnects and catches up.
    private func deliver(_ records: [JournalRecord]) {
        guard !records.isEmpty else { return }
        if !workers.isEmpty {
            var batch = ByteBufferAllocator().buffer(capacity: 256)
            for record in records {
                let frame = record.kind == .message ? HubFrame.event(record.event) : .stateEvent(record.event)
                frame.encode(into: &batch)
            }
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
        let eventLines = records.map { (channel: $0.event.channel, line: tailLine($0.event) + "\n") }
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

    /// A client may resume with an id another hub of the cluster gave it before this hub has
    /// read that far: the answer waits until it has (bounded by the log), so the client gets
    /// exactly what it missed instead of a fresh `init`. Nil when there is nothing to wait for.
    func waitBeforeSubscribe(resumeAfter: UInt64) -> EventLoopFuture<Void>? {
        guard resumeAfter > visibleSequence else { return nil }
        return log.waitUntilRead(resumeAfter, visible: visibleSequence)
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
        let changes = presence.remove(worker: ObjectIdentifier(channel))
        if !changes.isEmpty { presenceObserver?(changes) }
        for (request, gathering) in pendingStats where gathering.waitingFor.remove(ObjectIdentifier(channel)) != nil {
            finishIfComplete(request)
        }
    }

    /// A worker reported its open streams on these channels.
    func occupancyArrived(from channel: Channel, counts: [ChannelCount]) {
        loop.preconditionInEventLoop()
        guard workers[ObjectIdentifier(channel)] != nil else { return }
        let changes = presence.update(
            worker: ObjectIdentifier(channel), counts: counts.map { ($0.channel, $0.subscribers) })
        if !changes.isEmpty { presenceObserver?(changes) }
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
                name: name, lastEventId: lastEventID(of: name), stateBytes: channel.visibleState.utf8.count,
                historyEvents: counts[name] ?? 0)
        }
    }

    /// Open streams per channel over every worker (in cluster mode, of every hub).
    var subscriberTotals: [String: Int] {
        otherHubsSubscribers.isEmpty
            ? presence.totals : presence.totals.merging(otherHubsSubscribers, uniquingKeysWith: +)
    }

    /// Every channel with events or subscribers: its summary with its open streams (presence).
    func channelsWithPresence() -> [ChannelSummary] {
        var subscribers = subscriberTotals
        var summaries = channelSummaries().map { summary in
            var summary = summary
            summary.subscribers = subscribers.removeValue(forKey: summary.name) ?? 0
            return summary
        }
        // Channels with subscribers but no events yet: the state `{}`, as their init says.
        let initial = lastEventID(of: "")
        for (name, count) in subscribers where count > 0 {
            summaries.append(
                ChannelSummary(name: name, lastEventId: initial, stateBytes: 2, historyEvents: 0, subscribers: count))
        }
        return summaries.sorted { $0.name < $1.name }
    }

    /// Who is subscribed to `channel`, and its last event id (`GET /channels/<channel>`).
    func presence(of channel: String) -> ChannelPresence {
        ChannelPresence(
            channel: channel, subscribers: presence.subscribers(of: channel) + (otherHubsSubscribers[channel] ?? 0),
            lastEventId: lastEventID(of: channel))
    }

    /// The id of `channel`'s last visible event, or of sequence 0 (what its `init` carries) if none.
    private func lastEventID(of channel: String) -> String {
        EventID(epoch: state.epoch, sequence: state.channels[channel]?.visibleSequence ?? 0).description
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
        log.addStats(to: &stats, visible: visibleSequence)
        if let dispatcher = occupancy?.dispatcher {
            stats.webhooks = WebhookStats(
                delivered: dispatcher.delivered, failedAttempts: dispatcher.failedAttempts, dropped: dispatcher.dropped,
                queued: dispatcher.queued, sending: sendsWebhooks)
        }
        stats.idempotencyKeys = state.keys.count
        stats.idempotentRepeats = idempotentRepeats
        stats.idempotencyKeysEvictedEarly = state.keys.evictedEarly
        var subscribers: [String: Int] = [:]
        for worker in workers {
            for (channel, count) in worker.streamsByChannel { subscribers[channel, default: 0] += count }
        }
        let channels = state.channels
        stats.metricChannels = HubStats.metricChannels(
            subscribers: subscribers, known: { channels[$0] != nil }, limit: configuration.metricsChannels)
        gathering.promise.succeed(stats)
    }
}

extension HubCore: EventLogDelegate {
    func logAdvanced() {
        release()
    }

    func logCommitted(_ records: [JournalRecord]) -> Bool {
        loop.preconditionInEventLoop()
        let followsOn = take(records.map { ($0, nil) })
        release()
        return followsOn
    }

    func logFailed(_ message: String) {
        let waiting = acknowledgements
        acknowledgements.removeAll()
        for acknowledgement in waiting {
            acknowledgement.promise.succeed(
                .uncertain("the hub stopped before its journal sync: the event may or may not be kept (\(message))"))
        }
    }

    /// Starts over from `restore`. Workers are disconnected: they say hello again and get what
    /// they missed, or resubscribe their streams (a fresh `init` where history cannot cover them).
    func logRestarted(_ restore: LogRestore, reason: String) {
        let previous = (epoch: state.epoch, sequence: visibleSequence)
        state = Self.state(from: restore, configuration: configuration)
        visibleSequence = state.sequence
        written.removeAll()
        logger.warning(
            "\(reason); workers resubscribe their streams",
            metadata: [
                "hub.epoch": "\(state.epoch)", "hub.previousEpoch": "\(previous.epoch)",
                "hub.sequence": "\(visibleSequence)", "hub.previousSequence": "\(previous.sequence)",
            ])
        for session in workers.values { session.channel.close(promise: nil) }
        release()
    }

    func logPruned(through sequence: UInt64) {
        if sequence > state.history.lastDropped, sequence <= visibleSequence { state.history.dropThrough(sequence) }
    }
}

/// One line of `channels`.
struct ChannelSummary: Codable, Sendable {
    var name: String
    var lastEventId: String
    var stateBytes: Int
    var historyEvents: Int
    /// Open streams over every worker, and every hub (filled in by `channelsWithPresence`).
    var subscribers: Int = 0
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
