// The hub's commit path on one machine: a publish is written to the journal, becomes visible
// (state, history, workers, tail followers) once written and covered by a durable reservation
// of its sequence number, and is acknowledged once as durable as `--fsync` asks. A failed
// write refuses the publish and leaves the journal as it was; a failed fsync is fatal.
import HeraldProtocol
import NIOCore
import NIOPosix

/// Where the commit path stands. Sequences only grow: durable ≤ written, visible ≤ reserved.
struct CommitProgress {
    /// The last sequence known to be on stable storage.
    var durable: UInt64 = 0
    /// Every sequence up to this one is reserved durably: events up to it may become visible.
    var reservedThrough: UInt64 = 0
    /// A reservation written and waiting for its sync (0: none).
    var reservationWritten: UInt64 = 0
    var syncInFlight = false
    var syncScheduled = false
    var reservationRetryScheduled = false
    /// Why the hub stopped acknowledging (an fsync failed); nil while healthy.
    var fatal: String?
}

/// An event written to the journal, waiting for its reservation to be durable.
struct WrittenEvent {
    let record: JournalRecord
    let stateText: String?
}

/// A publisher waiting for its last event to be visible and durable.
struct WaitingAcknowledgement {
    /// The publish's last sequence (a repeat's first event included).
    let through: UInt64
    /// What the publisher is told then.
    let result: PublishResult
    let promise: EventLoopPromise<PublishResult>
}

extension HubCore {
    /// Writes prepared records, makes them visible and answers when durable per `--fsync`.
    /// Repeats (known idempotency keys) are answered with their first events' ids once those
    /// are visible and durable too, so a repeat never confirms more than the first attempt would.
    func commit(_ prepared: Result<PreparedPublish, PublishRefusal>) -> EventLoopFuture<PublishResult> {
        let publish: PreparedPublish
        switch prepared {
        case .failure(let refusal): return loop.makeSucceededFuture(.refused(refusal.message))
        case .success(let value): publish = value
        }
        let records = publish.records
        let through = max(records.last?.0.event.sequence ?? 0, publish.repeats.map(\.sequence).max() ?? 0)
        guard through > 0 else { return loop.makeSucceededFuture(.refused("nothing to publish")) }
        if let fatal = progress.fatal {
            return loop.makeSucceededFuture(records.isEmpty ? .uncertain(fatal) : .unavailable(fatal))
        }
        if let journal, !records.isEmpty {
            do {
                try journal.append(records.map(\.0))
            } catch {
                // Nothing of it was kept (the write was cut back): certainly not published.
                logger.error(
                    "journal write failed; publish refused",
                    metadata: ["journal.directory": "\(journal.directory)", "error": "\(error)"])
                return loop.makeSucceededFuture(
                    .unavailable(
                        "the hub could not write its journal in \(journal.directory): \(error); publishing works again once the disk has room"
                    ))
            }
        }
        for (record, newState) in records {
            state.apply(record, newState: newState)
            eventsPublished += 1
            written.append(WrittenEvent(record: record, stateText: newState?.serialized))
        }
        let promise = loop.makePromise(of: PublishResult.self)
        acknowledgements.append(
            WaitingAcknowledgement(
                through: through,
                result: .accepted(sequence: records.first?.0.event.sequence ?? 0, repeats: publish.repeats),
                promise: promise))
        reserveAheadIfNeeded()
        requestSyncForAcknowledgements()
        release()
        return promise.futureResult
    }

    /// The one path from written to visible and acknowledged: delivers the written events the
    /// durable reservation covers (state, history, workers, tail followers), then answers every
    /// publisher whose events are visible and as durable as `--fsync` asks.
    func release() {
        let visibleLimit = journal == nil ? state.sequence : progress.reservedThrough
        var events: [HubEvent] = []
        while let next = written.first, next.record.event.sequence <= visibleLimit {
            written.removeFirst()
            state.makeVisible(next.record, stateText: next.stateText)
            visibleSequence = next.record.event.sequence
            events.append(next.record.event)
        }
        deliver(events)
        let durableLimit =
            journal == nil || configuration.fsyncPolicy == .off ? state.sequence : progress.durable
        let acknowledgeLimit = min(visibleSequence, durableLimit)
        while let next = acknowledgements.first, next.through <= acknowledgeLimit {
            acknowledgements.removeFirst()
            next.promise.succeed(next.result)
        }
        maybeSnapshot()
    }

    /// Writes the next reservation once half of the current one is used, and syncs it at once.
    func reserveAheadIfNeeded() {
        guard let journal, progress.fatal == nil, progress.reservationWritten == 0 else { return }
        let size = UInt64(max(2, configuration.reservationSize))
        guard state.sequence + size / 2 > progress.reservedThrough else { return }
        let through = state.sequence + size
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
        let core = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: .milliseconds(100)) {
            core.value.progress.reservationRetryScheduled = false
            core.value.reserveAheadIfNeeded()
        }
    }

    /// Starts or schedules the sync publishers wait for, per `--fsync`.
    func requestSyncForAcknowledgements() {
        guard journal != nil, progress.fatal == nil, progress.durable < state.sequence, !acknowledgements.isEmpty
        else { return }
        switch configuration.fsyncPolicy {
        case .off:
            return
        case .always:
            startSync()
        case .batch:
            guard !progress.syncScheduled, !progress.syncInFlight else { return }
            progress.syncScheduled = true
            let core = NIOLoopBound(self, eventLoop: loop)
            loop.scheduleTask(in: configuration.fsyncInterval) {
                core.value.progress.syncScheduled = false
                core.value.startSync()
            }
        }
    }

    /// Syncs the segment on the thread pool: everything written before it started becomes
    /// durable, the reservation written before it included. One at a time; its completion
    /// starts the next if one is needed.
    func startSync() {
        guard let journal, !progress.syncInFlight, progress.fatal == nil else { return }
        let target = (sequence: state.sequence, reservation: progress.reservationWritten)
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
                self.release()
                self.reserveAheadIfNeeded()
                if self.progress.reservationWritten > 0 {
                    self.startSync()
                } else {
                    self.requestSyncForAcknowledgements()
                }
            }
        }
    }

    /// After a failed fsync the page cache cannot be trusted (PostgreSQL's rule): nothing is
    /// acknowledged any more, and the hub stops so that its restart replays what is on disk.
    func fsyncFailed(_ error: any Error) {
        guard progress.fatal == nil else { return }
        let directory = journal?.directory ?? "?"
        let message =
            "the journal's fsync failed in \(directory): \(error); the hub stops (after a failed fsync the page cache cannot be trusted) and its restart replays what is on disk"
        progress.fatal = message
        logger.critical("\(message)")
        let waiting = acknowledgements
        acknowledgements.removeAll()
        for acknowledgement in waiting {
            acknowledgement.promise.succeed(
                .uncertain("the hub stopped before its journal sync: the event may or may not be kept (\(message))"))
        }
        onFatal(message)
    }

    /// Forces written events to disk and trims the reservation to what was used, so that a
    /// restart (even after a reboot) knows nothing was lost (on shutdown).
    func flushJournal() {
        guard let journal, progress.fatal == nil else { return }
        do {
            try journal.reserve(through: state.sequence)
            try journal.file.sync()
        } catch {
            logger.error("journal sync on shutdown failed", metadata: ["error": "\(error)"])
            return
        }
        progress.durable = state.sequence
        progress.reservedThrough = max(progress.reservedThrough, state.sequence)
        release()
    }
}
