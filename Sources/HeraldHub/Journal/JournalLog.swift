// The log of a hub on one machine: changes are ordered on the hub and appended to the journal.
// A written record may be shown once a durable reservation covers its sequence number (so no
// number is ever given out twice, even after a power loss), and acknowledged once as durable
// as `--fsync` asks. A failed write refuses the change and leaves the journal as it was; a
// failed fsync is fatal: nothing more is acknowledged and the hub stops, so that its restart
// replays what is really on disk. Large segments are replaced by a snapshot.
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix

/// Where the journal stands. Sequences only grow: durable ≤ written, visible ≤ reserved.
struct CommitProgress {
    /// The last sequence written to the journal.
    var written: UInt64 = 0
    /// The last sequence known to be on stable storage.
    var durable: UInt64 = 0
    /// Every sequence up to this one is reserved durably: events up to it may become visible.
    var reservedThrough: UInt64 = 0
    /// A reservation written and waiting for its sync (0: none).
    var reservationWritten: UInt64 = 0
    var syncInFlight = false
    var syncScheduled = false
    var reservationRetryScheduled = false
    var snapshotInFlight = false
    /// Why the journal stopped acknowledging (an fsync failed); nil while healthy.
    var fatal: String?
}

/// The journal as the hub's event log. Owned by the hub's event loop.
final class JournalLog: EventLog {
    weak var delegate: (any EventLogDelegate)?
    let journal: Journal
    private let loop: EventLoop
    private let configuration: HubConfiguration
    private let logger: Logger
    private let blockingWork: BlockingWork
    /// Called once an fsync failed: the process must stop (tests observe it instead).
    private let onFatal: (String) -> Void
    private(set) var progress = CommitProgress()

    /// Opens the data directory through `files`, reads back what it holds, and reserves the
    /// first range of sequence numbers (synced before anything is published).
    static func open(
        directory: String, loop: EventLoop, configuration: HubConfiguration, logger: Logger,
        files: any JournalFileSystem, blockingWork: BlockingWork, onFatal: @escaping (String) -> Void
    ) throws -> (JournalLog, LogRestore) {
        let (journal, recovered) = try Journal.open(directory: directory, files: files, logger: logger)
        let snapshot = recovered.snapshot
        let restore = LogRestore(
            epoch: recovered.epoch,
            sequence: max(snapshot?.sequence ?? 0, recovered.lastSequence, recovered.records.last?.event.sequence ?? 0),
            channels: (snapshot?.channels ?? []).map {
                .init(name: $0.name, state: $0.state, visibleSequence: $0.visibleSequence, lastDropped: $0.lastDropped)
            },
            history: snapshot?.history ?? [], lastDropped: snapshot?.lastDropped ?? 0,
            lostThrough: max(snapshot?.lostThrough ?? 0, recovered.lostThrough), keys: snapshot?.keys ?? [],
            replay: recovered.records)
        let log = JournalLog(
            journal: journal, loop: loop, configuration: configuration, logger: logger, blockingWork: blockingWork,
            onFatal: onFatal)
        let reservation = restore.sequence + log.reservationSize
        try journal.reserve(through: reservation)
        try journal.file.sync()
        log.progress.written = restore.sequence
        log.progress.durable = restore.sequence
        log.progress.reservedThrough = reservation
        logger.info(
            recovered.created ? "journal created" : "journal recovered",
            metadata: [
                "journal.directory": "\(directory)", "hub.epoch": "\(restore.epoch)",
                "hub.sequence": "\(restore.sequence)", "journal.replayed": "\(recovered.records.count)",
            ])
        return (log, restore)
    }

    private init(
        journal: Journal, loop: EventLoop, configuration: HubConfiguration, logger: Logger,
        blockingWork: BlockingWork, onFatal: @escaping (String) -> Void
    ) {
        self.journal = journal
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.blockingWork = blockingWork
        self.onFatal = onFatal
    }

    private var reservationSize: UInt64 { UInt64(max(2, configuration.reservationSize)) }

    var visibleThrough: UInt64 { progress.reservedThrough }
    var durableThrough: UInt64 { configuration.fsyncPolicy == .off ? .max : progress.durable }

    // MARK: Writing

    func append(
        _ change: LogChange, order: () -> Result<PreparedPublish, PublishRefusal>,
        completion: @escaping (LogAppendOutcome) -> Void
    ) {
        let publish: PreparedPublish
        switch order() {
        case .failure(let refusal): return completion(.notWritten(.refused(refusal.message)))
        case .success(let value): publish = value
        }
        if let fatal = progress.fatal {
            return completion(.notWritten(publish.records.isEmpty ? .uncertain(fatal) : .unavailable(fatal)))
        }
        if let last = publish.records.last?.0.event.sequence {
            do {
                try journal.append(publish.records.map(\.0))
            } catch {
                // Nothing of it was kept (the write was cut back): certainly not published.
                logger.error(
                    "journal write failed; publish refused",
                    metadata: ["journal.directory": "\(journal.directory)", "error": "\(error)"])
                return completion(
                    .notWritten(
                        .unavailable(
                            "the hub could not write its journal in \(journal.directory): \(error); publishing works again once the disk has room"
                        )))
            }
            progress.written = last
        }
        reserveAheadIfNeeded()
        requestSync()
        completion(.written(publish))
    }

    /// Writes the next reservation once half of the current one is used, and syncs it at once.
    private func reserveAheadIfNeeded() {
        guard progress.fatal == nil, progress.reservationWritten == 0,
            progress.written + reservationSize / 2 > progress.reservedThrough
        else { return }
        let through = progress.written + reservationSize
        do {
            try journal.reserve(through: through)
        } catch {
            logger.error(
                "journal reservation failed; new events wait until it can be written",
                metadata: ["journal.directory": "\(journal.directory)", "error": "\(error)"])
            scheduleReservationRetry()
            return
        }
        progress.reservationWritten = through
        startSync()
    }

    private func scheduleReservationRetry() {
        guard !progress.reservationRetryScheduled else { return }
        progress.reservationRetryScheduled = true
        let log = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: .milliseconds(100)) {
            log.value.progress.reservationRetryScheduled = false
            log.value.reserveAheadIfNeeded()
        }
    }

    /// Starts or schedules the sync publishers wait for, per `--fsync`.
    private func requestSync() {
        guard progress.fatal == nil, progress.durable < progress.written else { return }
        switch configuration.fsyncPolicy {
        case .off:
            return
        case .always:
            startSync()
        case .batch:
            guard !progress.syncScheduled, !progress.syncInFlight else { return }
            progress.syncScheduled = true
            let log = NIOLoopBound(self, eventLoop: loop)
            loop.scheduleTask(in: configuration.fsyncInterval) {
                log.value.progress.syncScheduled = false
                log.value.startSync()
            }
        }
    }

    /// Syncs the segment on the thread pool: everything written before it started becomes
    /// durable, the reservation written before it included. One at a time; its completion
    /// starts the next if one is needed.
    private func startSync() {
        guard !progress.syncInFlight, progress.fatal == nil else { return }
        let target = (sequence: progress.written, reservation: progress.reservationWritten)
        progress.syncInFlight = true
        let file = journal.file
        blockingWork.run(on: loop) { try file.sync() }.assumeIsolated().whenComplete { result in
            self.progress.syncInFlight = false
            switch result {
            case .failure(let error as NIOThreadPoolError.ThreadPoolInactive):
                self.logger.warning("journal sync skipped: the hub is stopping", metadata: ["error": "\(error)"])
            case .failure(let error):
                self.fsyncFailed(error)
            case .success:
                self.progress.durable = max(self.progress.durable, target.sequence)
                if target.reservation > 0 {
                    self.progress.reservedThrough = max(self.progress.reservedThrough, target.reservation)
                    if self.progress.reservationWritten == target.reservation { self.progress.reservationWritten = 0 }
                }
                self.delegate?.logAdvanced()
                self.reserveAheadIfNeeded()
                if self.progress.reservationWritten > 0 {
                    self.startSync()
                } else {
                    self.requestSync()
                }
            }
        }
    }

    /// After a failed fsync the page cache cannot be trusted (PostgreSQL's rule): nothing is
    /// acknowledged any more, and the hub stops so that its restart replays what is on disk.
    private func fsyncFailed(_ error: any Error) {
        guard progress.fatal == nil else { return }
        let message =
            "the journal's fsync failed in \(journal.directory): \(error); the hub stops (after a failed fsync the page cache cannot be trusted) and its restart replays what is on disk"
        progress.fatal = message
        logger.critical("\(message)")
        delegate?.logFailed(message)
        onFatal(message)
    }

    /// Forces written events to disk and trims the reservation to what was used, so that a
    /// restart (even after a reboot) knows nothing was lost (on shutdown).
    func close() {
        guard progress.fatal == nil else { return }
        do {
            try journal.reserve(through: progress.written)
            try journal.file.sync()
        } catch {
            logger.error("journal sync on shutdown failed", metadata: ["error": "\(error)"])
            return
        }
        progress.durable = progress.written
        progress.reservedThrough = max(progress.reservedThrough, progress.written)
        delegate?.logAdvanced()
    }

    // MARK: Snapshots

    /// Once the segment is large, starts a new one and writes a snapshot that replaces the old ones.
    func released(through visible: UInt64, state: HubState, pending: CircularBuffer<WrittenEvent>) {
        guard !progress.snapshotInFlight, !progress.syncInFlight, progress.reservationWritten == 0,
            progress.fatal == nil, journal.segmentBytes >= configuration.snapshotBytes
        else { return }
        // Synced whatever the policy: a later segment must never follow a torn one.
        do {
            try journal.file.sync()
        } catch {
            fsyncFailed(error)
            return
        }
        progress.durable = progress.written
        let closed: Int
        do {
            closed = try journal.rotate(sync: false)
            // The reservation moves to the new segment before the old ones may go.
            try journal.reserve(through: progress.reservedThrough)
        } catch {
            logger.error("journal rotation failed; segments are kept", metadata: ["error": "\(error)"])
            return
        }
        let snapshot = Self.snapshot(of: state, pending: pending)
        progress.snapshotInFlight = true
        let directory = journal.directory
        let files = journal.files
        let segment = journal.file
        let started = NIODeadline.now()
        blockingWork.run(on: loop) {
            try segment.sync()
            try Journal.writeSnapshot(snapshot, directory: directory, closedSegment: closed, files: files)
        }.assumeIsolated().whenComplete { result in
            self.progress.snapshotInFlight = false
            switch result {
            case .success:
                self.logger.info(
                    "journal snapshot written",
                    metadata: [
                        "hub.sequence": "\(snapshot.sequence)", "journal.historyEvents": "\(snapshot.history.count)",
                        "journal.milliseconds": "\((NIODeadline.now() - started).nanoseconds / 1_000_000)",
                    ])
            case .failure(let error):
                self.logger.error("journal snapshot failed; segments are kept", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The snapshot of `state`: written but not yet visible events are in the closed segment,
    /// so they are kept in its history.
    static func snapshot(of state: HubState, pending: CircularBuffer<WrittenEvent>) -> JournalSnapshot {
        var history = Array(state.history.events)
        history.append(contentsOf: pending.map(\.record.event))
        var keys = state.keys
        keys.expire(now: IdempotencyWindow.now())
        var snapshot = JournalSnapshot(
            epoch: state.epoch.rawValue, sequence: state.sequence, lastDropped: state.history.lastDropped,
            channels: state.channels.map { name, channel in
                .init(
                    name: name, state: channel.state.serialized, visibleSequence: channel.visibleSequence,
                    lastDropped: state.history.lastDroppedByChannel[name] ?? 0)
            }, history: history, lostThrough: state.history.lostThrough)
        snapshot.keys = Array(keys.entries)
        return snapshot
    }

    // MARK: Reading

    func waitUntilRead(_ sequence: UInt64, visible: UInt64) -> EventLoopFuture<Void>? { nil }

    func addStats(to stats: inout HubStats, visible: UInt64) {}
}
