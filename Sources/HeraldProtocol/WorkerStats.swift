// A worker's figures, as it reports them to the hub and as `heraldctl stats` shows them.

/// One worker's figures at the moment the hub asked.
public struct WorkerStats: Codable, Sendable, Equatable {
    /// The worker's id (`--id`).
    public var id: String
    /// The worker's process id.
    public var pid: Int32
    /// Seconds since the worker started.
    public var uptimeSeconds: Double
    /// Open event streams.
    public var streams: Int
    /// Open event streams per channel (a multi-channel stream counts once per channel).
    public var streamsByChannel: [String: Int]
    /// Long polls (`GET /poll/…`) waiting for an event.
    public var pollsWaiting: Int
    /// HTTP publishes handed to the hub and not yet answered.
    public var publishesInFlight: Int = 0
    /// Events written to streams since start (one per event per stream).
    public var eventsSent: UInt64
    /// Bytes written to streams since start, FastCGI framing included.
    public var bytesSent: UInt64
    /// Streams closed because the client fell too far behind.
    public var slowClientsDropped: UInt64
    /// Streams that fell behind on state changes only and were caught up with a fresh `init`.
    public var slowClientsCaughtUp: UInt64 = 0
    /// The hub link's state: `connecting`, `live` or `backing-off`.
    public var hubLink: String

    public init(
        id: String, pid: Int32, uptimeSeconds: Double, streams: Int, streamsByChannel: [String: Int],
        pollsWaiting: Int = 0, publishesInFlight: Int = 0,
        eventsSent: UInt64, bytesSent: UInt64, slowClientsDropped: UInt64, hubLink: String
    ) {
        self.id = id
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.streams = streams
        self.streamsByChannel = streamsByChannel
        self.pollsWaiting = pollsWaiting
        self.publishesInFlight = publishesInFlight
        self.eventsSent = eventsSent
        self.bytesSent = bytesSent
        self.slowClientsDropped = slowClientsDropped
        self.hubLink = hubLink
    }
}

/// The hub's own figures plus every worker's, as `stats --json` prints them.
public struct HubStats: Codable, Sendable, Equatable {
    /// The hub's epoch.
    public var epoch: String
    /// The last sequence number assigned.
    public var sequence: UInt64
    /// Channels that have had at least one event.
    public var channels: Int
    /// Events accepted since the hub started.
    public var eventsPublished: UInt64
    /// Tail followers (`heraldctl tail`) closed because they stopped reading.
    public var tailFollowersDropped: UInt64
    /// Idempotency keys the hub remembers now (on one machine; cluster mode keeps them in the database).
    public var idempotencyKeys: Int = 0
    /// Publishes answered as repeats of earlier ones, because their idempotency keys were known.
    public var idempotentRepeats: UInt64 = 0
    /// Keys forgotten before their window ended, because of `--max-idempotency-keys` or `--max-idempotency-bytes`.
    public var idempotencyKeysEvictedEarly: UInt64 = 0
    /// Seconds since the hub started.
    public var uptimeSeconds: Double
    /// Open streams over all workers that answered.
    public var streams: Int
    /// The connected workers' figures (those that answered in time).
    public var workers: [WorkerStats]
    /// Cluster mode's figures; absent on a single machine.
    public var cluster: ClusterStats?
    /// The occupancy webhooks' figures; absent without `--webhook`.
    public var webhooks: WebhookStats?
    /// The channels that get series of their own in `/metrics`: channels the hub knows (they
    /// have had events), the most subscribed first, at most the hub's `--metrics-channels`.
    /// Streams on any other channel (subscribers choose names freely) are summed, so the
    /// number of series stays bounded. Made by ``HubStats/metricChannels(subscribers:known:limit:)``.
    public var metricChannels: [String] = []

    public init(
        epoch: String, sequence: UInt64, channels: Int, eventsPublished: UInt64, tailFollowersDropped: UInt64 = 0,
        uptimeSeconds: Double, streams: Int, workers: [WorkerStats]
    ) {
        self.epoch = epoch
        self.sequence = sequence
        self.channels = channels
        self.eventsPublished = eventsPublished
        self.tailFollowersDropped = tailFollowersDropped
        self.uptimeSeconds = uptimeSeconds
        self.streams = streams
        self.workers = workers
    }
}

extension HubStats {
    /// The channels for ``metricChannels``: those `known` holds with at least one subscriber
    /// in `subscribers`, by subscribers (most first, then by name), at most `limit`.
    public static func metricChannels(subscribers: [String: Int], known: (String) -> Bool, limit: Int) -> [String] {
        guard limit > 0 else { return [] }
        let ranked = subscribers.filter { $0.value > 0 && known($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return ranked.prefix(limit).map(\.key)
    }
}

/// A hub's occupancy webhooks (`--webhook`), as `stats` shows them.
public struct WebhookStats: Codable, Sendable, Equatable {
    /// Notices a receiver answered with a 2xx status (each receiver counts).
    public var delivered: UInt64
    /// POSTs that failed (an error, a timeout or another status) and were retried.
    public var failedAttempts: UInt64
    /// Notices dropped because a receiver's queue was full.
    public var dropped: UInt64
    /// Notices waiting now, over every receiver.
    public var queued: Int
    /// Whether this hub sends the notices (in cluster mode one hub does, for all).
    public var sending: Bool

    public init(delivered: UInt64, failedAttempts: UInt64, dropped: UInt64, queued: Int, sending: Bool) {
        self.delivered = delivered
        self.failedAttempts = failedAttempts
        self.dropped = dropped
        self.queued = queued
        self.sending = sending
    }
}

/// A hub's view of the cluster's shared log (`--cluster`), as `stats` shows it.
public struct ClusterStats: Codable, Sendable, Equatable {
    /// The database, without its password.
    public var database: String
    /// Whether the hub's reading connection (LISTEN) is up.
    public var connected: Bool
    /// The last sequence this hub has read from the log and delivered to its workers.
    public var lastSequenceRead: UInt64
    /// The log's last committed sequence, when the hub last looked.
    public var headSequence: UInt64
    /// Events up to this sequence have been pruned from the log.
    public var prunedThrough: UInt64
    /// Publishes waiting for the database.
    public var publishQueue: Int
    /// Times the reading connection was lost and made again.
    public var reconnects: UInt64
    /// Seconds since the connection was lost (absent while connected).
    public var disconnectedSeconds: Double?
    /// The last database error, if any.
    public var lastError: String?

    public init(
        database: String, connected: Bool, lastSequenceRead: UInt64, headSequence: UInt64, prunedThrough: UInt64,
        publishQueue: Int, reconnects: UInt64, disconnectedSeconds: Double?, lastError: String?
    ) {
        self.database = database
        self.connected = connected
        self.lastSequenceRead = lastSequenceRead
        self.headSequence = headSequence
        self.prunedThrough = prunedThrough
        self.publishQueue = publishQueue
        self.reconnects = reconnects
        self.disconnectedSeconds = disconnectedSeconds
        self.lastError = lastError
    }
}

/// Who is subscribed to a channel right now: `GET /channels/<channel>` answers it as JSON
/// (`{"channel":…,"lastEventId":…,"subscribers":N}`), and `heraldctl channels` lists it.
public struct ChannelPresence: Codable, Sendable, Equatable {
    /// The channel's name.
    public var channel: String
    /// Open streams on the channel, over every worker of this hub.
    public var subscribers: Int
    /// The id of the channel's last event; for a channel without events, the id its `init`
    /// carries (sequence 0 of the epoch).
    public var lastEventId: String

    /// A channel's presence.
    public init(channel: String, subscribers: Int, lastEventId: String) {
        self.channel = channel
        self.subscribers = subscribers
        self.lastEventId = lastEventId
    }
}
