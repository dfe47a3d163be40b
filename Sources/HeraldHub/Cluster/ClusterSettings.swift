// Cluster mode's settings (`--cluster postgres://…` and the retention flags): where the shared
// event log lives and how long it keeps events.
import Logging
import NIOCore
import PostgresNIO

/// How a hub takes part in a cluster. `HubConfiguration.cluster` is nil on a single machine.
public struct ClusterSettings: Sendable {
    /// `--cluster`: the PostgreSQL database that holds the shared, ordered event log.
    public var database: PostgresURL
    /// `--cluster-retain-events`: rows kept in `herald_events`; older ones are pruned (0: no count limit).
    public var retainEvents: Int = 10_000
    /// `--cluster-retain-seconds`: events older than this are pruned (0: no age limit).
    public var retainSeconds: Int = 0
    /// `--cluster-prune-interval-ms`: how often a hub checks for events to prune.
    public var pruneInterval: TimeAmount = .seconds(10)
    /// How often a hub reads the log's head even without a notification (a safety net, and how
    /// a prune made by another hub reaches this one's history).
    public var pollInterval: TimeAmount = .seconds(1)
    /// `--cluster-timeout-ms`: the longest a publish waits for the database before it is
    /// answered with an error (shorter than the workers' 5 s publish timeout).
    public var timeout: TimeAmount = .seconds(3)
    /// Publishes put into one transaction at most (they share its round trips and its commit).
    public var maximumBatch: Int = 256
    /// Publishes waiting for the database at most; more are refused at once.
    public var maximumQueued: Int = 10_000
    /// How long a resume with an id this hub has not read yet waits for it before the stream
    /// starts from a fresh `init` instead.
    public var resumeWait: TimeAmount = .seconds(2)

    /// How often a hub writes its subscriber counts (its presence heartbeat) and reads the
    /// other hubs'.
    public var presenceInterval: TimeAmount = .seconds(1)
    /// A hub whose counts are older than this no longer counts (it stopped, or lost the database).
    public var presenceExpiry: TimeAmount = .seconds(3)

    /// Cluster mode on `database`, every other setting at its default.
    public init(database: PostgresURL) {
        self.database = database
    }

    /// One connection to the database on `loop`, named `herald-hub <role>` in `pg_stat_activity`
    /// and given up after `timeout` if the server does not answer.
    func connect(role: String, id: Int, on loop: EventLoop, logger: Logger) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            on: loop,
            configuration: database.connectionConfiguration(application: "herald-hub \(role)", connectTimeout: timeout),
            id: id, logger: logger)
    }
}
