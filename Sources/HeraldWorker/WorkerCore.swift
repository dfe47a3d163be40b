// The worker as one object: its streams and its hub link, and the step that turns a FastCGI
// socket handed over by libfcgi into a live event stream.
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix

/// Owns the worker's streams and hub link.
public final class WorkerCore: Sendable {
    let configuration: WorkerConfiguration
    let logger: Logger
    let streams: StreamSet
    /// The hub link (connected by running `HubLinkService`).
    let link: HubLink
    /// HTTP publishes on their way to the hub and back.
    let publishes: PublishRelay

    /// Creates the event loops and the registries; nothing is opened yet.
    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        streams = StreamSet(configuration: configuration, logger: logger)
        link = HubLink(configuration: configuration, logger: logger, streams: streams)
        publishes = PublishRelay(link: link, configuration: configuration, logger: logger)
        // A slow stream catching up on state asks the hub for a fresh start.
        for (index, registry) in streams.registries.enumerated() {
            let link = self.link
            registry.eventLoop.execute {
                registry.value.restart = { stream, channels in
                    link.subscribe(registry: index, stream: stream, channels: channels, resume: nil)
                }
            }
        }
    }

    /// Takes over a connected FastCGI socket whose request asked for a stream (or a long poll):
    /// writes a stream's headers and `retry` at once, registers it, and asks the hub where it
    /// starts. Called on a libfcgi thread; from here on the socket belongs to the event loop.
    /// Takes over a request's socket as a stream or poll on `channels`; a stream opened with a
    /// subscriber token ends at `tokenExpiry`.
    func openStream(
        fd: Int32, requestID: UInt16, channels: [String], resume: EventID?, kind: Subscriber.Kind = .stream,
        tokenExpiry: TokenExpiry? = nil
    ) {
        let (id, index) = streams.reserve()
        let registry = streams.registries[index]
        let prologue = FastCGIRecords.stdout(
            requestID: requestID,
            content: EventFormatter.prologue(
                corsOrigin: configuration.corsOrigin, retryMilliseconds: configuration.retryMilliseconds))
        let link = self.link
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
                        id: id, channel: channel, requestID: requestID, channels: channels, kind: kind)
                    if kind == .poll {
                        subscriber.resumeID = resume
                        registry.value.add(subscriber, pollTimeout: pollTimeout)
                    } else {
                        registry.value.add(subscriber)
                        channel.writeAndFlush(prologue, promise: nil)
                        if let tokenExpiry { registry.value.endAtExpiry(subscriber.id, tokenExpiry) }
                    }
                    link.subscribe(registry: index, stream: id, channels: channels, resume: resume)
                case .failure(let error):
                    logger.warning("could not take over a stream's socket", metadata: ["error": "\(error)"])
                }
            }
    }

    /// Every event loop of the worker: the stream loops, the first of which also runs the hub link.
    public var eventLoops: [any EventLoop] { streams.registries.map(\.eventLoop) }

    /// The worker's figures.
    public func stats() -> EventLoopFuture<WorkerStats> {
        let streams = self.streams
        let publishes = self.publishes
        return link.stateName().flatMap { streams.stats(hubLink: $0) }.map { stats in
            var stats = stats
            stats.publishesInFlight = publishes.count
            return stats
        }
    }

    /// Ends every stream with a jittered `retry`, so clients reconnect (to another worker) spread out.
    public func drainAll(retryMilliseconds: Int = 2000, jitterMilliseconds: Int = 5000) -> EventLoopFuture<Void> {
        streams.drainAll(retryMilliseconds: retryMilliseconds, jitterMilliseconds: jitterMilliseconds)
    }

    /// Stops the event loops (after everything else has stopped).
    public func shutdown() async throws {
        try await streams.group.shutdownGracefully()
    }
}
