// `herald-worker`: parses flags and environment into a WorkerConfiguration, bootstraps
// logging, initialises libfcgi, and runs the hub link and the FastCGI front.
import ArgumentParser
import Foundation
import HeraldProtocol
import HeraldWorker
import Liveness
import Logging
import NIOCore
import ServiceLifecycle

@main
struct HeraldWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-worker",
        abstract: "Serves Herald's event streams to nginx over FastCGI.",
        discussion: """
            HTTP publishing is enabled by the environment variable HERALD_PUBLISH_TOKEN (the bearer token).
            Private channels (--private-channels) need HERALD_SUBSCRIBER_KEY, the HS256 secret (at least \
            32 bytes) that subscriber tokens are signed with; both variables stay out of `ps`.
            Under systemd (Type=notify, NOTIFY_SOCKET) the worker says READY=1 once its FastCGI socket \
            accepts and its first attempt to reach the hub is done, WATCHDOG=1 every half of WatchdogSec= \
            (WATCHDOG_USEC) only while every event loop turns, and STOPPING=1 when it starts draining.
            """)

    /// Every default comes from `WorkerConfiguration`: one place for each.
    static let defaults = WorkerConfiguration()

    @Option(help: "FastCGI unix socket nginx connects to.")
    var socket: String = Self.defaults.socketPath

    @Option(help: "Permission bits of the FastCGI socket, in octal.")
    var socketMode: String = "0" + String(Self.defaults.socketMode, radix: 8)

    @Option(help: "Group of the FastCGI socket (nginx's group); unchanged if omitted.")
    var socketGroup: String?

    @Option(
        name: .customLong("allow-user"),
        help: ArgumentHelp(
            "A user allowed on the FastCGI socket besides the worker's own and root (nginx's user, e.g. www-data); every connection's peer is checked (SO_PEERCRED). Repeatable.",
            valueName: "name"))
    var allowUsers: [String] = []

    @Option(
        name: .customLong("allow-uid"),
        help: ArgumentHelp("As --allow-user, by user id. Repeatable.", valueName: "uid"))
    var allowUIDs: [UInt32] = []

    @Option(help: "Seconds a FastCGI connection may keep a request thread waiting for its request, 1 to 3600.")
    var receiveTimeout: Int = Int(WorkerConfiguration().receiveTimeout.nanoseconds / 1_000_000_000)

    @Option(help: "The hub's worker socket.")
    var hub: String = Self.defaults.hubSocketPath

    @Option(help: "This worker's name in logs and stats (default: worker-<pid>).")
    var id: String?

    @Option(help: "Seconds between heartbeat comments on every stream.")
    var heartbeat: Int = Int(Self.defaults.heartbeatInterval.nanoseconds / 1_000_000_000)

    @Option(help: "Reconnection time sent to clients at stream start, in milliseconds.")
    var retry: Int = Self.defaults.retryMilliseconds

    @Option(help: "Access-Control-Allow-Origin value.")
    var corsOrigin: String = Self.defaults.corsOrigin

    @Option(help: "Largest HTTP publish body, in bytes.")
    var maxBody: Int = Self.defaults.maxBodyBytes

    @Option(help: "Largest POST /publish batch body (NDJSON), in bytes.")
    var maxBatchBytes: Int = WorkerConfiguration().maxBatchBytes

    @Option(help: "The most events in one POST /publish batch, 1 to 100000.")
    var maxBatchEvents: Int = WorkerConfiguration().maxBatchEvents

    @Option(help: "HTTP publishes waiting for the hub at once; one more is answered 503 with Retry-After.")
    var maxPublishesInFlight: Int = WorkerConfiguration().maxPublishesInFlight

    @Option(help: "How many channels one stream may ask for.")
    var maxChannelsPerStream: Int = Self.defaults.maxChannelsPerStream

    @Option(help: "Bytes a stream may have waiting before its client is dropped as too slow.")
    var maxQueuedBytes: Int = Self.defaults.maxQueuedBytes

    @Option(help: "Seconds GET /poll waits for an event before answering with none.")
    var pollTimeout: Int = Int(Self.defaults.pollTimeout.nanoseconds / 1_000_000_000)

    @Option(help: "SwiftNIO event loops writing the streams.")
    var eventLoops: Int = Self.defaults.eventLoops

    @Option(help: "libfcgi threads reading requests.")
    var acceptThreads: Int = Self.defaults.acceptThreads

    @Option(
        help: ArgumentHelp(
            "A channel that needs a subscriber token: a name, or a prefix ending in * (e.g. 'private.*'). Repeatable.",
            valueName: "pattern"))
    var privateChannels: [String] = []

    @Option(
        help: ArgumentHelp(
            "A file whose time is set to now every half second while every event loop turns (deploy/run kills the worker once the file is older than HERALD_WATCHDOG_SECONDS); none if omitted.",
            valueName: "path"))
    var watchdogFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard parseOctalMode(socketMode) != nil else {
            throw ValidationError("--socket-mode must be octal permission bits such as 0660")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let watchdogFile, watchdogFile.isEmpty { throw ValidationError("--watchdog-file must not be empty") }
        do {
            try SubscriberTokens.check(privateChannels: privateChannels, secret: subscriberKey)
        } catch {
            throw ValidationError(error.description)
        }
        if let problem = try settings().problem { throw ValidationError(problem) }
    }

    /// The flags and environment as a configuration (the subscriber tokens and systemd's
    /// watchdog come in `run`).
    private func settings() throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        configuration.workerID = id ?? "worker-\(ProcessInfo.processInfo.processIdentifier)"
        configuration.socketPath = socket
        configuration.socketMode = mode_t(parseOctalMode(socketMode) ?? 0o660)
        configuration.socketGroup = socketGroup
        configuration.allowedPeerUIDs = try allowedUserIDs()
        configuration.receiveTimeout = .seconds(Int64(receiveTimeout))
        configuration.hubSocketPath = hub
        configuration.heartbeatInterval = .seconds(Int64(heartbeat))
        configuration.retryMilliseconds = retry
        configuration.corsOrigin = corsOrigin
        configuration.publishToken = publishToken
        configuration.maxBodyBytes = maxBody
        configuration.maxBatchBytes = maxBatchBytes
        configuration.maxBatchEvents = maxBatchEvents
        configuration.maxPublishesInFlight = maxPublishesInFlight
        configuration.maxChannelsPerStream = maxChannelsPerStream
        configuration.maxQueuedBytes = maxQueuedBytes
        configuration.pollTimeout = .seconds(Int64(pollTimeout))
        configuration.eventLoops = eventLoops
        configuration.acceptThreads = acceptThreads
        configuration.liveness.watchdogFile = watchdogFile
        return configuration
    }

    /// `--allow-user` names resolved to ids, with the `--allow-uid` ids.
    private func allowedUserIDs() throws -> Set<uid_t> {
        var ids = Set(allowUIDs.map { uid_t($0) })
        for name in allowUsers {
            guard let entry = getpwnam(name) else {
                throw ValidationError("--allow-user \(name): no such user on this machine")
            }
            ids.insert(entry.pointee.pw_uid)
        }
        return ids
    }

    /// `HERALD_PUBLISH_TOKEN`, from the environment so that it stays out of `ps`; empty is unset.
    private var publishToken: String? {
        ProcessInfo.processInfo.environment["HERALD_PUBLISH_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `HERALD_SUBSCRIBER_KEY`, from the environment so that it stays out of `ps`; empty is unset.
    private var subscriberKey: String? {
        ProcessInfo.processInfo.environment["HERALD_SUBSCRIBER_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration = try settings()
        configuration.liveness.readSystemdEnvironment(
            ProcessInfo.processInfo.environment, ownPID: ProcessInfo.processInfo.processIdentifier)
        // jwt-kit hands its key out of an actor: built once here, checked synchronously per request.
        configuration.subscriberTokens = try await SubscriberTokens(
            privateChannels: privateChannels, secret: subscriberKey)
        var logger = Logger(label: "herald.worker")
        logger[metadataKey: "worker.id"] = "\(configuration.workerID)"
        if !privateChannels.isEmpty {
            logger.info(
                "private channels need a subscriber token",
                metadata: ["worker.private_channels": "\(privateChannels.joined(separator: " "))"])
        } else if subscriberKey != nil {
            logger.notice("HERALD_SUBSCRIBER_KEY is set but no --private-channels: every channel is open")
        }

        FastCGIFront.initializeLibrary()
        let core = WorkerCore(configuration: configuration, logger: logger)
        let liveness = LivenessMonitor(
            settings: configuration.liveness, readyParts: ["FastCGI socket", "hub link"], logger: logger)
        liveness.watch(core.eventLoops, name: "stream loops; the first one also runs the hub link")
        // The monitor first: the group stops services in reverse order, so it feeds the
        // watchdogs until the streams are drained.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: liveness), .init(service: HubLinkService(core: core, liveness: liveness)),
                    .init(service: FastCGIFront(core: core, liveness: liveness)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            try? await core.shutdown()
            throw error
        }
        try await core.shutdown()
    }
}
