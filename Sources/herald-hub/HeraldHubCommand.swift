// `herald-hub`: parses flags into a HubConfiguration, bootstraps logging, runs the hub service.
import ArgumentParser
import HeraldHub
import HeraldProtocol
import Liveness
import Logging
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

@main
struct HeraldHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-hub",
        abstract: "Orders every Herald event, keeps channel state, and broadcasts to the workers.",
        discussion: """
            Under systemd (Type=notify, NOTIFY_SOCKET) the hub says READY=1 once both sockets accept, \
            WATCHDOG=1 every half of WatchdogSec= (WATCHDOG_USEC) only while its event loop turns, and \
            STOPPING=1 when it starts to shut down.
            """)

    // Every default comes from the settings structs: one place for each.
    // (The URL only fills the required field; a constant that parses.)
    static let clusterDefaults = ClusterSettings(database: try! PostgresURL(parsing: "postgres://127.0.0.1/herald"))
    static let webhookDefaults = WebhookSettings(urls: [], secret: "")

    @Option(help: "Unix socket the workers connect to.")
    var workerSocket: String = HubConfiguration().workerSocketPath

    @Option(help: "Permission bits of the worker socket, in octal.")
    var workerSocketMode: String = "0" + String(HubConfiguration().workerSocketMode, radix: 8)

    @Option(help: "Unix socket for heraldctl.")
    var adminSocket: String = HubConfiguration().adminSocketPath

    @Option(help: "Permission bits of the admin socket, in octal.")
    var adminSocketMode: String = "0" + String(HubConfiguration().adminSocketMode, radix: 8)

    @Option(
        name: .customLong("admin-uid"),
        help: "A user id allowed on the admin socket besides the hub's own user and root (repeatable).")
    var adminUIDs: [UInt32] = []

    @Option(
        help:
            "How many channels get series of their own in /metrics (the most subscribed of those that have had events, 0 to 1000); the others' streams are summed.")
    var metricsChannels: Int = HubConfiguration().metricsChannels

    @Option(help: "Largest event data or state document accepted, in bytes.")
    var maxEventBytes: Int = HubConfiguration().maxEventBytes

    @Option(help: "How many channels one stream may subscribe to.")
    var maxChannelsPerStream: Int = HubConfiguration().maxChannelsPerStream

    @Option(help: "The most events in one publish-batch (admin socket), 1 to 100000.")
    var maxBatchEvents: Int = HubConfiguration().maxBatchEvents

    @Option(help: "Directory of the journal (events, state, epoch); without it everything is in memory only.")
    var dataDir: String?

    @Option(help: "When journal writes are forced to disk: always, batch or off.")
    var fsync: String = HubConfiguration().fsyncPolicy.rawValue

    @Option(help: "With --fsync batch, the longest wait before an fsync, in milliseconds.")
    var fsyncIntervalMs: Int = Int(HubConfiguration().fsyncInterval.nanoseconds / 1_000_000)

    @Option(help: "Events kept in history for resume and for reconnecting workers.")
    var historyEvents: Int = HubConfiguration().historyEvents

    @Option(help: "Bytes of events kept in history.")
    var historyBytes: Int = HubConfiguration().historyBytes

    @Option(help: "Journal segment size that triggers a snapshot (bounds restart time), in bytes.")
    var snapshotBytes: Int = HubConfiguration().snapshotBytes

    @Option(
        help:
            "Seconds a publish's idempotency key is remembered: a retry with the same key within it gets the first event's id and publishes nothing (0: keys are not remembered)."
    )
    var idempotencyWindow: Int = Int(HubConfiguration().idempotencyWindow.nanoseconds / 1_000_000_000)

    @Option(help: "Most idempotency keys remembered; beyond it the oldest are forgotten early (counted in stats).")
    var maxIdempotencyKeys: Int = HubConfiguration().maxIdempotencyKeys

    @Option(help: "Most bytes of idempotency keys remembered (each key's bytes plus 64), the same way.")
    var maxIdempotencyBytes: Int = HubConfiguration().maxIdempotencyBytes

    @Option(
        help: ArgumentHelp(
            "Cluster mode: share one ordered event log with hubs on other machines through this PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; PGPASSWORD is used when the URL has no password). Excludes --data-dir.",
            valueName: "url"))
    var cluster: String?

    @Option(help: "Cluster mode: events kept in the database; older ones are pruned (0: no count limit).")
    var clusterRetainEvents: Int = Self.clusterDefaults.retainEvents

    @Option(help: "Cluster mode: events older than this many seconds are pruned (0: no age limit).")
    var clusterRetainSeconds: Int = Self.clusterDefaults.retainSeconds

    @Option(help: "Cluster mode: how often this hub looks for events to prune, in milliseconds.")
    var clusterPruneIntervalMs: Int = Int(Self.clusterDefaults.pruneInterval.nanoseconds / 1_000_000)

    @Option(help: "Cluster mode: the longest a publish waits for the database before it fails, in milliseconds.")
    var clusterTimeoutMs: Int = Int(Self.clusterDefaults.timeout.nanoseconds / 1_000_000)

    @Option(
        name: .customLong("webhook"),
        help: ArgumentHelp(
            "POST occupancy notices (channel.occupied at a channel's first subscriber, channel.vacated once its last has been gone --webhook-vacated-after seconds) to this URL, signed with HERALD_WEBHOOK_SECRET from the environment. Repeatable; in cluster mode one hub sends them for the cluster.",
            valueName: "url"))
    var webhooks: [String] = []

    @Option(help: "Seconds a channel stays without subscribers before channel.vacated is sent (a reconnect inside them sends nothing).")
    var webhookVacatedAfter: Double = Double(Self.webhookDefaults.vacatedAfter.nanoseconds) / 1e9

    @Option(help: "Occupancy notices waiting for one receiver at most; more are dropped (logged and counted).")
    var webhookQueue: Int = Self.webhookDefaults.maximumQueued

    @Option(
        help: ArgumentHelp(
            "A file whose time is set to now every half second while the event loop turns (deploy/run kills the hub once the file is older than HERALD_WATCHDOG_SECONDS); none if omitted.",
            valueName: "path"))
    var watchdogFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard parseOctalMode(workerSocketMode) != nil else {
            throw ValidationError("--worker-socket-mode must be octal permission bits such as 0660")
        }
        guard parseOctalMode(adminSocketMode) != nil else {
            throw ValidationError("--admin-socket-mode must be octal permission bits such as 0600")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let watchdogFile, watchdogFile.isEmpty { throw ValidationError("--watchdog-file must not be empty") }
        guard maxEventBytes > 0 else { throw ValidationError("--max-event-bytes must be positive") }
        guard (0...1000).contains(metricsChannels) else { throw ValidationError("--metrics-channels must be 0 to 1000") }
        guard (1...100_000).contains(maxBatchEvents) else {
            throw ValidationError("--max-batch-events must be from 1 to 100000")
        }
        guard FsyncPolicy(rawValue: fsync) != nil else {
            throw ValidationError(
                "--fsync must be one of \(FsyncPolicy.allCases.map(\.rawValue).joined(separator: ", ")), not '\(fsync)'"
            )
        }
        guard (0...86_400 * 7).contains(idempotencyWindow) else {
            throw ValidationError("--idempotency-window must be 0 to 604800 seconds (a week)")
        }
        guard maxIdempotencyKeys >= 1, maxIdempotencyBytes >= 1024 else {
            throw ValidationError("--max-idempotency-keys must be at least 1 and --max-idempotency-bytes at least 1024")
        }
        guard (1...1024).contains(maxChannelsPerStream) else {
            throw ValidationError("--max-channels-per-stream must be 1 to 1024")
        }
        if !webhooks.isEmpty, let problem = webhookSettings.problem { throw ValidationError(problem) }
        if let cluster {
            do {
                _ = try PostgresURL(parsing: cluster)
            } catch {
                throw ValidationError(error.description)
            }
            guard dataDir == nil else {
                throw ValidationError(
                    "--data-dir and --cluster exclude each other: in cluster mode the database holds events, state and epoch"
                )
            }
            guard clusterRetainEvents >= 0, clusterRetainSeconds >= 0 else {
                throw ValidationError("--cluster-retain-events and --cluster-retain-seconds must not be negative")
            }
            guard clusterPruneIntervalMs >= 10, (100...60_000).contains(clusterTimeoutMs) else {
                throw ValidationError(
                    "--cluster-prune-interval-ms must be at least 10 and --cluster-timeout-ms 100 to 60000")
            }
        }
    }

    /// The webhook flags and `HERALD_WEBHOOK_SECRET`, as settings.
    var webhookSettings: WebhookSettings {
        var settings = WebhookSettings(
            urls: webhooks, secret: getenv("HERALD_WEBHOOK_SECRET").map { String(cString: $0) } ?? "")
        settings.vacatedAfter = .nanoseconds(Int64((webhookVacatedAfter * 1e9).rounded()))
        settings.maximumQueued = webhookQueue
        return settings
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "herald.hub")
        var configuration = HubConfiguration()
        configuration.workerSocketPath = workerSocket
        configuration.workerSocketMode = mode_t(parseOctalMode(workerSocketMode)!)
        configuration.adminSocketPath = adminSocket
        configuration.adminSocketMode = mode_t(parseOctalMode(adminSocketMode)!)
        configuration.adminAllowedUIDs = Set(adminUIDs.map { uid_t($0) })
        configuration.maxEventBytes = maxEventBytes
        configuration.metricsChannels = metricsChannels
        configuration.maxChannelsPerStream = maxChannelsPerStream
        configuration.maxBatchEvents = maxBatchEvents
        configuration.dataDirectory = dataDir
        configuration.fsyncPolicy = FsyncPolicy(rawValue: fsync)!
        configuration.fsyncInterval = .milliseconds(Int64(fsyncIntervalMs))
        configuration.historyEvents = historyEvents
        configuration.historyBytes = historyBytes
        configuration.snapshotBytes = snapshotBytes
        configuration.idempotencyWindow = .seconds(Int64(idempotencyWindow))
        configuration.maxIdempotencyKeys = maxIdempotencyKeys
        configuration.maxIdempotencyBytes = maxIdempotencyBytes
        configuration.liveness.watchdogFile = watchdogFile
        if !webhooks.isEmpty { configuration.webhooks = webhookSettings }
        var environment: [String: String] = [:]
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            environment[name] = getenv(name).map { String(cString: $0) }
        }
        configuration.liveness.readSystemdEnvironment(environment, ownPID: getpid())
        if let cluster {
            let password = getenv("PGPASSWORD").map { String(cString: $0) }
            var settings = ClusterSettings(database: try PostgresURL(parsing: cluster, environmentPassword: password))
            settings.retainEvents = clusterRetainEvents
            settings.retainSeconds = clusterRetainSeconds
            settings.pruneInterval = .milliseconds(Int64(clusterPruneIntervalMs))
            settings.timeout = .milliseconds(Int64(clusterTimeoutMs))
            configuration.cluster = settings
        }

        let liveness = LivenessMonitor(settings: configuration.liveness, readyParts: ["hub sockets"], logger: logger)
        // The monitor first: the group stops services in reverse order, so it feeds the
        // watchdogs until the hub has closed its sockets and flushed its journal.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: liveness),
                    .init(service: HubService(configuration: configuration, logger: logger, liveness: liveness)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
