// Everything an operator can set on a hub, with its default.
import HeraldProtocol
import Liveness
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The hub's settings. Command-line flags map onto it in `herald-hub`.
public struct HubConfiguration: Sendable {
    /// `--worker-socket`: the unix socket workers connect to.
    public var workerSocketPath: String = "/run/herald/hub.sock"
    /// `--worker-socket-mode`: permission bits of the worker socket (workers run as the hub's user or group).
    public var workerSocketMode: mode_t = 0o660
    /// `--admin-socket`: the unix socket `heraldctl` connects to.
    public var adminSocketPath: String = "/run/herald/admin.sock"
    /// `--admin-socket-mode`: permission bits of the admin socket; owner only by default.
    public var adminSocketMode: mode_t = 0o600
    /// `--admin-uid`: user ids allowed on the admin socket besides the hub's own user and root.
    public var adminAllowedUIDs: Set<uid_t> = []
    /// `--max-event-bytes`: the largest event data (and state document) accepted.
    public var maxEventBytes: Int = 1 << 20
    /// `--max-batch-events`: the most events in one `publish-batch` (admin); the workers'
    /// `--max-batch-events` limits HTTP batches.
    public var maxBatchEvents: Int = PublishBatch.defaultMaxEvents
    /// `--max-channels-per-stream`: how many channels one stream may subscribe to.
    public var maxChannelsPerStream: Int = 16
    /// `--metrics-channels`: how many channels get series of their own in `/metrics` (the most
    /// subscribed of those that have had events); streams on the others are summed.
    public var metricsChannels: Int = 50
    /// How long `stats` waits for the workers' figures.
    public var statsTimeout: TimeAmount = .seconds(1)
    /// `--data-dir`: where the journal lives; nil keeps everything in memory only (lost on restart).
    public var dataDirectory: String?
    /// `--fsync`: when journal writes are forced to disk (see `FsyncPolicy`).
    public var fsyncPolicy: FsyncPolicy = .always
    /// `--fsync-interval-ms`: with `batch`, the longest wait before an fsync.
    public var fsyncInterval: TimeAmount = .milliseconds(5)
    /// Sequence numbers reserved by one synced journal record ahead of use (the next range is
    /// reserved when half is used): costs one fsync per this many events, under every `--fsync`.
    public var reservationSize: Int = 1000
    /// Output a tail follower (an admin connection) may have unread before it is dropped.
    public var tailHighWaterBytes: Int = 1 << 20
    /// Output a worker link may have unread before it is dropped (it reconnects and catches up);
    /// above `--history-bytes`, so that a catch-up fits.
    public var workerHighWaterBytes: Int { historyBytes + (16 << 20) }
    /// `--history-events`: events kept for resume and for workers that reconnect.
    public var historyEvents: Int = 10_000
    /// `--history-bytes`: bytes of events kept (whichever bound is reached first applies).
    public var historyBytes: Int = 16 << 20
    /// `--snapshot-bytes`: a snapshot is written (and older segments deleted) once the current
    /// journal segment reaches this size, which bounds restart time.
    public var snapshotBytes: Int = 16 << 20
    /// `--idempotency-window`: how long the hub remembers a publish's idempotency key, so that
    /// a retry with the same key is answered with the first event's id instead of publishing
    /// again; `.zero` forgets keys at once (every publish is new).
    public var idempotencyWindow: TimeAmount = .seconds(600)
    /// `--max-idempotency-keys`: most keys remembered on one machine; beyond it the oldest are
    /// forgotten before their window ends (counted in `stats`).
    public var maxIdempotencyKeys: Int = 200_000
    /// `--max-idempotency-bytes`: most bytes of keys remembered (each key's bytes plus 64), the
    /// same way.
    public var maxIdempotencyBytes: Int = 32 << 20
    /// `--cluster`: share one ordered event log with hubs on other machines through PostgreSQL;
    /// nil (the default) keeps this hub on its own, with its journal.
    public var cluster: ClusterSettings?
    /// `--webhook`: occupancy webhooks (a channel's first subscriber, its last one gone); nil
    /// (the default) sends none.
    public var webhooks: WebhookSettings?
    /// `--watchdog-file` and systemd's `NOTIFY_SOCKET`/`WATCHDOG_USEC`: the hub's loop proves it
    /// turns and only then feeds the watchdogs; by default none is fed.
    public var liveness = LivenessSettings()

    public init() {}

    /// An empty key window with these bounds.
    var emptyIdempotencyWindow: IdempotencyWindow {
        IdempotencyWindow(
            windowMilliseconds: UInt64(max(0, idempotencyWindow.nanoseconds / 1_000_000)),
            maximumKeys: maxIdempotencyKeys, maximumBytes: maxIdempotencyBytes)
    }
}
