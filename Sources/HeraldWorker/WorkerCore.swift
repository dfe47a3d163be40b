// The worker as one object: its streams, its hub link and its HTTP publishes, wired together.
import HeraldProtocol
import Logging
import NIOCore

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

    /// Takes over a request's socket as a stream or poll on `channels` and asks the hub where
    /// it starts (after `resume`, if given); a stream opened with a subscriber token ends at
    /// `tokenExpiry`. Called on a libfcgi thread; from here on the socket belongs to the event loop.
    func openStream(
        fd: Int32, requestID: UInt16, channels: [String], resume: EventID?, kind: Subscriber.Kind = .stream,
        tokenExpiry: TokenExpiry? = nil
    ) {
        let link = self.link
        streams.takeOver(
            fd: fd, requestID: requestID, channels: channels, resume: resume, kind: kind, tokenExpiry: tokenExpiry
        ) {
            registry, stream in
            link.subscribe(registry: registry, stream: stream, channels: channels, resume: resume)
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
