// Everything an operator can set on a worker, with its default.
import HeraldProtocol
import Liveness
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The worker's settings. Command-line flags and environment map onto it in `herald-worker`.
public struct WorkerConfiguration: Sendable {
    /// `--id`: the worker's name in logs and stats.
    public var workerID: String = "worker"
    /// `--socket`: the FastCGI unix socket nginx connects to.
    public var socketPath: String = "/run/herald/worker.sock"
    /// `--socket-mode`: permission bits of the FastCGI socket (nginx must be able to connect).
    public var socketMode: mode_t = 0o660
    /// `--socket-group`: group of the FastCGI socket (nginx's group in production); unchanged if nil.
    public var socketGroup: String?
    /// `--allow-uid` and `--allow-user`: user ids that may connect to the FastCGI socket besides
    /// the worker's own user and root (nginx's worker processes run as nginx's `user`). Every
    /// accepted connection's peer (SO_PEERCRED) is checked before a byte is read from it; any
    /// other peer is closed at once, whatever the socket file's mode lets connect.
    public var allowedPeerUIDs: Set<uid_t> = []
    /// `--receive-timeout`: how long a FastCGI connection may keep a request thread waiting for
    /// the rest of its request (or for room to write its answer) before it is closed. nginx
    /// sends a whole request at once, so only a stuck or hostile peer ever waits this long.
    public var receiveTimeout: TimeAmount = .seconds(5)
    /// `--hub`: the hub's worker socket.
    public var hubSocketPath: String = "/run/herald/hub.sock"
    /// `--heartbeat`: seconds between `: ping` comments on every stream (keep below nginx's `fastcgi_read_timeout`).
    public var heartbeatInterval: TimeAmount = .seconds(15)
    /// `--retry`: the reconnection time sent at stream start, in milliseconds.
    public var retryMilliseconds: Int = 2000
    /// `--cors-origin`: the `Access-Control-Allow-Origin` value.
    public var corsOrigin: String = "*"
    /// `HERALD_PUBLISH_TOKEN`: the bearer token for `POST /publish/…`; HTTP publishing is refused without one.
    /// Check it with ``publishTokenProblem(_:)`` before use.
    public var publishToken: String?
    /// `--private-channels` (channel names, or prefixes ending in `*`) and `HERALD_SUBSCRIBER_KEY`
    /// (the HS256 secret): subscriptions to a private channel need a signed subscriber token.
    /// Built once at startup with `SubscriberTokens(privateChannels:secret:)`; `.disabled` (the
    /// default) leaves every channel open.
    public var subscriberTokens: SubscriberTokens = .disabled
    /// `--max-body`: the largest HTTP publish body, in bytes.
    public var maxBodyBytes: Int = 64 * 1024
    /// `--max-batch-bytes`: the largest `POST /publish` (NDJSON batch) body, in bytes.
    public var maxBatchBytes: Int = 1 << 20
    /// `--max-batch-events`: the most events in one `POST /publish` batch.
    public var maxBatchEvents: Int = PublishBatch.defaultMaxEvents
    /// `--max-publishes-in-flight`: HTTP publishes (single or batch) handed to the hub and not
    /// yet answered; one more is answered `503` with `Retry-After` at once.
    public var maxPublishesInFlight: Int = 1024
    /// `--max-channels-per-stream`: how many channels one stream may ask for.
    public var maxChannelsPerStream: Int = 16
    /// `--max-queued-bytes`: bytes a stream may have waiting to be written before the client is
    /// dropped as too slow (it resumes from history when it reconnects).
    public var maxQueuedBytes: Int = 1 << 20
    /// `--event-loops`: SwiftNIO threads writing the streams (one is best on 2 cores: nginx needs the other).
    public var eventLoops: Int = 1
    /// `--accept-threads`: libfcgi threads reading requests.
    public var acceptThreads: Int = 4
    /// `--poll-timeout`: how long `GET /poll/…` waits for an event before answering with none.
    public var pollTimeout: TimeAmount = .seconds(25)
    /// How long an HTTP publish waits for the hub's answer.
    public var publishTimeout: TimeAmount = .seconds(5)
    /// `--watchdog-file` and systemd's `NOTIFY_SOCKET`/`WATCHDOG_USEC`: the stream loops (the
    /// hub link's among them) prove they turn and only then feed the watchdogs; by default
    /// none is fed.
    public var liveness = LivenessSettings()

    public init() {}

    /// Whether a peer with user id `uid` may use the FastCGI socket: root, the worker's own
    /// user, and ``allowedPeerUIDs``.
    public func allowsPeer(uid: uid_t) -> Bool {
        uid == 0 || uid == geteuid() || allowedPeerUIDs.contains(uid)
    }

    /// What is wrong with these settings, naming the flag to change, or nil when a worker can
    /// start with them. The command's flags map onto the fields and are checked here only.
    public var problem: String? {
        func seconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000_000 }
        if heartbeatInterval < .seconds(1) { return "--heartbeat must be at least 1 second" }
        if !(1...3600).contains(seconds(pollTimeout)) { return "--poll-timeout must be 1 to 3600 seconds" }
        if !(1...3600).contains(seconds(receiveTimeout)) { return "--receive-timeout must be 1 to 3600 seconds" }
        if retryMilliseconds < 0 { return "--retry must not be negative" }
        if maxBodyBytes <= 0 { return "--max-body must be positive" }
        if maxBatchBytes <= 0 { return "--max-batch-bytes must be positive" }
        if !(1...100_000).contains(maxBatchEvents) { return "--max-batch-events must be 1 to 100000" }
        if maxPublishesInFlight <= 0 { return "--max-publishes-in-flight must be positive" }
        if maxQueuedBytes < 4096 { return "--max-queued-bytes must be at least 4096" }
        if !(1...1024).contains(maxChannelsPerStream) { return "--max-channels-per-stream must be 1 to 1024" }
        if !(1...64).contains(eventLoops) { return "--event-loops must be 1 to 64" }
        if !(1...64).contains(acceptThreads) { return "--accept-threads must be 1 to 64" }
        if let publishToken, let problem = Self.publishTokenProblem(publishToken) { return problem }
        return nil
    }

    /// The shortest publish token a worker starts with: 16 characters. Anyone who guesses the
    /// token can publish to every channel, and a worker answers wrong guesses as fast as
    /// nginx sends them; `head -c 32 /dev/urandom | base64` gives 44 characters.
    public static let minimumPublishTokenLength = 16

    /// Why `token` cannot be the publish token (too short, or holding whitespace or control
    /// characters, which an `Authorization` header cannot carry intact), or nil when it can.
    public static func publishTokenProblem(_ token: String) -> String? {
        if token.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return
                "HERALD_PUBLISH_TOKEN holds a space or a control character (a stray newline or quote in the environment file?): a bearer token cannot carry it"
        }
        if token.count < minimumPublishTokenLength {
            return
                "HERALD_PUBLISH_TOKEN is \(token.count) characters long, fewer than the \(minimumPublishTokenLength) required; make one with: head -c 32 /dev/urandom | base64"
        }
        return nil
    }
}
