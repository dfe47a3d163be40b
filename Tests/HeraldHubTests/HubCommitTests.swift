// HubCore's commit path in process: on an EmbeddedEventLoop with EmbeddedChannels for workers
// and tail followers, a simulated disk, and fsyncs held until the test runs them. Events are
// visible once written, acknowledged once synced; disk faults refuse publishes or stop the hub.
import HeraldProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HeraldHub

/// A hub core on an embedded loop, its simulated disk, and the fsyncs it is waiting for.
final class CoreHarness {
    let loop: EmbeddedEventLoop
    let disk: SimulatedDisk
    let held: HeldWork
    let core: HubCore
    private let fatalBox: FatalBox
    /// What the core reported as fatal (it would have exited).
    var fatal: [String] { fatalBox.messages }
    static let directory = "/data"

    init(
        disk: SimulatedDisk = SimulatedDisk(), policy: FsyncPolicy = .always, reservationSize: Int = 1000,
        configure: (inout HubConfiguration) -> Void = { _ in }
    ) throws {
        self.disk = disk
        let loop = EmbeddedEventLoop()
        self.loop = loop
        var configuration = HubConfiguration()
        configuration.dataDirectory = Self.directory
        configuration.fsyncPolicy = policy
        configuration.reservationSize = reservationSize
        configure(&configuration)
        let box = FatalBox()
        fatalBox = box
        let held = HeldWork()
        self.held = held
        core = try HubCore(
            loop: loop, configuration: configuration, logger: Logger(label: "test"), files: disk,
            blockingWork: held.blockingWork, onFatal: { box.messages.append($0) })
    }

    /// A worker connected with nothing delivered yet (its welcome already read).
    func worker(_ id: String) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        core.workerJoined(WorkerSession(id: id, channel: channel), epoch: "", lastSequence: 0)
        _ = try frames(channel)
        return channel
    }

    /// A tail follower of every channel.
    func tail() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        core.follow(channelName: nil, channel: channel)
        return channel
    }

    /// Every frame written to a worker channel since the last call, once the loop pass that
    /// wrote them is over (the core flushes at its end).
    func frames(_ channel: EmbeddedChannel) throws -> [HubFrame] {
        loop.run()
        var frames: [HubFrame] = []
        var decoder = HubFrameDecoder()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        }
        return frames
    }

    /// The text written to a tail channel since the last call, once the loop pass is over.
    func text(_ channel: EmbeddedChannel) throws -> String {
        loop.run()
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func publish(_ data: String, channel: String = "c") -> EventLoopFuture<PublishResult> {
        core.publish(PublishRequest(channel: channel, data: data))
    }
}

/// Collects the messages a core reports as fatal.
final class FatalBox {
    var messages: [String] = []
}

/// The result of a future on the embedded loop, nil while it is pending.
func outcome<T>(_ future: EventLoopFuture<T>) -> T? {
    var value: T?
    future.assumeIsolated().whenSuccess { value = $0 }
    return value
}

@Suite("Hub commit path")
struct HubCommitTests {
    @Test("events that change state go to workers as stateEvent frames, plain events as event frames")
    func stateChangesAreMarked() throws {
        let hub = try CoreHarness()
        let worker = try hub.worker("w1")
        _ = hub.core.publish(PublishRequest(channel: "c", data: "{\"a\":1}", merge: true))
        _ = hub.publish("plain")
        _ = hub.core.setState(channel: "c", json: "{\"a\":null}")
        #expect(
            try hub.frames(worker) == [
                .stateEvent(HubEvent(sequence: 1, channel: "c", name: "delta", data: "{\"a\":1}")),
                .event(HubEvent(sequence: 2, channel: "c", name: "delta", data: "plain")),
                .stateEvent(HubEvent(sequence: 3, channel: "c", name: "init", data: "{\"a\":null}")),
            ])
    }

    @Test("a publish becomes event frames on two workers and a tail line at once, and is acknowledged after the sync")
    func visibleBeforeAcknowledged() throws {
        let hub = try CoreHarness()
        let first = try hub.worker("w1")
        let second = try hub.worker("w2")
        let tail = try hub.tail()
        let result = hub.publish("hello")
        #expect(try hub.frames(first) == [.event(HubEvent(sequence: 1, channel: "c", name: "delta", data: "hello"))])
        #expect(try hub.frames(second) == [.event(HubEvent(sequence: 1, channel: "c", name: "delta", data: "hello"))])
        #expect(try hub.text(tail).contains("\"data\":\"hello\""))
        #expect(hub.core.visibleSequence == 1)
        #expect(outcome(result) == nil)  // the fsync is still held
        hub.held.runAll()
        #expect(outcome(result) == .accepted(sequence: 1))
    }

    @Test("a new subscriber and a reconnecting worker see an event before its acknowledgement")
    func subscribeSeesWrittenEvents() throws {
        let hub = try CoreHarness()
        _ = hub.publish("x")
        guard case .subscribed(_, let sequence, _, _) = hub.core.subscribe(request: 1, channelNames: ["c"], resumeAfter: 0)
        else {
            Issue.record("no subscribed frame")
            return
        }
        #expect(sequence == 1)
    }

    @Test("with --fsync off the acknowledgement comes at once; with batch after the interval")
    func policies() throws {
        let off = try CoreHarness(policy: .off)
        #expect(outcome(off.publish("x")) == .accepted(sequence: 1))
        let batch = try CoreHarness(policy: .batch)
        let result = batch.publish("x")
        #expect(batch.held.count == 0)
        batch.loop.advanceTime(by: .milliseconds(5))
        #expect(batch.held.count == 1)
        batch.held.runAll()
        #expect(outcome(result) == .accepted(sequence: 1))
    }

    @Test("events past the durable reservation wait for it; the next range is reserved at half")
    func reservations() throws {
        let hub = try CoreHarness(policy: .off, reservationSize: 4)
        let worker = try hub.worker("w")
        // Reserved through 4 at start; publishing 3 passes half: reservation through 7 is written.
        for index in 1...3 { _ = hub.publish("e\(index)") }
        #expect(hub.core.visibleSequence == 3)
        #expect(hub.held.count == 1)
        _ = hub.publish("e4")
        let fifth = hub.publish("e5")
        #expect(hub.core.visibleSequence == 4)  // 5 waits for the reservation's sync
        #expect(outcome(fifth) == nil)
        hub.held.runAll()
        #expect(hub.core.visibleSequence == 5)
        #expect(outcome(fifth) == .accepted(sequence: 5))
        #expect(try hub.frames(worker).count == 5)
    }

    @Test("a full disk refuses publishes naming the journal and the cause, and they work again once space returns")
    func diskFull() throws {
        let hub = try CoreHarness(policy: .off)
        hub.disk.setFreeBytes(60)
        #expect(outcome(hub.publish(String(repeating: "a", count: 20))) == .accepted(sequence: 1))
        let refused = outcome(hub.publish(String(repeating: "b", count: 40)))
        guard case .unavailable(let message) = refused else {
            Issue.record("expected unavailable, got \(String(describing: refused))")
            return
        }
        #expect(message.contains("/data"))
        #expect(message.contains("No space left on device"))
        hub.disk.setFreeBytes(nil)
        #expect(outcome(hub.publish("c")) == .accepted(sequence: 2))
        // The refused write was cut back: the segment holds whole records only.
        let recovered = try CoreHarness(disk: hub.disk)
        #expect(recovered.core.state.sequence == 2)
        #expect(recovered.core.state.history.events.map(\.data) == [String(repeating: "a", count: 20), "c"])
    }

    @Test("a short write is cut back and the publish refused")
    func shortWrite() throws {
        let hub = try CoreHarness(policy: .off)
        hub.disk.setShortWrite(5)
        hub.disk.setFreeBytes(5)
        guard case .unavailable = outcome(hub.publish("short")) else {
            Issue.record("expected unavailable")
            return
        }
        hub.disk.setFreeBytes(nil)
        #expect(outcome(hub.publish("whole")) == .accepted(sequence: 1))
        let recovered = try CoreHarness(disk: hub.disk)
        #expect(recovered.core.state.history.events.map(\.data) == ["whole"])
    }

    @Test("a failed fsync acknowledges nothing more, answers waiting publishers uncertain and reports fatal")
    func fsyncFailure() throws {
        let hub = try CoreHarness()
        let first = hub.publish("a")
        hub.disk.setFailSync(true)
        hub.held.runAll()
        guard case .uncertain = outcome(first) else {
            Issue.record("expected uncertain, got \(String(describing: outcome(first)))")
            return
        }
        #expect(hub.fatal.count == 1)
        #expect(hub.fatal.first?.contains("fsync") == true)
        guard case .unavailable = outcome(hub.publish("b")) else {
            Issue.record("a publish after a failed fsync must be refused")
            return
        }
        // The restart replays what is really on disk: the unsynced event is gone after a power loss.
        hub.disk.setFailSync(false)
        hub.disk.powerLoss()
        let restarted = try CoreHarness(disk: hub.disk)
        #expect(restarted.core.state.history.events.isEmpty)
    }

    @Test("a tail follower that stops reading is dropped and counted; workers keep getting events")
    func slowTailDropped() throws {
        let hub = try CoreHarness(policy: .off)
        let worker = try hub.worker("w")
        let tail = try hub.tail()
        _ = hub.publish("a")
        #expect(try hub.text(tail).contains("\"a\""))
        tail.isWritable = false
        _ = hub.publish("b")
        #expect(hub.core.tails.isEmpty)
        #expect(hub.core.tailFollowersDropped == 1)
        #expect(try hub.frames(worker).count == 2)
    }

    @Test("a worker link that stops reading is dropped")
    func slowWorkerDropped() throws {
        let hub = try CoreHarness(policy: .off)
        let worker = try hub.worker("w")
        worker.isWritable = false
        _ = hub.publish("a")
        #expect(hub.core.workers.isEmpty)
        #expect(!worker.isActive)
    }
}
