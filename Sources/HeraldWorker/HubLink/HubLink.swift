// The worker's end of the hub link: connects, says hello, keeps requests (subscriptions,
// publishes) until answered, turns events into formatted bytes once, and reconnects with
// backoff and jitter when the hub goes away. Streams stay open meanwhile.
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix

/// A request the hub did not answer: unreachable before it was sent (`sent` false: certainly
/// not carried out), or sent and then no answer in time or the link closed (`sent` true: for a
/// publish, it may or may not be published).
public struct HubUnavailableError: Error, CustomStringConvertible {
    public let description: String
    public var sent = false
}

/// The link's mutable state, owned by the link's event loop.
final class HubLinkState {
    enum Phase: String {
        case connecting, live
        case backingOff = "backing-off"
    }

    struct PendingSubscribe {
        let registry: Int
        let stream: UInt64
        let channels: [String]
        let resume: EventID?
    }

    var phase: Phase = .connecting
    var channel: Channel?
    var epoch: Epoch?
    var lastSequence: UInt64 = 0
    var nextRequest: UInt64 = 1
    var subscribes: [UInt64: PendingSubscribe] = [:]
    var publishes: [UInt64: EventLoopPromise<PublishResult>] = [:]
    /// Questions to the hub answered with a JSON document (`hubStatsRequest`, `presenceRequest`).
    var questions: [UInt64: EventLoopPromise<String>] = [:]
    /// Publish frames written in this loop pass, flushed once at its end.
    let flushes: DeferredFlush

    init(loop: EventLoop) {
        flushes = DeferredFlush(loop: loop)
    }
}

/// The hub link. Requests may be made from any thread; everything runs on `eventLoop`.
final class HubLink: Sendable {
    let configuration: WorkerConfiguration
    let logger: Logger
    let streams: any LinkedStreams
    let eventLoop: EventLoop
    private let state: NIOLoopBound<HubLinkState>

    init(configuration: WorkerConfiguration, logger: Logger, streams: any LinkedStreams) {
        self.configuration = configuration
        self.logger = logger
        self.streams = streams
        eventLoop = streams.linkLoop
        state = try! eventLoop.submit { [eventLoop] in NIOLoopBound(HubLinkState(loop: eventLoop), eventLoop: eventLoop)
        }.wait()
        // Queued when a count changes: it runs before any subscription asked for after that
        // change, so the hub counts a stream before it answers for it.
        streams.occupancy.onChange { [self] in
            eventLoop.execute { [self] in reportOccupancy(streams.occupancy.takeChanges()) }
        }
    }

    /// Tells the hub how many streams this worker has on the channels in `counts`.
    private func reportOccupancy(_ counts: [ChannelCount]) {
        guard state.value.phase == .live, !counts.isEmpty else { return }
        send(.occupancy(counts))
    }

    // MARK: Requests

    /// Asks the hub where a new stream starts; the answer goes to the stream's registry.
    /// Kept until answered, and sent again after a reconnect.
    func subscribe(registry: Int, stream: UInt64, channels: [String], resume: EventID?) {
        eventLoop.execute { [self] in
            let state = self.state.value
            let request = state.nextRequest
            state.nextRequest += 1
            let pending = HubLinkState.PendingSubscribe(
                registry: registry, stream: stream, channels: channels, resume: resume)
            state.subscribes[request] = pending
            if state.phase == .live { send(subscribeFrame(request, pending)) }
        }
    }

    /// Publishes one event or a batch through the hub; fails at once if the link is down
    /// (`sent` false), or after the publish timeout or when the link closes first (`sent` true).
    func publish(_ requests: [PublishRequest]) -> EventLoopFuture<PublishResult> {
        eventLoop.flatSubmit { [self] in
            let state = self.state.value
            guard state.phase == .live else {
                return eventLoop.makeFailedFuture(
                    HubUnavailableError(description: "the hub is not connected; try again shortly"))
            }
            let id = state.nextRequest
            state.nextRequest += 1
            let promise = eventLoop.makePromise(of: PublishResult.self)
            state.publishes[id] = promise
            send(.publish(request: id, requests), flush: .coalesced)
            let timeout = configuration.publishTimeout
            eventLoop.scheduleTask(in: timeout) { [self] in
                self.state.value.publishes.removeValue(forKey: id)?.fail(
                    HubUnavailableError(
                        description:
                            "the hub did not answer within \(timeout.nanoseconds / 1_000_000_000) s; the event may or may not be published",
                        sent: true))
            }
            return promise.futureResult
        }
    }

    /// The hub's epoch, once known. On `eventLoop` only.
    var epochOnLoop: Epoch? {
        eventLoop.preconditionInEventLoop()
        return state.value.epoch
    }

    /// The figures of the hub and of every worker, as the hub gathers them.
    func hubStats() -> EventLoopFuture<HubStats> {
        ask { .hubStatsRequest(request: $0) }.flatMapThrowing { json in
            guard let stats = WorkerStatsJSON.decodeHub(json) else {
                throw HubUnavailableError(description: "the hub sent unreadable figures")
            }
            return stats
        }
    }

    /// Who is subscribed to `channel` over all of the hub's workers, and its last event.
    func presence(of channel: String) -> EventLoopFuture<ChannelPresence> {
        ask { .presenceRequest(request: $0, channel: channel) }.flatMapThrowing { json in
            guard let presence = WorkerStatsJSON.decode(ChannelPresence.self, from: json) else {
                throw HubUnavailableError(description: "the hub sent an unreadable answer")
            }
            return presence
        }
    }

    /// Sends the question `frame` makes of a request id; its JSON answer, or a failure when
    /// the hub is not connected, does not answer within 3 s, or the link closes first.
    private func ask(_ frame: @escaping @Sendable (UInt64) -> HubFrame) -> EventLoopFuture<String> {
        eventLoop.flatSubmit { [self] in
            let state = self.state.value
            guard state.phase == .live else {
                return eventLoop.makeFailedFuture(HubUnavailableError(description: "the hub is not connected"))
            }
            let id = state.nextRequest
            state.nextRequest += 1
            let promise = eventLoop.makePromise(of: String.self)
            state.questions[id] = promise
            send(frame(id))
            eventLoop.scheduleTask(in: .seconds(3)) { [self] in
                self.state.value.questions.removeValue(forKey: id)?.fail(
                    HubUnavailableError(description: "the hub did not answer in time"))
            }
            return promise.futureResult
        }
    }

    /// The hub's epoch, once known.
    func epochNow() -> EventLoopFuture<Epoch?> {
        eventLoop.submit { [state] in state.value.epoch }
    }

    /// `connecting`, `live` or `backing-off`.
    func stateName() -> EventLoopFuture<String> {
        eventLoop.submit { [state] in state.value.phase.rawValue }
    }

    // MARK: Frames from the hub

    /// A frame arrived; `batch` collects formatted events until the read burst ends.
    func received(_ frame: HubFrame, batch: inout [FormattedEvent]) {
        let state = self.state.value
        switch frame {
        case .welcome(let epochText, let sequence, let resnapshot):
            guard let epoch = Epoch(epochText) else {
                logger.error("hub sent an invalid epoch; closing the link", metadata: ["hub.epoch": "\(epochText)"])
                state.channel?.close(promise: nil)
                return
            }
            let previous = state.epoch
            let epochChanged = previous != nil && previous != epoch
            if epochChanged {
                logger.warning(
                    "hub epoch changed: its history was lost; every stream starts over with a fresh init",
                    metadata: ["hub.epoch": "\(epoch)", "hub.previousEpoch": "\(previous!)"])
            }
            let lastSequence = state.lastSequence
            state.epoch = epoch
            state.phase = .live
            if resnapshot || epochChanged {
                // The missed events will not come: every open stream subscribes again.
                state.lastSequence = sequence
                let resume = previous.map { EventID(epoch: $0, sequence: lastSequence) }
                streams.dispatch(batch)
                batch.removeAll()
                resubscribeAll(resume: epochChanged ? nil : resume)
            }
            // Otherwise the hub sends the missed events next, as ordinary event frames.
            // The hub knows nothing of this worker's streams yet: all of them, before the
            // subscriptions below.
            reportOccupancy(streams.occupancy.takeAll())
            logger.info(
                "hub link live",
                metadata: [
                    "hub.epoch": "\(epoch)", "hub.sequence": "\(sequence)",
                    "hub.resnapshot": "\(resnapshot || epochChanged)",
                    "hub.pendingSubscribes": "\(state.subscribes.count)",
                ])
            for (request, pending) in state.subscribes.sorted(by: { $0.key < $1.key }) {
                send(subscribeFrame(request, pending))
            }
        case .event(let event), .stateEvent(let event):
            guard let epoch = state.epoch else { return }
            state.lastSequence = max(state.lastSequence, event.sequence)
            var formatted = EventFormatter.format(event, epoch: epoch)
            if case .stateEvent = frame { formatted.changesState = true }
            batch.append(formatted)
        case .subscribed(let request, let sequence, let replay, let snapshots):
            guard let pending = state.subscribes.removeValue(forKey: request), let epoch = state.epoch else { return }
            // Events before this answer are part of it: hand them over first, then the answer.
            streams.dispatch(batch)
            batch.removeAll()
            streams.dispatchStart(
                registry: pending.registry, stream: pending.stream, epoch: epoch, sequence: sequence,
                replay: replay.map { EventFormatter.format($0, epoch: epoch) }, snapshots: snapshots)
        case .published(let request, let result):
            state.publishes.removeValue(forKey: request)?.succeed(result)
        case .statsRequest(let request):
            streams.stats(hubLink: state.phase.rawValue).whenSuccess { [self] stats in
                self.send(.statsReply(request: request, json: WorkerStatsJSON.encode(stats)))
            }
        case .hubStatsReply(let request, let json), .presenceReply(let request, let json):
            state.questions.removeValue(forKey: request)?.succeed(json)
        case .drain(let retry, let jitter):
            logger.notice(
                "draining every stream at the hub's request",
                metadata: ["drain.retry": "\(retry)", "drain.jitter": "\(jitter)"])
            streams.dispatch(batch)
            batch.removeAll()
            _ = streams.drainAll(retryMilliseconds: Int(retry), jitterMilliseconds: Int(jitter))
        case .failure(let message):
            logger.error("hub refused this worker", metadata: ["hub.message": "\(message)"])
            state.channel?.close(promise: nil)
        case .hello, .subscribe, .publish, .statsReply, .hubStatsRequest, .presenceRequest, .occupancy:
            logger.error("unexpected frame from the hub; closing the link", metadata: ["hub.frame": "\(frame)"])
            state.channel?.close(promise: nil)
        }
    }

    /// Writes out the events of one read burst.
    func flush(_ batch: inout [FormattedEvent]) {
        streams.dispatch(batch)
        batch.removeAll()
    }

    // MARK: Connection lifecycle

    /// Connects once; calls `connected` once the hello is sent, and completes when the
    /// connection closes. Throws if it could not connect.
    func connectOnce(connected: @Sendable () -> Void = {}) async throws {
        let link = self
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HubFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(HubLinkHandler(link: link))
                }
            }
            .connect(unixDomainSocketPath: configuration.hubSocketPath).get()
        try await eventLoop.submit { [self] in
            let state = self.state.value
            state.channel = channel
            state.phase = .connecting
            send(
                .hello(
                    version: HubFrame.protocolVersion, workerID: configuration.workerID,
                    epoch: state.epoch?.rawValue ?? "", lastSequence: state.lastSequence))
        }.get()
        connected()
        try await withTaskCancellationHandler {
            try await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// The link closed: fail waiting publishes (their HTTP clients get 503); keep subscriptions.
    func closed(backingOff: Bool) {
        let state = self.state.value
        state.channel = nil
        state.phase = backingOff ? .backingOff : .connecting
        let publishes = state.publishes
        state.publishes.removeAll()
        for promise in publishes.values {
            promise.fail(
                HubUnavailableError(
                    description: "the hub link closed before the hub answered; the event may or may not be published",
                    sent: true))
        }
        let questions = state.questions
        state.questions.removeAll()
        for promise in questions.values { promise.fail(HubUnavailableError(description: "the hub link closed")) }
    }

    func markBackingOff() {
        eventLoop.execute { [state] in
            if state.value.channel == nil { state.value.phase = .backingOff }
        }
    }

    /// Marks every stream as waiting and subscribes each again, resuming after `resume`.
    private func resubscribeAll(resume: EventID?) {
        streams.awaitAll { [self] index, open in
            for stream in open {
                subscribe(registry: index, stream: stream.id, channels: stream.channels, resume: resume)
            }
        }
    }

    private func subscribeFrame(_ request: UInt64, _ pending: HubLinkState.PendingSubscribe) -> HubFrame {
        // An id of another epoch means nothing here: a fresh start. The hub checks the rest
        // (newer than its history, or too old for it) and answers with a fresh init then too.
        var resumeAfter: UInt64 = 0
        if let resume = pending.resume, resume.epoch == state.value.epoch { resumeAfter = resume.sequence }
        return .subscribe(request: request, channels: pending.channels, resumeAfter: resumeAfter)
    }

    /// When a frame leaves: at once, or with the frames other tasks of this loop write before
    /// the queued flush runs (publishes arrive one task each; one write for many saves calls).
    enum Flush {
        case now, coalesced
    }

    private func send(_ frame: HubFrame, flush: Flush = .now) {
        let state = self.state.value
        guard let channel = state.channel else { return }
        var buffer = channel.allocator.buffer(capacity: 64)
        frame.encode(into: &buffer)
        guard flush == .coalesced else {
            channel.writeAndFlush(buffer, promise: nil)
            return
        }
        state.flushes.write(buffer, to: channel)
    }
}

/// Feeds decoded frames to the link and flushes event batches at the end of each read burst.
final class HubLinkHandler: ChannelInboundHandler {
    typealias InboundIn = HubFrame

    private let link: HubLink
    private var batch: [FormattedEvent] = []

    init(link: HubLink) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link.received(unwrapInboundIn(data), batch: &batch)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link.flush(&batch)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.flush(&batch)
        link.closed(backingOff: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        link.logger.error("bad input on the hub link; reconnecting", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
