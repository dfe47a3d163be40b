// The hub as a long-running service: opens the worker and admin sockets on one event loop,
// serves until graceful shutdown, then closes both and removes their socket files.
import HeraldProtocol
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

    /// A hub with these settings, logging to `logger`.
    public init(configuration: HubConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
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
        do {
            core = try await loop.submit {
                NIOLoopBound(
                    try HubCore(loop: loop, configuration: configuration, logger: logger, threadPool: threadPool),
                    eventLoop: loop)
            }.get()
        } catch {
            try? await threadPool.shutdownGracefully()
            try await group.shutdownGracefully()
            throw error
        }

        var servers: [(Channel, String)] = []
        do {
            let workerFD: Int32 = try UnixListener.listen(
                path: configuration.workerSocketPath, mode: configuration.workerSocketMode)
            let workerServer = try await ServerBootstrap(group: group)
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
            let adminServer = try await ServerBootstrap(group: group)
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
            logger.info(
                "hub ready",
                metadata: [
                    "hub.workerSocket": "\(configuration.workerSocketPath)",
                    "hub.adminSocket": "\(configuration.adminSocketPath)",
                    "hub.epoch": "\(epoch)",
                ])
            try await gracefulShutdown()
            logger.info("hub stopping")
        } catch {
            await Self.close(servers)
            try? await threadPool.shutdownGracefully()
            try await group.shutdownGracefully()
            throw error
        }
        await Self.close(servers)
        // Every accepted event was written before it was acknowledged; this makes it durable.
        try? await loop.submit { core.value.flushJournal() }.get()
        try? await threadPool.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    private static func close(_ servers: [(Channel, String)]) async {
        for (server, path) in servers {
            try? await server.close()
            UnixListener.remove(path)
        }
    }
}
