// The hub as a long-running service: opens the worker and admin sockets on one event loop,
// serves until graceful shutdown, then closes both and removes their socket files.
import HeraldProtocol
import Liveness
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SocketFiles

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a hub: `ServiceGroup` starts it and stops it on SIGTERM or SIGINT.
public struct HubService: Service {
    private let configuration: HubConfiguration
    private let logger: Logger
    private let liveness: LivenessMonitor?

    /// A hub with these settings, logging to `logger`. With `liveness`, the hub's loop is
    /// watched once it serves, the part "hub sockets" is reported ready once both sockets
    /// accept, and shutdown is reported when it begins.
    public init(configuration: HubConfiguration, logger: Logger, liveness: LivenessMonitor? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.liveness = liveness
    }

    public func run() async throws {
        // One loop owns everything: ordering needs no locks and fan-out needs no hops.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // fsync and snapshots block: they run here, never on the loop.
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let configuration = self.configuration
        let logger = self.logger
        let core: NIOLoopBound<HubCore>
        var clusterServices: [any Service] = []
        do {
            if let settings = configuration.cluster {
                let services = try await Self.startCluster(
                    settings: settings, configuration: configuration, loop: loop, logger: logger)
                core = services.core
                clusterServices = services.services
            } else {
                core = try await loop.submit {
                    let core = try HubCore(
                        loop: loop, configuration: configuration, logger: logger, threadPool: threadPool)
                    if let webhooks = configuration.webhooks {
                        // One machine: this hub's counts are all there are.
                        let notifier = OccupancyNotifier(loop: loop, settings: webhooks, logger: logger)
                        core.occupancy = notifier
                        core.presenceObserver = { notifier.changed($0) }
                    }
                    return NIOLoopBound(core, eventLoop: loop)
                }.get()
            }
        } catch {
            try? await threadPool.shutdownGracefully()
            try await group.shutdownGracefully()
            if error is CancellationError {
                logger.info("hub stopping before it could read the cluster log")
                return
            }
            throw error
        }

        var servers: [(Channel, String)] = []
        do {
            let workerFD: Int32 = try UnixListener.listen(
                path: configuration.workerSocketPath, mode: configuration.workerSocketMode)
            // A worker link that stops reading is dropped at this mark (it reconnects and catches up).
            let workerMark = configuration.workerHighWaterBytes
            let workerServer = try await ServerBootstrap(group: group)
                .childChannelOption(
                    ChannelOptions.writeBufferWaterMark, value: .init(low: workerMark / 4, high: workerMark)
                )
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HubFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(WorkerLinkHandler(core: core.value))
                    }
                }
                .withBoundSocket(workerFD).get()
            servers.append((workerServer, configuration.workerSocketPath))

            let adminFD: Int32 = try UnixListener.listen(
                path: configuration.adminSocketPath, mode: configuration.adminSocketMode)
            let allowed = configuration.adminAllowedUIDs.union([getuid(), 0])
            let maximumLine = configuration.maxEventBytes + 4096
            // A tail follower that stops reading is dropped at this mark.
            let tailMark = configuration.tailHighWaterBytes
            let adminServer = try await ServerBootstrap(group: group)
                .childChannelOption(
                    ChannelOptions.writeBufferWaterMark, value: .init(low: tailMark / 4, high: tailMark)
                )
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(AdminLineDecoder(maximumLength: maximumLine)))
                        try channel.pipeline.syncOperations.addHandler(
                            AdminSessionHandler(core: core.value, allowedUIDs: allowed))
                    }
                }
                .withBoundSocket(adminFD).get()
            servers.append((adminServer, configuration.adminSocketPath))
            let epoch = try await loop.submit { core.value.epoch.rawValue }.get()
            // After the journal replay (done on the loop): from now on the loop must keep turning.
            liveness?.watch([loop], name: "the hub's loop")
            logger.info(
                "hub ready",
                metadata: [
                    "hub.workerSocket": "\(configuration.workerSocketPath)",
                    "hub.adminSocket": "\(configuration.adminSocketPath)",
                    "hub.epoch": "\(epoch)",
                ])
            liveness?.partReady("hub sockets")
            if clusterServices.isEmpty {
                try await gracefulShutdown()
            } else {
                // The follower and the publisher run until the hub is asked to stop.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for service in clusterServices { group.addTask { try await service.run() } }
                    try await gracefulShutdown()
                    group.cancelAll()
                }
            }
            logger.info("hub stopping")
            liveness?.stopping()
        } catch {
            await Self.close(servers)
            try? await threadPool.shutdownGracefully()
            try await group.shutdownGracefully()
            throw error
        }
        await Self.close(servers)
        // Syncs what was written and trims the reservation, so a restart knows nothing was lost.
        try? await loop.submit { core.value.close() }.get()
        try? await threadPool.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    /// Cluster mode: reads the log (waiting for the database if it is away), makes the core
    /// from it, and the follower and publisher that keep it current.
    private static func startCluster(
        settings: ClusterSettings, configuration: HubConfiguration, loop: EventLoop, logger: Logger
    ) async throws -> (core: NIOLoopBound<HubCore>, services: [any Service]) {
        let log = ClusterLog(
            logger: logger, maxEventBytes: configuration.maxEventBytes,
            idempotencySeconds: Double(configuration.idempotencyWindow.nanoseconds) / 1e9,
            maxIdempotencyKeys: configuration.maxIdempotencyKeys)
        // SIGTERM while the database is still away stops the wait.
        let snapshot = try await cancelWhenGracefulShutdown {
            try await ClusterFollower.initialSnapshot(
                log: log, settings: settings, historyEvents: configuration.historyEvents, loop: loop, logger: logger)
        }
        let (publisherWakes, publisherWake) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (followerWakes, followerWake) = AsyncStream.makeStream(
            of: ClusterWake.self, bufferingPolicy: .bufferingNewest(1024))
        let (core, clusterLog) = try await loop.submit {
            let clusterLog = ClusterEventLog(
                settings: settings, loop: loop, maxEventBytes: configuration.maxEventBytes, snapshot: snapshot,
                publisherWake: publisherWake, followerWake: followerWake)
            let core = HubCore(
                loop: loop, configuration: configuration, logger: logger, log: clusterLog, restore: snapshot.restore)
            if let webhooks = configuration.webhooks {
                // Fed by ClusterPresence with the cluster's totals, on the hub that leads only.
                core.occupancy = OccupancyNotifier(loop: loop, settings: webhooks, logger: logger)
                core.sendsWebhooks = false
            }
            logger.info(
                "cluster log loaded",
                metadata: ["cluster.database": "\(settings.database)", "hub.sequence": "\(snapshot.head.sequence)"])
            return (NIOLoopBound(core, eventLoop: loop), NIOLoopBound(clusterLog, eventLoop: loop))
        }.get()
        let follower = ClusterFollower(
            clusterLog: clusterLog, loop: loop, log: log, settings: settings,
            historyEvents: configuration.historyEvents,
            wakes: followerWakes, wake: followerWake, logger: logger)
        let publisher = ClusterPublisher(
            clusterLog: clusterLog, loop: loop, log: log, settings: settings, wakes: publisherWakes, logger: logger)
        let presence = ClusterPresence(core: core, loop: loop, settings: settings, logger: logger)
        return (core, [follower, publisher, presence])
    }

    private static func close(_ servers: [(Channel, String)]) async {
        for (server, path) in servers {
            try? await server.close()
            UnixListener.remove(path)
        }
    }
}
