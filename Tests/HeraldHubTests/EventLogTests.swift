// The core behind its event-log seam, in process: a log that orders elsewhere (as the
// cluster's database does) completes appends later and brings other hubs' records; the core
// delivers and acknowledges them on its one path, in sequence order, each once. And the one
// restore type: a cluster snapshot and a journal's restore build the same HubState.
import HeraldProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HeraldHub

/// A log whose database orders: appends wait until the test commits them.
final class RemoteOrderingLog: EventLog {
    weak var delegate: (any EventLogDelegate)?
    let visibleThrough = UInt64.max
    let durableThrough = UInt64.max
    var waiting: [(change: LogChange, completion: (LogAppendOutcome) -> Void)] = []
    var released: [UInt64] = []

    func append(
        _ change: LogChange, order: () -> Result<PreparedPublish, PublishRefusal>,
        completion: @escaping (LogAppendOutcome) -> Void
    ) {
        waiting.append((change, completion))
    }

    /// Commits the oldest waiting append as `records` (the database's order), as the cluster
    /// log does: the records go to the core first, then the publisher's outcome.
    func commitNext(as records: [JournalRecord]) -> Bool {
        let next = waiting.removeFirst()
        let followsOn = delegate?.logCommitted(records) ?? true
        next.completion(.written(PreparedPublish(records: records.map { ($0, nil) })))
        return followsOn
    }

    func released(through visible: UInt64, state: HubState, pending: CircularBuffer<WrittenEvent>) {
        released.append(visible)
    }
    func waitUntilRead(_ sequence: UInt64, visible: UInt64) -> EventLoopFuture<Void>? { nil }
    func close() {}
    func addStats(to stats: inout HubStats, visible: UInt64) {}
}

/// A core on an embedded loop over a `RemoteOrderingLog`.
final class RemoteHarness {
    let loop = EmbeddedEventLoop()
    let log = RemoteOrderingLog()
    let core: HubCore

    init(restore: LogRestore = LogRestore(epoch: Epoch("0123456789abcdef")!, sequence: 0, keys: nil)) {
        core = HubCore(
            loop: loop, configuration: HubConfiguration(), logger: Logger(label: "test"), log: log, restore: restore)
    }

    func worker() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        core.workerJoined(WorkerSession(id: "w", channel: channel), epoch: "", lastSequence: 0)
        _ = try events(channel)
        return channel
    }

    /// The sequences of the event frames written to `channel` since the last call.
    func events(_ channel: EmbeddedChannel) throws -> [UInt64] {
        loop.run()
        var sequences: [UInt64] = []
        var decoder = HubFrameDecoder()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while let frame = try decoder.decode(buffer: &buffer) {
                if case .event(let event) = frame { sequences.append(event.sequence) }
            }
        }
        return sequences
    }
}

private func record(_ sequence: UInt64, channel: String = "c", data: String = "x", kind: RecordKind = .message)
    -> JournalRecord
{
    JournalRecord(kind: kind, event: HubEvent(sequence: sequence, channel: channel, name: "delta", data: data))
}

@Suite("Event log seam")
struct EventLogTests {
    @Test("a publish ordered elsewhere is acknowledged with the log's sequence once visible, after other hubs' events")
    func orderedElsewhere() throws {
        let hub = RemoteHarness()
        let worker = try hub.worker()
        let result = hub.core.publish(PublishRequest(channel: "c", data: "mine"))
        #expect(outcome(result) == nil)
        // Another hub's events come first (read by the follower), then this hub's commit as 3.
        #expect(hub.core.state.sequence == 0)
        #expect(hub.log.delegate?.logCommitted([record(1), record(2)]) == true)
        #expect(try hub.events(worker) == [1, 2])
        #expect(hub.log.commitNext(as: [record(3, data: "mine")]))
        #expect(outcome(result) == .accepted(sequence: 3))
        #expect(try hub.events(worker) == [3])
        #expect(hub.core.visibleSequence == 3)
        #expect(hub.log.released.last == 3)
    }

    @Test("records the follower already brought are not delivered twice")
    func deliveredOnce() throws {
        let hub = RemoteHarness()
        let worker = try hub.worker()
        let result = hub.core.publish(PublishRequest(channel: "c", data: "mine"))
        #expect(hub.log.delegate?.logCommitted([record(1, data: "mine")]) == true)
        #expect(hub.log.commitNext(as: [record(1, data: "mine")]))
        #expect(outcome(result) == .accepted(sequence: 1))
        #expect(try hub.events(worker) == [1])
    }

    @Test("a commit that leaves a gap is not delivered nor acknowledged until the missing events arrive")
    func gapWaits() throws {
        let hub = RemoteHarness()
        let worker = try hub.worker()
        let result = hub.core.publish(PublishRequest(channel: "c", data: "mine"))
        #expect(!hub.log.commitNext(as: [record(3, data: "mine")]))
        #expect(outcome(result) == nil)
        #expect(try hub.events(worker).isEmpty)
        #expect(hub.log.delegate?.logCommitted([record(1), record(2), record(3, data: "mine")]) == true)
        #expect(try hub.events(worker) == [1, 2, 3])
        #expect(outcome(result) == .accepted(sequence: 3))
    }

    @Test("merges from the log lead to the same state a subscriber gets")
    func mergesApplied() throws {
        let hub = RemoteHarness()
        _ = hub.log.delegate?.logCommitted([
            record(1, data: "{\"a\":1}", kind: .merge), record(2, data: "{\"b\":2}", kind: .merge),
        ])
        #expect(hub.core.visibleState(of: "c") == "{\"a\":1,\"b\":2}")
    }

    @Test("a restart from the log disconnects workers and starts from the restore; waiting publishers are answered")
    func restarted() throws {
        let hub = RemoteHarness()
        let worker = try hub.worker()
        let result = hub.core.publish(PublishRequest(channel: "c", data: "mine"))
        #expect(!hub.log.commitNext(as: [record(5, data: "mine")]))
        hub.log.delegate?.logRestarted(
            LogRestore(
                epoch: Epoch("0123456789abcdef")!, sequence: 9,
                channels: [.init(name: "c", state: "{\"z\":1}", visibleSequence: 9)], lastDropped: 9, keys: nil),
            reason: "test")
        hub.loop.run()
        #expect(!worker.isActive)
        #expect(hub.core.visibleSequence == 9)
        #expect(hub.core.visibleState(of: "c") == "{\"z\":1}")
        #expect(outcome(result) == .accepted(sequence: 5))
    }

    @Test("a prune drops history up to it, so a resume from before it gets init")
    func pruned() throws {
        let hub = RemoteHarness()
        _ = hub.log.delegate?.logCommitted([record(1), record(2), record(3)])
        hub.log.delegate?.logPruned(through: 2)
        #expect(hub.core.state.history.events.map(\.sequence) == [3])
        guard case .subscribed(_, _, let replay, let snapshots) = hub.core.subscribe(
            request: 1, channelNames: ["c"], resumeAfter: 1)
        else {
            Issue.record("no subscribed frame")
            return
        }
        #expect(replay.isEmpty)
        #expect(snapshots.map(\.channel) == ["c"])
    }

    @Test("a refusal from the log reaches the publisher and changes nothing")
    func refusal() throws {
        let hub = RemoteHarness()
        let result = hub.core.publish(PublishRequest(channel: "c", data: "x"))
        hub.log.waiting.removeFirst().completion(.notWritten(.refused("no")))
        #expect(outcome(result) == .refused("no"))
        #expect(hub.core.state.sequence == 0)
    }

    @Test("a cluster snapshot and the same data as a journal restore build the same state")
    func oneRestoreType() throws {
        let events = [record(7, channel: "a", data: "{\"x\":1}", kind: .merge), record(8, channel: "b")]
        let snapshot = ClusterSnapshot(
            head: ClusterHead(epoch: "0123456789abcdef", sequence: 8, prunedThrough: 0),
            channels: [.init(name: "a", state: "{\"x\":1}", sequence: 7), .init(name: "b", state: "{}", sequence: 8)],
            records: events, lastDropped: 6, lastDroppedByChannel: ["a": 5])
        let journal = LogRestore(
            epoch: Epoch("0123456789abcdef")!, sequence: 8,
            channels: [
                .init(name: "a", state: "{\"x\":1}", visibleSequence: 7, lastDropped: 5),
                .init(name: "b", state: "{}", visibleSequence: 8),
            ], history: events.map(\.event), lastDropped: 6)
        let history = HistoryRing(maximumEvents: 100, maximumBytes: 1 << 20)
        let window = IdempotencyWindow(windowMilliseconds: 0, maximumKeys: 1, maximumBytes: 1)
        let fromCluster = HubState(restoring: snapshot.restore, history: history, maxEventBytes: 1000, keys: window)
        let fromJournal = HubState(restoring: journal, history: history, maxEventBytes: 1000, keys: window)
        for state in [fromCluster, fromJournal] {
            #expect(state.epoch.rawValue == "0123456789abcdef")
            #expect(state.sequence == 8)
            #expect(state.channels["a"]?.visibleState == "{\"x\":1}")
            #expect(state.channels["b"]?.visibleSequence == 8)
            #expect(state.history.events.map(\.sequence) == [7, 8])
            #expect(state.history.lastDropped == 6)
            #expect(state.history.lastDroppedByChannel == ["a": 5])
            #expect(state.history.covers(channel: "b", after: 6))
            #expect(!state.history.covers(channel: "a", after: 4))
        }
    }

    @Test("records replayed on top of a restore change the state; a lost range makes its resume ids unknown")
    func replayAndLoss() throws {
        let restore = LogRestore(
            epoch: Epoch("0123456789abcdef")!, sequence: 20,
            replay: [record(1, data: "{\"a\":1}", kind: .merge), record(2, data: "{\"a\":2}", kind: .merge)])
        var lost = restore
        lost.lostThrough = 20
        let history = HistoryRing(maximumEvents: 100, maximumBytes: 1 << 20)
        let window = IdempotencyWindow(windowMilliseconds: 1000, maximumKeys: 10, maximumBytes: 1000)
        let state = HubState(restoring: restore, history: history, maxEventBytes: 1000, keys: window)
        #expect(state.sequence == 20)
        #expect(state.channels["c"]?.visibleState == "{\"a\":2}")
        #expect(state.history.events.map(\.sequence) == [1, 2])
        let afterLoss = HubState(restoring: lost, history: history, maxEventBytes: 1000, keys: window)
        #expect(afterLoss.history.events.isEmpty)
        #expect(afterLoss.history.lostThrough == 20)
    }
}
