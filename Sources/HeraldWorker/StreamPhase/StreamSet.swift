// The worker's streams across its event loops: one StreamRegistry per loop, the takeover of a
// request's socket by the loop that will own the stream, dispatch of events and subscription
// answers to that loop, figures, and drain.
import HeraldProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Every registry of the worker, one per event loop.
final class StreamSet: LinkedStreams {
    let group: MultiThreadedEventLoopGroup
    let registries: [NIOLoopBound<StreamRegistry>]
    let configuration: WorkerConfiguration
    let logger: Logger
    let startedAt = NIODeadline.now()
    private let nextStream = NIOLockedValueBox<(id: UInt64, registry: Int)>((1, 0))
    /// Open streams per channel over every registry (the hub link reports them).
    let occupancy = OccupancyCounter()

    init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoops))
        var registries: [NIOLoopBound<StreamRegistry>] = []
        let occupancy = self.occupancy
        for loop in group.makeIterator() {
            let registry = try! loop.submit {
                let registry = StreamRegistry(
                    eventLoop: loop, logger: logger, maxQueuedBytes: configuration.maxQueuedBytes,
                    corsOrigin: configuration.corsOrigin, occupancy: occupancy)
                registry.startHeartbeat(every: configuration.heartbeatInterval)
                return NIOLoopBound(registry, eventLoop: loop)
            }.wait()
            registries.append(registry)
        }
        self.registries = registries
    }

    /// The loop the hub link runs on.
    var linkLoop: EventLoop { registries[0].eventLoop }

    /// A new stream id and the registry (round robin) that will own it.
    func reserve() -> (id: UInt64, registry: Int) {
        nextStream.withLockedValue { state in
            let taken = state
            state = (state.id + 1, (state.registry + 1) % registries.count)
            return taken
        }
    }

    /// Takes over a connected FastCGI socket whose request asked for a stream (or a long poll):
    /// registers it on the next loop, writes a stream's headers and `retry` at once, and calls
    /// `opened` with the registry and stream id (to subscribe it at the hub). Called on a
    /// libfcgi thread.
    func takeOver(
        fd: Int32, requestID: UInt16, channels: [String], resume: EventID?, kind: Subscriber.Kind,
        tokenExpiry: TokenExpiry?, opened: @escaping @Sendable (_ registry: Int, _ stream: UInt64) -> Void
    ) {
        let (id, index) = reserve()
        let registry = registries[index]
        let prologue = FastCGIRecords.stdout(
            requestID: requestID,
            content: EventFormatter.prologue(
                corsOrigin: configuration.corsOrigin, retryMilliseconds: configuration.retryMilliseconds))
        let logger = self.logger
        let pollTimeout = configuration.pollTimeout
        ClientBootstrap(group: registry.eventLoop)
            .channelOption(
                .writeBufferWaterMark,
                value: ChannelOptions.Types.WriteBufferWaterMark(
                    low: configuration.maxQueuedBytes / 2, high: configuration.maxQueuedBytes)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StreamHandler(id: id, registry: registry.value))
                }
            }
            .withConnectedSocket(NIOBSDSocket.Handle(fd))
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard channel.isActive else { return }
                    let subscriber = Subscriber(
                        id: id, channel: channel, fd: fd, requestID: requestID, channels: channels, kind: kind)
                    if kind == .poll {
                        subscriber.resumeID = resume
                        registry.value.add(subscriber, pollTimeout: pollTimeout)
                    } else {
                        registry.value.add(subscriber, prologue: prologue)
                        if let tokenExpiry { registry.value.endAtExpiry(subscriber.id, tokenExpiry) }
                    }
                    opened(index, id)
                case .failure(let error):
                    logger.warning("could not take over a stream's socket", metadata: ["error": "\(error)"])
                }
            }
    }

    /// Hands a batch of events to every loop, in order.
    func dispatch(_ events: [FormattedEvent]) {
        guard !events.isEmpty else { return }
        for registry in registries {
            registry.eventLoop.execute { registry.value.deliver(events) }
        }
    }

    /// Hands a subscription answer to the loop that owns the stream (ordered after earlier events).
    func dispatchStart(
        registry index: Int, stream: UInt64, epoch: Epoch, sequence: UInt64, replay: [FormattedEvent],
        snapshots: [ChannelSnapshot]
    ) {
        let registry = registries[index]
        registry.eventLoop.execute {
            registry.value.start(stream, epoch: epoch, sequence: sequence, replay: replay, snapshots: snapshots)
        }
    }

    /// Marks every stream as waiting for a new start and calls `each` with each registry's streams.
    func awaitAll(_ each: @escaping @Sendable (_ registry: Int, _ streams: [(id: UInt64, channels: [String])]) -> Void)
    {
        for (index, registry) in registries.enumerated() {
            registry.eventLoop.execute { each(index, registry.value.awaitAll()) }
        }
    }

    /// The worker's figures, gathered from every loop.
    func stats(hubLink: String) -> EventLoopFuture<WorkerStats> {
        let parts = registries.map { registry in
            registry.eventLoop.submit {
                let value = registry.value
                return StreamFigures(
                    streams: value.count, byChannel: value.countsByChannel, pollsWaiting: value.pollsWaiting,
                    eventsSent: value.eventsSent,
                    bytesSent: value.bytesSent, slowClientsDropped: value.slowClientsDropped,
                    slowClientsCaughtUp: value.slowClientsCaughtUp)
            }
        }
        let configuration = self.configuration
        let startedAt = self.startedAt
        return EventLoopFuture.whenAllSucceed(parts, on: linkLoop).map { parts in
            var stats = WorkerStats(
                id: configuration.workerID, pid: getpid(),
                uptimeSeconds: Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9,
                streams: 0, streamsByChannel: [:], eventsSent: 0, bytesSent: 0, slowClientsDropped: 0, hubLink: hubLink)
            for part in parts {
                stats.streams += part.streams
                stats.streamsByChannel.merge(part.byChannel, uniquingKeysWith: +)
                stats.pollsWaiting += part.pollsWaiting
                stats.eventsSent += part.eventsSent
                stats.bytesSent += part.bytesSent
                stats.slowClientsDropped += part.slowClientsDropped
                stats.slowClientsCaughtUp += part.slowClientsCaughtUp
            }
            return stats
        }
    }

    /// Ends every stream with a jittered `retry`, so clients reconnect (to another worker) spread out.
    func drainAll(retryMilliseconds: Int, jitterMilliseconds: Int) -> EventLoopFuture<Void> {
        let drains = registries.map { registry in
            registry.eventLoop.flatSubmit {
                registry.value.drain(retryMilliseconds: retryMilliseconds, jitterMilliseconds: jitterMilliseconds)
            }
        }
        return EventLoopFuture.andAllComplete(drains, on: linkLoop)
    }
}

/// One loop's share of the figures.
struct StreamFigures: Sendable {
    var streams: Int
    var byChannel: [String: Int]
    var pollsWaiting: Int
    var eventsSent: UInt64
    var bytesSent: UInt64
    var slowClientsDropped: UInt64
    var slowClientsCaughtUp: UInt64
}
