// The hub's data as a value: what a publish or a state replacement may be, the record each
// becomes, and that applying records live or during recovery gives the same state.
import HeraldProtocol
import Testing

@testable import HeraldHub

/// A fresh hub state with events of at most `maxEventBytes` bytes.
private func hubState(maxEventBytes: Int = 64) -> HubState {
    HubState(
        epoch: Epoch("abc")!, history: HistoryRing(maximumEvents: 100, maximumBytes: 1 << 20),
        maxEventBytes: maxEventBytes,
        keys: IdempotencyWindow(windowMilliseconds: 600_000, maximumKeys: 1000, maximumBytes: 1 << 20))
}

/// The channel rule as `ChannelNameError` words it.
private let channelRule = "channel names are 1 to 64 characters from A-Z a-z 0-9 _ - ."

extension Result {
    /// The failure, or nil on success.
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    /// The success value, or nil on failure.
    fileprivate var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}

@Suite("Hub state")
struct HubStateTests {
    // MARK: prepare

    static let refusals: [(PublishRequest, String)] = [
        (
            PublishRequest(channel: "bad name", data: "1"),
            "invalid channel name: U+0020 is not allowed (\(channelRule))"
        ),
        (PublishRequest(channel: "", data: "1"), "invalid channel name: empty (\(channelRule))"),
        (PublishRequest(channel: "a/b", data: "1"), "invalid channel name: '/' is not allowed (\(channelRule))"),
        (
            PublishRequest(channel: String(repeating: "c", count: 65), data: "1"),
            "invalid channel name: 65 bytes long (\(channelRule))"
        ),
        (PublishRequest(channel: "a", name: "", data: "1"), "invalid event name: 1 to 64 bytes"),
        (
            PublishRequest(channel: "a", name: String(repeating: "n", count: 65), data: "1"),
            "invalid event name: 1 to 64 bytes"
        ),
        (
            PublishRequest(channel: "a", name: "init", data: "1"),
            "invalid event name: init is reserved for state snapshots (use state set)"
        ),
        (PublishRequest(channel: "a", name: "a\rb", data: "1"), "invalid event name: CR, LF and NUL are not allowed"),
        (PublishRequest(channel: "a", name: "a\nb", data: "1"), "invalid event name: CR, LF and NUL are not allowed"),
        (PublishRequest(channel: "a", name: "a\0b", data: "1"), "invalid event name: CR, LF and NUL are not allowed"),
        (
            PublishRequest(channel: "a", data: String(repeating: "x", count: 65)),
            "event data of 65 bytes exceeds the limit of 64"
        ),
        (
            PublishRequest(channel: "a", data: "oops", merge: true),
            "merge data must be a JSON object: invalid JSON at byte 0: unexpected character"
        ),
        (
            PublishRequest(channel: "a", data: "{\"a\":1,}", merge: true),
            "merge data must be a JSON object: invalid JSON at byte 7: expected a member name"
        ),
        (
            PublishRequest(channel: "a", data: "[1]", merge: true),
            "merge data must be a JSON object (RFC 7386 merge patch)"
        ),
        (
            PublishRequest(channel: "a", data: "\"text\"", merge: true),
            "merge data must be a JSON object (RFC 7386 merge patch)"
        ),
        (
            PublishRequest(channel: "a", data: "null", merge: true),
            "merge data must be a JSON object (RFC 7386 merge patch)"
        ),
    ]

    @Test("refuses a bad publish with a message for the publisher", arguments: refusals)
    func refusesPublish(_ request: PublishRequest, _ message: String) {
        let state = hubState()
        #expect(state.prepare(request).failure?.message == message)
    }

    @Test("accepts data of exactly maxEventBytes and an event name of 64 bytes")
    func acceptsLimits() {
        let state = hubState()
        let request = PublishRequest(
            channel: String(repeating: "c", count: 64), name: String(repeating: "n", count: 64),
            data: String(repeating: "x", count: 64))
        #expect(state.prepare(request).success?.records[0].0.event.sequence == 1)
    }

    @Test("refuses a merge whose resulting state would be over the size limit")
    func refusesOversizeMergedState() {
        var state = hubState()
        let first = "{\"a\":\"\(String(repeating: "a", count: 30))\"}"  // 38 bytes
        let (record, newState) = state.prepare(PublishRequest(channel: "c", data: first, merge: true)).success!.records[0]
        state.apply(record, newState: newState)
        let second = "{\"b\":\"\(String(repeating: "b", count: 30))\"}"  // 38 bytes: fits alone, not merged
        let refusal = state.prepare(PublishRequest(channel: "c", data: second, merge: true)).failure
        #expect(refusal?.message == "the channel state would be 75 bytes, over the limit of 64")
        // The same patch on another, empty channel is fine.
        #expect(state.prepare(PublishRequest(channel: "d", data: second, merge: true)).success != nil)
    }

    @Test("prepare changes nothing, whether it accepts or refuses")
    func prepareDoesNotMutate() {
        var state = hubState()
        let (record, newState) = state.prepare(PublishRequest(channel: "c", data: "{\"a\":1}", merge: true)).success!.records[0]
        state.apply(record, newState: newState)
        state.makeVisible(record, stateText: newState?.serialized)

        _ = state.prepare(PublishRequest(channel: "c", data: "{\"a\":2}", merge: true))
        _ = state.prepare(PublishRequest(channel: "c", data: "[2]", merge: true))
        _ = state.prepare(PublishRequest(channel: "new", data: "{\"b\":2}", merge: true))
        _ = state.prepare(PublishRequest(channel: "c", data: "plain"))
        _ = state.prepareSet(channel: "c", json: "{\"z\":0}")
        _ = state.prepareSet(channel: "c", json: "{")

        #expect(state.sequence == 1)
        #expect(Array(state.channels.keys) == ["c"])
        #expect(state.channels["c"]?.state.serialized == "{\"a\":1}")
        #expect(state.channels["c"]?.visibleState == "{\"a\":1}")
        #expect(state.channels["c"]?.visibleSequence == 1)
        #expect(state.history.events.map(\.sequence) == [1])
    }

    @Test("turns a plain publish into a message record with the next sequence and no new state")
    func preparesMessage() {
        var state = hubState()
        state.sequence = 41
        let (record, newState) = state.prepare(PublishRequest(channel: "c", name: "booked", data: "x\ny")).success!.records[0]
        #expect(record == JournalRecord(kind: .message, event: hubEvent(42, "c", name: "booked", data: "x\ny")))
        #expect(newState == nil)
    }

    @Test("turns a merge publish into a merge record with the merged state; the data stays as sent")
    func preparesMerge() throws {
        var state = hubState()
        state.apply(JournalRecord(kind: .set, event: hubEvent(1, "c", name: "init", data: "{\"a\":1,\"b\":2}")))
        let data = "{ \"a\" : null, \"c\" : 3 }"
        let (record, newState) = state.prepare(PublishRequest(channel: "c", data: data, merge: true)).success!.records[0]
        #expect(record == JournalRecord(kind: .merge, event: hubEvent(2, "c", name: "delta", data: data)))
        #expect(newState?.serialized == "{\"b\":2,\"c\":3}")
    }

    @Test("merges onto an empty object when the channel has no state yet")
    func mergeOntoNewChannel() {
        let state = hubState()
        let (_, newState) = state.prepare(PublishRequest(channel: "n", data: "{\"a\":{\"b\":null}}", merge: true))
            .success!.records[0]
        #expect(newState?.serialized == "{\"a\":{}}")
    }

    // MARK: prepareSet

    @Test("turns a state replacement into a delta: the merge patch from the old state, compacted")
    func preparesSetAsDelta() {
        var state = hubState()
        state.sequence = 9
        let (first, value) = state.prepareSet(channel: "c", json: " { \"b\" : [ 1 , 2 ] , \"a\" : 1.10 } ").success!.records[0]
        // From the empty state: the whole document is the patch.
        #expect(
            first
                == JournalRecord(kind: .merge, event: hubEvent(10, "c", name: "delta", data: "{\"b\":[1,2],\"a\":1.10}")))
        #expect(value?.serialized == "{\"b\":[1,2],\"a\":1.10}")
        state.apply(first, newState: value)
        let (second, next) = state.prepareSet(channel: "c", json: "{\"b\":[1,2],\"a\":2,\"c\":\"new\"}").success!.records[0]
        #expect(
            second == JournalRecord(kind: .merge, event: hubEvent(11, "c", name: "delta", data: "{\"a\":2,\"c\":\"new\"}")))
        #expect(next?.serialized == "{\"b\":[1,2],\"a\":2,\"c\":\"new\"}")
    }

    @Test("a replacement in a publish (PUT /state) is the merge patch from the state so far in the batch")
    func replacementInABatch() throws {
        var state = hubState()
        var first = PublishRequest(channel: "c", data: "{\"a\":1}")
        first.replace = true
        var second = PublishRequest(channel: "c", data: "{\"a\":2,\"b\":null}")
        second.replace = true
        var third = PublishRequest(channel: "c", data: "{\"a\":2}")
        third.replace = true
        let records = try #require(state.prepare([first, second, third]).success?.records)
        #expect(records.map(\.0.kind) == [.merge, .set, .merge])
        #expect(records.map(\.0.event.name) == ["delta", "init", "delta"])
        #expect(records.map(\.0.event.data) == ["{\"a\":1}", "{\"a\":2,\"b\":null}", "{\"b\":null}"])
        for (record, newState) in records { state.apply(record, newState: newState) }
        #expect(state.channels["c"]?.state.serialized == "{\"a\":2}")
        var bad = PublishRequest(channel: "c", data: "{")
        bad.replace = true
        #expect(state.prepare(bad).failure?.message.hasPrefix("the state must be a JSON document") == true)
    }

    @Test(
        "a state replacement no merge patch can express (a null member, members reordered) is a set record named init",
        arguments: ["{\"b\":null}", "{\"a\":1,\"b\":{\"c\":null}}", "{\"b\":2,\"a\":1}"])
    func preparesSetAsInit(_ json: String) throws {
        var state = hubState()
        let (first, value) = state.prepareSet(channel: "c", json: "{\"a\":1,\"b\":2}").success!.records[0]
        state.apply(first, newState: value)
        let (record, newState) = try #require(state.prepareSet(channel: "c", json: json).success?.records[0])
        #expect(record.kind == .set)
        #expect(record.event.name == "init")
        #expect(record.event.data == json)
        #expect(newState?.serialized == json)
    }

    @Test(
        "accepts a scalar JSON document as a channel's state", arguments: ["42", "\"text\"", "null", "[1,2]", "true"])
    func setsScalar(_ json: String) {
        var state = hubState()
        let (record, value) = state.prepareSet(channel: "c", json: json).success!.records[0]
        #expect(record.event.data == json)
        state.apply(record, newState: value)
        #expect(state.channels["c"]?.state.serialized == json)
    }

    static let setRefusals: [(String, String, String)] = [
        ("c", "{", "the state must be a JSON document: invalid JSON at byte 1: expected a member name"),
        ("c", "", "the state must be a JSON document: invalid JSON at byte 0: unexpected end of text"),
        ("c", "{} {}", "the state must be a JSON document: invalid JSON at byte 3: unexpected text after the value"),
        ("c d", "{}", "invalid channel name: U+0020 is not allowed (\(channelRule))"),
        ("", "{}", "invalid channel name: empty (\(channelRule))"),
        (
            "c", "\"\(String(repeating: "s", count: 63))\"",
            "the channel state would be 65 bytes, over the limit of 64"
        ),
    ]

    @Test("refuses a state replacement that is not JSON, too large, or for a bad channel", arguments: setRefusals)
    func refusesSet(_ channel: String, _ json: String, _ message: String) {
        #expect(hubState().prepareSet(channel: channel, json: json).failure?.message == message)
    }

    // MARK: apply

    @Test("applying a message advances the sequence and leaves the state alone")
    func appliesMessage() {
        var state = hubState()
        state.apply(JournalRecord(kind: .set, event: hubEvent(1, "c", name: "init", data: "{\"a\":1}")))
        state.apply(JournalRecord(kind: .message, event: hubEvent(2, "c", data: "{\"a\":2}")))
        #expect(state.sequence == 2)
        #expect(state.channels["c"]?.state.serialized == "{\"a\":1}")
    }

    @Test("applying a message to a new channel creates it with an empty object state")
    func messageCreatesChannel() {
        var state = hubState()
        state.apply(JournalRecord(kind: .message, event: hubEvent(5, "q", data: "hi")))
        #expect(state.sequence == 5)
        #expect(state.channels["q"]?.state == .object(JSONObject()))
        #expect(state.channels["q"]?.visibleState == "{}")
        #expect(state.channels["q"]?.visibleSequence == 0)
    }

    /// Publishes and replacements in order; (channel, data, kind) with kind m(essage), p(atch), s(et).
    static let script: [(String, String, Character)] = [
        ("c", "{\"a\":1,\"b\":{\"c\":2}}", "p"),
        ("c", "just text", "m"),
        ("d", "{\"x\":1}", "p"),
        ("c", "{\"b\":{\"c\":null,\"d\":3},\"e\":[1]}", "p"),
        ("d", "[\"replaced\"]", "s"),
        ("d", "{\"y\":true}", "p"),
        ("c", "{\"z\":1.10}", "s"),
        ("c", "{\"z\":null,\"n\":-0}", "p"),
        ("e", "7", "s"),
        // A null member: no merge patch can say it, so a set record.
        ("f", "{\"k\":null}", "s"),
    ]

    @Test("recovery, applying records without a precomputed state, rebuilds the live state exactly")
    func recoveryMatchesLivePath() {
        var live = hubState()
        var records: [JournalRecord] = []
        for (channel, data, kind) in Self.script {
            let prepared =
                kind == "s"
                ? live.prepareSet(channel: channel, json: data)
                : live.prepare(PublishRequest(channel: channel, data: data, merge: kind == "p"))
            guard let (record, newState) = prepared.success?.records[0] else {
                Issue.record("\(data) was refused: \(prepared.failure!.message)")
                return
            }
            live.apply(record, newState: newState)
            live.makeVisible(record, stateText: newState?.serialized)
            records.append(record)
        }
        var recovered = hubState()
        for record in records { recovered.apply(record) }

        #expect(live.sequence == 10)
        #expect(recovered.sequence == 10)
        #expect(live.channels["c"]?.state.serialized == "{\"n\":-0}")
        #expect(live.channels["d"]?.state.serialized == "{\"y\":true}")
        #expect(live.channels["e"]?.state.serialized == "7")
        #expect(live.channels["f"]?.state.serialized == "{\"k\":null}")
        for name in ["c", "d", "e", "f"] {
            #expect(recovered.channels[name]?.state == live.channels[name]?.state)
            #expect(recovered.channels[name]?.state.serialized == live.channels[name]?.state.serialized)
        }
        // State replacements travel as merge patches where one can say them.
        #expect(records.map(\.kind) == [.merge, .message, .merge, .merge, .merge, .merge, .merge, .merge, .merge, .set])
    }

    @Test("applying a merge computes the state from the data when no state is given")
    func appliesMergeFromData() {
        var state = hubState()
        state.apply(JournalRecord(kind: .merge, event: hubEvent(1, "c", data: "{\"a\":1,\"b\":2}")))
        state.apply(JournalRecord(kind: .merge, event: hubEvent(2, "c", data: "{\"a\":null,\"c\":{\"d\":null}}")))
        #expect(state.channels["c"]?.state.serialized == "{\"b\":2,\"c\":{}}")
    }

    @Test("applying uses the given state rather than recomputing it")
    func appliesGivenState() {
        var state = hubState()
        state.apply(JournalRecord(kind: .merge, event: hubEvent(1, "c", data: "{\"a\":1}")), newState: .number("5"))
        #expect(state.channels["c"]?.state == .number("5"))
    }

    @Test("applying a record whose data is not JSON keeps the state")
    func appliesUnreadableData() {
        var state = hubState()
        state.apply(JournalRecord(kind: .set, event: hubEvent(1, "c", name: "init", data: "{\"a\":1}")))
        state.apply(JournalRecord(kind: .merge, event: hubEvent(2, "c", data: "{oops")))
        state.apply(JournalRecord(kind: .set, event: hubEvent(3, "c", name: "init", data: "")))
        #expect(state.sequence == 3)
        #expect(state.channels["c"]?.state.serialized == "{\"a\":1}")
    }

    // MARK: makeVisible

    @Test("making a record visible updates the visible state and sequence and the history")
    func makesVisible() {
        var state = hubState()
        let (first, firstState) = state.prepare(PublishRequest(channel: "c", data: "{\"a\":1}", merge: true)).success!.records[0]
        state.apply(first, newState: firstState)
        #expect(state.channels["c"]?.visibleState == "{}")
        #expect(state.channels["c"]?.visibleSequence == 0)
        #expect(state.history.events.isEmpty)

        state.makeVisible(first, stateText: firstState?.serialized)
        #expect(state.channels["c"]?.visibleState == "{\"a\":1}")
        #expect(state.channels["c"]?.visibleSequence == 1)
        #expect(state.history.events == [first.event])

        let (second, none) = state.prepare(PublishRequest(channel: "c", data: "plain")).success!.records[0]
        state.apply(second, newState: none)
        state.makeVisible(second, stateText: nil)
        #expect(state.channels["c"]?.visibleState == "{\"a\":1}")
        #expect(state.channels["c"]?.visibleSequence == 2)
        #expect(state.history.events == [first.event, second.event])
    }

    @Test("the visible state lags the written state until the record is made visible")
    func visibleLagsWritten() {
        var state = hubState()
        let (first, firstState) = state.prepare(PublishRequest(channel: "c", data: "{\"a\":1}", merge: true)).success!.records[0]
        state.apply(first, newState: firstState)
        let (second, secondState) = state.prepare(PublishRequest(channel: "c", data: "{\"a\":2}", merge: true)).success!.records[0]
        #expect(second.event.sequence == 2)
        state.apply(second, newState: secondState)
        state.makeVisible(first, stateText: firstState?.serialized)
        #expect(state.channels["c"]?.state.serialized == "{\"a\":2}")
        #expect(state.channels["c"]?.visibleState == "{\"a\":1}")
        #expect(state.channels["c"]?.visibleSequence == 1)
        #expect(state.sequence == 2)
    }
}

@Suite("Hub state: batches")
struct HubStateBatchTests {
    @Test("a batch becomes consecutive records, each merge seeing the merges before it")
    func consecutiveRecords() throws {
        var state = hubState()
        let prepared = try state.prepare([
            PublishRequest(channel: "a", data: #"{"n":1}"#, merge: true),
            PublishRequest(channel: "b", name: "note", data: "hi"),
            PublishRequest(channel: "a", data: #"{"m":2}"#, merge: true),
        ]).get().records
        #expect(prepared.map(\.0.event.sequence) == [1, 2, 3])
        #expect(prepared.map(\.0.kind) == [.merge, .message, .merge])
        #expect(prepared[2].1 == (try JSONValue(parsing: #"{"n":1,"m":2}"#)))
        for (record, newState) in prepared { state.apply(record, newState: newState) }
        #expect(state.sequence == 3)
        #expect(state.channels["a"]?.state.serialized == #"{"n":1,"m":2}"#)
    }

    @Test("one refused event refuses the batch, naming its line, and changes nothing")
    func refusedWhole() {
        let state = hubState(maxEventBytes: 20)
        let refusal = state.prepare([
            PublishRequest(channel: "a", data: #"{"n":1}"#, merge: true),
            PublishRequest(channel: "a", data: #"{"b":"0123456789ab"}"#, merge: true),
        ]).failure
        #expect(refusal?.message.hasPrefix("line 2: the channel state would be") == true, "\(String(describing: refusal))")
        #expect(state.sequence == 0 && state.channels.isEmpty)
        // A single publish keeps its words without a line number.
        #expect(state.prepare(PublishRequest(channel: "bad name", data: "1")).failure?.message.hasPrefix("invalid") == true)
    }
}
