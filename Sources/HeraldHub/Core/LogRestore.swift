// What a log hands the core to start from, in both modes: the journal's snapshot and the
// records after it, or the cluster's snapshot of its database. HubState is built from it in
// one place, so a hub restarted from its journal and one loaded from the cluster start alike.
import HeraldProtocol

/// The data a hub starts from.
struct LogRestore: Sendable {
    struct Channel: Sendable {
        var name: String
        /// The state's text as of `visibleSequence`.
        var state: String
        /// The sequence of the channel's last event.
        var visibleSequence: UInt64
        /// The channel's newest event not in `history` (0: none was dropped).
        var lastDropped: UInt64 = 0
    }

    var epoch: Epoch
    /// The last sequence given out (past the records, after numbers a power loss may have taken).
    var sequence: UInt64
    var channels: [Channel] = []
    /// Recent events the channel states already include, ascending.
    var history: [HubEvent] = []
    /// Events up to here are not in `history`.
    var lastDropped: UInt64 = 0
    /// Resume ids up to this sequence are unknown (numbers lost to a power loss); 0 if none.
    var lostThrough: UInt64 = 0
    /// The idempotency keys remembered, oldest first; nil when the hub's state keeps none (the
    /// cluster's database keeps them).
    var keys: [IdempotencyEntry]? = []
    /// Records after `history` the states do not include yet, in order: applied on top.
    var replay: [JournalRecord] = []
}

extension HubState {
    /// The state `restore` describes, with the bounds of this hub's history and key window.
    init(restoring restore: LogRestore, history: HistoryRing, maxEventBytes: Int, keys: IdempotencyWindow) {
        let window =
            restore.keys == nil ? IdempotencyWindow(windowMilliseconds: 0, maximumKeys: 1, maximumBytes: 1) : keys
        self.init(epoch: restore.epoch, history: history, maxEventBytes: maxEventBytes, keys: window)
        for entry in restore.keys ?? [] { self.keys.insert(entry) }
        var droppedByChannel: [String: UInt64] = [:]
        for channel in restore.channels {
            let value = (try? JSONValue(parsing: channel.state)) ?? .object(JSONObject())
            channels[channel.name] = ChannelState(
                state: value, visibleState: channel.state, visibleSequence: channel.visibleSequence)
            if channel.lastDropped > 0 { droppedByChannel[channel.name] = channel.lastDropped }
        }
        self.history.restore(lastDropped: restore.lastDropped, lastDroppedByChannel: droppedByChannel)
        for event in restore.history { self.history.append(event) }
        for record in restore.replay {
            apply(record)
            makeVisible(
                record, stateText: record.kind == .message ? nil : channels[record.event.channel]?.state.serialized)
        }
        // Numbers a power loss may have taken after clients saw them: never reused, and resume
        // ids among them are unknown.
        if restore.lostThrough > 0 { self.history.markLost(through: restore.lostThrough) }
        sequence = max(sequence, restore.sequence)
    }
}
