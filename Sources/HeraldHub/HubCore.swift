// The hub's single source of truth: the epoch, the global sequence, every channel's state,
// and the connected workers. It lives on one event loop; every method runs there.
import HeraldProtocol
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One channel as the hub keeps it.
struct ChannelRecord {
    /// The channel's state document (JSON text); `{}` until set.
    var state: String = "{}"
    /// The sequence number of the channel's last event.
    var lastSequence: UInt64 = 0
}

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

/// Orders events and answers subscriptions. Not thread-safe by design: owned by `loop`.
final class HubCore {
    let loop: EventLoop
    let configuration: HubConfiguration
    let logger: Logger
    let startedAt = NIODeadline.now()

    private(set) var epoch: Epoch
    private(set) var sequence: UInt64 = 0
    private(set) var eventsPublished: UInt64 = 0
    private var channels: [String: ChannelRecord] = [:]
    private var workers: [ObjectIdentifier: WorkerSession] = [:]
    private var nextRequestID: UInt64 = 1
    private var pendingStats: [UInt64: StatsGathering] = [:]

    init(loop: EventLoop, configuration: HubConfiguration, logger: Logger, epoch: Epoch = .random()) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.epoch = epoch
    }

    var channelCount: Int { channels.count }
    var workerSessions: [WorkerSession] { Array(workers.values) }

    // MARK: Publishing

    /// Validates, orders and broadcasts one event. Returns its sequence number or why it was refused.
    func publish(_ request: PublishRequest) -> PublishResult {
        loop.preconditionInEventLoop()
        if let refusal = PublishRules.refusal(for: request, maxDataBytes: configuration.maxEventBytes) {
            return .refused(refusal)
        }
        if request.merge {
            return .refused("merge publishing needs channel state support, which this hub does not have yet")
        }
        sequence += 1
        eventsPublished += 1
        channels[request.channel, default: ChannelRecord()].lastSequence = sequence
        let event = HubEvent(sequence: sequence, channel: request.channel, name: request.name, data: request.data)
        broadcast(.event(event))
        return .accepted(sequence: sequence)
    }

    /// Writes one frame to every worker, encoded once.
    private func broadcast(_ frame: HubFrame) {
        guard !workers.isEmpty else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        frame.encode(into: &buffer)
        for session in workers.values {
            session.channel.writeAndFlush(buffer, promise: nil)
        }
    }

    // MARK: Subscriptions

    /// Where a new stream on `channelNames` starts: the state of each channel as of now.
    func subscribe(request: UInt64, channelNames: [String], resumeAfter: UInt64) -> HubFrame {
        loop.preconditionInEventLoop()
        guard !channelNames.isEmpty, channelNames.count <= configuration.maxChannelsPerStream else {
            return .failure(message: "a stream takes 1 to \(configuration.maxChannelsPerStream) channels")
        }
        var snapshots: [ChannelSnapshot] = []
        for name in channelNames {
            // Unknown channels are not created here: a subscriber must not be able to grow the hub.
            snapshots.append(ChannelSnapshot(channel: name, state: channels[name]?.state ?? "{}"))
        }
        return .subscribed(request: request, sequence: sequence, replay: [], snapshots: snapshots)
    }

    // MARK: Workers

    /// Registers a worker after its `hello`; returns the `welcome` to send.
    func workerJoined(_ session: WorkerSession) -> HubFrame {
        loop.preconditionInEventLoop()
        workers[ObjectIdentifier(session.channel)] = session
        logger.info("worker connected", metadata: ["worker.id": "\(session.id)", "hub.workers": "\(workers.count)"])
        return .welcome(epoch: epoch.rawValue, sequence: sequence)
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

    // MARK: Stats

    /// The hub's figures and those of every worker that answers within the stats timeout.
    func gatherStats() -> EventLoopFuture<HubStats> {
        loop.preconditionInEventLoop()
        let request = nextRequestID
        nextRequestID += 1
        let promise = loop.makePromise(of: HubStats.self)
        let gathering = StatsGathering(promise: promise, waitingFor: Set(workers.keys))
        pendingStats[request] = gathering
        broadcast(.statsRequest(request: request))
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
        let stats = HubStats(
            epoch: epoch.rawValue, sequence: sequence, channels: channels.count, eventsPublished: eventsPublished,
            uptimeSeconds: Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9,
            streams: workers.reduce(0) { $0 + $1.streams }, workers: workers)
        gathering.promise.succeed(stats)
    }
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
