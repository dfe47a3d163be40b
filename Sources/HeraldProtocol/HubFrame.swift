// The messages of the hub ⇄ worker link, as values. Their byte layout is in HubFrameCodec.swift.

/// One event as the hub ordered it.
public struct HubEvent: Sendable, Equatable {
    /// The global sequence number the hub assigned.
    public var sequence: UInt64
    /// The channel the event belongs to.
    public var channel: String
    /// The SSE event type (`delta` unless the publisher named another; `init` when the state was replaced).
    public var name: String
    /// The payload, sent to clients as the SSE data.
    public var data: String

    public init(sequence: UInt64, channel: String, name: String, data: String) {
        self.sequence = sequence
        self.channel = channel
        self.name = name
        self.data = data
    }
}

/// A publish as a worker forwards it from HTTP, or as the admin socket receives it.
public struct PublishRequest: Sendable, Equatable {
    /// The target channel (validated by the hub).
    public var channel: String
    /// The SSE event type; `delta` by default.
    public var name: String
    /// The payload.
    public var data: String
    /// When true, `data` is a JSON merge patch (RFC 7386) applied to the channel's state.
    public var merge: Bool
    /// When true, `data` is the channel's new state (`PUT /state/<channel>`, `state set`): it
    /// reaches clients as the merge patch from the old state, or as `init`; `name` is unused.
    public var replace: Bool = false
    /// The publisher's idempotency key (`Idempotency-Key`, a batch line's `key`): a publish
    /// with a key the hub remembers is not published again; it is answered with the first
    /// event's id, marked as a repeat.
    public var key: String?

    public init(channel: String, name: String = "delta", data: String, merge: Bool = false, key: String? = nil) {
        self.channel = channel
        self.name = name
        self.data = data
        self.merge = merge
        self.key = key
    }
}

/// An event of a publish that was not published again, because its idempotency key names an
/// event published before.
public struct PublishRepeat: Sendable, Equatable {
    /// Its position in the publish (0 for a single event; the line minus one in a batch).
    public var index: Int
    /// The sequence of the event first published with its key.
    public var sequence: UInt64

    public init(index: Int, sequence: UInt64) {
        self.index = index
        self.sequence = sequence
    }
}

/// The hub's answer to a publish.
public enum PublishResult: Sendable, Equatable {
    /// Accepted and ordered as this sequence number (for a batch: its first event's; the
    /// others follow on consecutively). `repeats` are the events not published again because
    /// of their idempotency keys, with their first sequences; the new events (if any) take
    /// the consecutive numbers from `sequence` in order.
    case accepted(sequence: UInt64, repeats: [PublishRepeat] = [])
    /// Refused; the message says why, in words for the publisher.
    case refused(String)
    /// Not published because something the hub needs is away (the cluster's database); worth
    /// trying again shortly. The message says what.
    case unavailable(String)
    /// The hub cannot tell whether it was published (the cluster database failed during
    /// COMMIT). The message says so; a publisher that retries should use an idempotency key.
    case uncertain(String)
}

extension PublishResult {
    /// The sequence of each of the `count` events of an accepted publish, in order: a repeat's
    /// first sequence, or the next consecutive new one. Nil for any other outcome.
    public func sequences(count: Int) -> [UInt64]? {
        guard case .accepted(let first, let repeats) = self else { return nil }
        var repeated: [Int: UInt64] = [:]
        for item in repeats { repeated[item.index] = item.sequence }
        var next = first
        return (0..<count).map { index in
            if let sequence = repeated[index] { return sequence }
            defer { next += 1 }
            return next
        }
    }
}

/// A channel's starting point for a new subscriber: its state as of the reply's sequence.
public struct ChannelSnapshot: Sendable, Equatable {
    /// The channel.
    public var channel: String
    /// The channel's state (a JSON document) as of the reply's sequence.
    public var state: String

    public init(channel: String, state: String) {
        self.channel = channel
        self.state = state
    }
}

/// How many open streams a channel has (on one worker, or over all of them).
public struct ChannelCount: Sendable, Equatable {
    /// The channel.
    public var channel: String
    /// Open streams on it.
    public var subscribers: Int

    public init(channel: String, subscribers: Int) {
        self.channel = channel
        self.subscribers = subscribers
    }
}

/// Every frame of the hub link. Worker-to-hub and hub-to-worker frames share one numbering.
public enum HubFrame: Sendable, Equatable {
    /// Worker → hub, first frame: who it is and the last sequence of `epoch` it delivered (0: none).
    case hello(version: UInt16, workerID: String, epoch: String, lastSequence: UInt64)
    /// Hub → worker, answer to `hello`: the hub's epoch and current sequence. Missed events
    /// follow as `event` frames; with `resnapshot` the hub cannot replay them (history lost or
    /// too old), and the worker must subscribe its streams again.
    case welcome(epoch: String, sequence: UInt64, resnapshot: Bool)
    /// Worker → hub: a new stream wants these channels, resuming after `resumeAfter` (0: fresh).
    case subscribe(request: UInt64, channels: [String], resumeAfter: UInt64)
    /// Hub → worker, answer to `subscribe`, ordered among the events: `replay` holds the missed
    /// events (ascending), `snapshots` the channels that start from their state as of `sequence`.
    case subscribed(request: UInt64, sequence: UInt64, replay: [HubEvent], snapshots: [ChannelSnapshot])
    /// Hub → worker: one event, in sequence order.
    case event(HubEvent)
    /// Hub → worker: one event that changed its channel's state (a merge patch or a
    /// replacement), in sequence order with the others: a stream that fell behind on such
    /// events alone can be caught up with a fresh `init`.
    case stateEvent(HubEvent)
    /// Worker → hub: publish on behalf of an HTTP client: one event, or a batch that is
    /// published whole (consecutive sequence numbers) or not at all.
    case publish(request: UInt64, [PublishRequest])
    /// Hub → worker: answer to `publish`; `accepted` carries the first event's sequence.
    case published(request: UInt64, PublishResult)
    /// Hub → worker: report your figures.
    case statsRequest(request: UInt64)
    /// Worker → hub: the worker's figures as a JSON object.
    case statsReply(request: UInt64, json: String)
    /// Worker → hub: send the figures of the hub and of every worker (for `GET /metrics`).
    case hubStatsRequest(request: UInt64)
    /// Hub → worker: answer to `hubStatsRequest`, a `HubStats` as JSON.
    case hubStatsReply(request: UInt64, json: String)
    /// Worker → hub: who is subscribed to `channel` over all workers, and its last event (for
    /// `GET /channels/<channel>`).
    case presenceRequest(request: UInt64, channel: String)
    /// Hub → worker: answer to `presenceRequest`, a `ChannelPresence` as JSON.
    case presenceReply(request: UInt64, json: String)
    /// Worker → hub: this worker's open streams on each listed channel now (0: none left).
    /// Sent for the channels that changed, and for every channel with streams once the link
    /// is live, always before the subscriptions that follow it (presence, occupancy webhooks).
    case occupancy([ChannelCount])
    /// Hub → worker: end every stream with `retry` of `retryMilliseconds` plus up to
    /// `jitterMilliseconds`, so clients reconnect spread out (to another worker).
    case drain(retryMilliseconds: UInt32, jitterMilliseconds: UInt32)
    /// Hub → worker: refused or malformed input; the link is closed after it.
    case failure(message: String)

    /// The link protocol version a worker announces in `hello`.
    public static let protocolVersion: UInt16 = 4
}
