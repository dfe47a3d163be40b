// The hub's data as a value: epoch, sequence, every channel's state, recent history. Turning a
// publish into a journal record and applying a record are pure steps, shared by the live path
// and by journal recovery, so a restarted hub rebuilds exactly what it had.
import HeraldProtocol

/// What a journal record does to its channel's state.
enum RecordKind: UInt8, Sendable {
    /// A plain event: the state is unchanged.
    case message = 1
    /// The data is a JSON merge patch applied to the state.
    case merge = 2
    /// The data replaces the state (sent to clients as `init`).
    case set = 3
}

/// One ordered change: what the journal stores and what workers receive.
struct JournalRecord: Sendable, Equatable {
    var kind: RecordKind
    var event: HubEvent
    /// The publisher's idempotency key (kept for `--idempotency-window`), if it sent one.
    var key: String? = nil
    /// When the hub accepted a keyed event, in milliseconds since 1970 (0 without a key).
    var acceptedAt: UInt64 = 0
}

/// A publish checked and turned into records, not applied yet.
struct PreparedPublish {
    /// The new records in order, each with the channel state it leads to.
    var records: [(JournalRecord, JSONValue?)]
    /// The events not published again because their keys name earlier events.
    var repeats: [PublishRepeat] = []
}

/// One channel's state.
struct ChannelState: Sendable {
    /// The state including every written event.
    var state: JSONValue = .object(JSONObject())
    /// The state's text as of `visibleSequence` (what a new subscriber gets).
    var visibleState: String = "{}"
    /// The sequence of the channel's last visible event.
    var visibleSequence: UInt64 = 0
}

/// The hub's data, without any I/O.
struct HubState {
    var epoch: Epoch
    /// The last sequence assigned (visible or not).
    var sequence: UInt64 = 0
    var channels: [String: ChannelState] = [:]
    var history: HistoryRing
    /// The idempotency keys of the last `--idempotency-window` (on one machine; in cluster
    /// mode the database keeps them).
    var keys: IdempotencyWindow
    let maxEventBytes: Int

    init(epoch: Epoch, history: HistoryRing, maxEventBytes: Int, keys: IdempotencyWindow) {
        self.epoch = epoch
        self.history = history
        self.maxEventBytes = maxEventBytes
        self.keys = keys
    }

    /// Checks a publish and turns it into the next record, with the channel state it leads to.
    /// Nothing changes until `apply` is called with the record.
    func prepare(_ request: PublishRequest, now: UInt64 = 0) -> Result<PreparedPublish, PublishRefusal> {
        prepare([request], now: now)
    }

    /// Checks a batch and turns it into consecutive records, each with the channel state it
    /// leads to (a merge sees the merges before it in the batch). All or nothing: one refused
    /// event refuses the batch, its message naming the line (1-based) when there are several.
    /// An event whose idempotency key names an event accepted within the window before `now`
    /// (wall-clock milliseconds) becomes a repeat, not a record. Nothing changes until `apply`
    /// is called with each record, in order.
    func prepare(_ requests: [PublishRequest], now: UInt64 = 0) -> Result<PreparedPublish, PublishRefusal> {
        var prepared: [(JournalRecord, JSONValue?)] = []
        prepared.reserveCapacity(requests.count)
        var repeats: [PublishRepeat] = []
        var merged: [String: JSONValue] = [:]
        if let refusal = PublishCheck.repeatedKeys(requests) { return .failure(refusal) }
        for (index, request) in requests.enumerated() {
            let patch: JSONValue?
            switch PublishCheck.publish(request, maxEventBytes: maxEventBytes) {
            case .failure(let refusal): return .failure(refusal.onLine(index + 1, of: requests.count))
            case .success(let checked): patch = checked
            }
            if let key = request.key, let first = keys.sequence(for: key, now: now) {
                repeats.append(PublishRepeat(index: index, sequence: first))
                continue
            }
            var kind = RecordKind.message
            var newState: JSONValue?
            var name = request.name
            var data = request.data
            if request.replace, let value = patch {
                // A replacement: the merge patch from the state so far, where one can say it.
                if let refusal = sizeRefusal(value) { return .failure(refusal.onLine(index + 1, of: requests.count)) }
                let current = merged[request.channel] ?? channels[request.channel]?.state ?? .object(JSONObject())
                (kind, name, data) = Self.replacement(of: current, by: value)
                merged[request.channel] = value
                newState = value
            } else if let patch {
                let current = merged[request.channel] ?? channels[request.channel]?.state ?? .object(JSONObject())
                let state = current.merging(patch: patch)
                if let refusal = sizeRefusal(state) { return .failure(refusal.onLine(index + 1, of: requests.count)) }
                merged[request.channel] = state
                kind = .merge
                newState = state
            }
            let event = HubEvent(
                sequence: sequence + UInt64(prepared.count) + 1, channel: request.channel, name: name, data: data)
            prepared.append(
                (JournalRecord(kind: kind, event: event, key: request.key, acceptedAt: request.key == nil ? 0 : now), newState))
        }
        return .success(PreparedPublish(records: prepared, repeats: repeats))
    }

    /// Checks a state replacement and turns it into the next record: a `delta` whose data is
    /// the merge patch from the channel's state to the new one (connected clients merge it, as
    /// any delta), or, where no merge patch can say it (a `null` member in the new state, an
    /// object's members reordered), a replacement sent as `init`. Either record leads to the new
    /// state exactly, live and when the journal is read again.
    func prepareSet(channel: String, json: String) -> Result<PreparedPublish, PublishRefusal> {
        let value: JSONValue
        switch PublishCheck.stateReplacement(channel: channel, json: json) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let checked): value = checked
        }
        if let refusal = sizeRefusal(value) { return .failure(refusal) }
        let (kind, name, data) = Self.replacement(of: channels[channel]?.state ?? .object(JSONObject()), by: value)
        let event = HubEvent(sequence: sequence + 1, channel: channel, name: name, data: data)
        return .success(PreparedPublish(records: [(JournalRecord(kind: kind, event: event), value)]))
    }

    /// The record that replaces `current` by `value`: a merge named `delta` carrying the merge
    /// patch between them, or where none can say it a set named `init` carrying `value`.
    private static func replacement(of current: JSONValue, by value: JSONValue) -> (RecordKind, String, String) {
        if let patch = JSONValue.mergePatch(from: current, to: value) { return (.merge, "delta", patch.serialized) }
        return (.set, "init", value.serialized)
    }

    private func sizeRefusal(_ state: JSONValue) -> PublishRefusal? {
        PublishCheck.stateSize(state, maxEventBytes: maxEventBytes)
    }

    /// Applies a record: the sequence advances and the channel's state follows. `newState`
    /// is the state `prepare` computed; recovery passes nil and it is computed here.
    mutating func apply(_ record: JournalRecord, newState: JSONValue? = nil) {
        sequence = record.event.sequence
        var channel = channels[record.event.channel] ?? ChannelState()
        switch record.kind {
        case .message:
            break
        case .merge:
            channel.state =
                newState ?? (try? JSONValue(parsing: record.event.data)).map { channel.state.merging(patch: $0) }
                ?? channel.state
        case .set:
            channel.state = newState ?? (try? JSONValue(parsing: record.event.data)) ?? channel.state
        }
        channels[record.event.channel] = channel
        if let key = record.key {
            keys.insert(IdempotencyEntry(key: key, sequence: record.event.sequence, acceptedAt: record.acceptedAt))
        }
    }

    /// Marks a record visible: subscribers from now on start after it.
    mutating func makeVisible(_ record: JournalRecord, stateText: String?) {
        var channel = channels[record.event.channel] ?? ChannelState()
        if let stateText { channel.visibleState = stateText }
        channel.visibleSequence = record.event.sequence
        channels[record.event.channel] = channel
        history.append(record.event)
    }
}

/// Why a publish was refused, in words for the publisher.
struct PublishRefusal: Error {
    let message: String
    init(_ message: String) { self.message = message }

    /// The refusal of event `line` of a batch of `count` (a single publish keeps its words).
    func onLine(_ line: Int, of count: Int) -> PublishRefusal {
        count > 1 ? PublishRefusal(PublishBatch.Refusal(line: line, message: message).description) : self
    }
}

/// The checks a publish or a state replacement passes before it is ordered, whether one hub
/// orders it or the cluster database does: the same rules and messages in both modes.
enum PublishCheck {
    /// Checks a publish; for a merge, returns its parsed patch (nil for a plain event).
    static func publish(_ request: PublishRequest, maxEventBytes: Int) -> Result<JSONValue?, PublishRefusal> {
        if let refusal = PublishRules.refusal(for: request, maxDataBytes: maxEventBytes) {
            return .failure(PublishRefusal(refusal))
        }
        if request.replace {
            return stateReplacement(channel: request.channel, json: request.data).map { $0 }
        }
        guard request.merge else { return .success(nil) }
        let patch: JSONValue
        do {
            patch = try JSONValue(parsing: request.data)
        } catch {
            return .failure(PublishRefusal("merge data must be a JSON object: \(error)"))
        }
        guard case .object = patch else {
            return .failure(PublishRefusal("merge data must be a JSON object (RFC 7386 merge patch)"))
        }
        return .success(patch)
    }

    /// Refuses a batch in which two events carry the same idempotency key.
    static func repeatedKeys(_ requests: [PublishRequest]) -> PublishRefusal? {
        PublishBatch.repeatedKey(in: requests).map { PublishRefusal($0.description) }
    }

    /// Refuses a channel state whose JSON text would exceed `maxEventBytes` (after a merge, or
    /// as a replacement).
    static func stateSize(_ state: JSONValue, maxEventBytes: Int) -> PublishRefusal? {
        let size = state.serialized.utf8.count
        guard size > maxEventBytes else { return nil }
        return PublishRefusal("the channel state would be \(size) bytes, over the limit of \(maxEventBytes)")
    }

    /// Checks a state replacement's channel name and document; returns the document parsed.
    static func stateReplacement(channel: String, json: String) -> Result<JSONValue, PublishRefusal> {
        do {
            _ = try ChannelName(validating: channel)
        } catch {
            return .failure(PublishRefusal(error.description))
        }
        do {
            return .success(try JSONValue(parsing: json))
        } catch {
            return .failure(PublishRefusal("the state must be a JSON document: \(error)"))
        }
    }
}
