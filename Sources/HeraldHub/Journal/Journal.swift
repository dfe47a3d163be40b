// The hub's data directory: an `epoch` file, append-only segments `journal-NNNNNNNN.log`, and
// `snapshot.bin`. Recovery reads the snapshot, then every segment in order; a torn record at
// the very end (a crash mid-write) is cut off, anything else damaged (or unreadable) stops the
// hub with a message naming the file and offset. Reservation records promise that sequence
// numbers are never given out twice, even after a power loss.
import HeraldProtocol
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// When the journal forces writes to disk before publishers are acknowledged. Events are
/// visible to subscribers once written, whatever the policy; sequence numbers are reserved
/// durably ahead of use under every policy, so none is ever given out twice.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// Acknowledge after the next fsync, started as soon as the previous one ends (group
    /// commit: the publishes waiting meanwhile share it). The default: events are visible
    /// once written, so only acknowledgements wait, and they wait least this way.
    case always
    /// fsync at most every few milliseconds (`--fsync-interval-ms`); acknowledgements wait for it.
    case batch
    /// Acknowledge once written; the kernel writes in its own time. A killed hub loses
    /// nothing; a machine that loses power may lose the last seconds.
    case off
}

/// What recovery found in the data directory.
struct RecoveredJournal {
    var epoch: Epoch
    var snapshot: JournalSnapshot?
    /// Records after the snapshot, in order.
    var records: [JournalRecord]
    /// True when the directory was new (a new epoch was made).
    var created: Bool
    /// The last sequence given out: the last record's, or past a reservation whose events a
    /// power loss may have taken.
    var lastSequence: UInt64 = 0
    /// Resume ids up to this sequence are unknown: events numbered up to it may have been seen
    /// by clients and lost (0 if none ever were).
    var lostThrough: UInt64 = 0
}

/// Appends records to the current segment. Owned by the hub's event loop.
final class Journal {
    let directory: String
    let files: any JournalFileSystem
    /// The segment being appended to; synced from the thread pool.
    private(set) var file: any JournalFile
    private(set) var segment: Int
    private(set) var segmentBytes = 0
    /// Set when a failed write could not be cut back off the segment: every later append
    /// tries the cut again first and fails while it fails.
    private(set) var damaged: JournalError?

    private init(directory: String, files: any JournalFileSystem, file: any JournalFile, segment: Int) {
        self.directory = directory
        self.files = files
        self.file = file
        self.segment = segment
    }

    /// Opens the data directory (creating it and a new epoch if needed), reads back what it
    /// holds, and starts a new segment for appending. A read error stops it naming the file
    /// and offset, before anything is cut; only a torn record at the very end is cut off.
    static func open(
        directory: String, files: any JournalFileSystem = PosixJournalFiles(), logger: Logger
    ) throws(JournalError) -> (Journal, RecoveredJournal) {
        try files.createDirectory(directory)
        let epochPath = "\(directory)/epoch"
        let segments = try segmentIndices(in: directory, files: files)
        var created = false
        let epoch: Epoch
        if let text = try files.read(epochPath) {
            guard let parsed = Epoch(String(decoding: text.readableBytesView, as: UTF8.self).trimmingWhitespace())
            else {
                throw JournalError("\(epochPath) does not hold an epoch (1-16 characters of 0-9 a-z)")
            }
            epoch = parsed
        } else {
            guard segments.isEmpty, try files.read("\(directory)/snapshot.bin") == nil else {
                throw JournalError(
                    "\(epochPath) is missing but the journal is not empty: restore the file or move the directory away")
            }
            epoch = .random()
            try writeDurably(ByteBuffer(string: epoch.rawValue + "\n"), to: epochPath, directory: directory, files: files)
            created = true
        }

        var snapshot: JournalSnapshot?
        if let bytes = try files.read("\(directory)/snapshot.bin") {
            let loaded = try JournalCodec.decodeSnapshot(bytes)
            guard loaded.epoch == epoch.rawValue else {
                throw JournalError(
                    "snapshot.bin belongs to epoch \(loaded.epoch), not \(epoch): the directory is mixed up")
            }
            snapshot = loaded
        }
        var last = snapshot?.sequence ?? 0
        var lostThrough = snapshot?.lostThrough ?? 0
        var records: [JournalRecord] = []
        /// The highest reservation read so far, and the last one (a clean stop trims it).
        var highestReservation: UInt64 = 0
        var lastReservation: JournalReservation?
        var tornTail: (path: String, offset: Int)?
        for (position, index) in segments.enumerated() {
            let path = segmentPath(directory, index)
            guard var bytes = try files.read(path) else { continue }
            while true {
                let (entry, torn) = JournalCodec.decodeEntry(from: &bytes)
                if torn {
                    guard position == segments.count - 1 else {
                        throw JournalError(
                            "\(path) is damaged at byte \(bytes.readerIndex) and is not the last segment")
                    }
                    guard Self.isTornTail(bytes) else {
                        throw JournalError(
                            "\(path) is damaged at byte \(bytes.readerIndex) and valid data follows: restore it from a backup or move the directory away"
                        )
                    }
                    tornTail = (path, bytes.readerIndex)
                    break
                }
                guard let entry else { break }
                let record: JournalRecord
                switch entry {
                case .reservation(let reservation):
                    highestReservation = max(highestReservation, reservation.through)
                    lastReservation = reservation
                    continue
                case .event(let event): record = event
                }
                if record.event.sequence <= last { continue }  // already in the snapshot
                if record.event.sequence != last + 1 {
                    // A power loss took events up to a reservation; the hub went on after it.
                    guard highestReservation > last, record.event.sequence <= highestReservation + 2 else {
                        throw JournalError("\(path): sequence jumps from \(last) to \(record.event.sequence)")
                    }
                    lostThrough = max(lostThrough, record.event.sequence - 1)
                }
                records.append(record)
                last = record.event.sequence
            }
        }
        // Everything was read: only now is anything cut.
        if let tornTail {
            logger.warning(
                "cutting a torn record off the journal's end (a crash mid-write)",
                metadata: ["journal.file": "\(tornTail.path)", "journal.offset": "\(tornTail.offset)"])
            try files.truncate(tornTail.path, to: tornTail.offset)
        }
        // Numbers reserved but not found may have reached clients before a power loss: never
        // give them out again, and treat resume ids among them as unknown. With the same
        // kernel still running, the page cache survived and nothing written is missing.
        if let lastReservation, lastReservation.through > last, lastReservation.bootID != files.bootID() {
            logger.warning(
                "the journal ends before its reservation (power loss?): continuing after it; resume ids in between get a fresh init",
                metadata: ["journal.lastEvent": "\(last)", "journal.reservedThrough": "\(lastReservation.through)"])
            lostThrough = lastReservation.through + 1
            last = lostThrough
        }
        let next = (segments.last ?? 0) + 1
        let file = try openSegment(directory, next, files: files)
        return (
            Journal(directory: directory, files: files, file: file, segment: next),
            RecoveredJournal(
                epoch: epoch, snapshot: snapshot, records: records, created: created, lastSequence: last,
                lostThrough: lostThrough)
        )
    }

    /// Whether an unreadable record at the reader index is what a crash mid-append leaves: the
    /// file ends inside it (its header or its declared length runs past the end), or nothing
    /// but zeros follow (blocks allocated but never written). Anything else is damage.
    static func isTornTail(_ bytes: ByteBuffer) -> Bool {
        guard let length = bytes.getInteger(at: bytes.readerIndex, as: UInt32.self), bytes.readableBytes >= 8 else {
            return true
        }
        if 8 + Int(length) >= bytes.readableBytes { return true }
        return bytes.readableBytesView.allSatisfy { $0 == 0 }
    }

    /// Writes records to the current segment in one write (to the kernel; fsync is separate).
    /// A failed or short write (ENOSPC, EIO) is cut back off the segment before this throws,
    /// so the segment ends on a whole record and a later append cannot follow a torn one.
    func append(_ records: [JournalRecord]) throws(JournalError) {
        var buffer = ByteBufferAllocator().buffer(capacity: records.reduce(0) { $0 + $1.event.data.utf8.count + 64 })
        for record in records { JournalCodec.encode(record, into: &buffer) }
        try write(buffer)
    }

    /// Writes one record (see `append(_:)` for a batch).
    func append(_ record: JournalRecord) throws(JournalError) {
        try append([record])
    }

    /// Writes a reservation of every sequence up to `through` (not synced: the caller syncs).
    func reserve(through: UInt64) throws(JournalError) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        JournalCodec.encode(JournalReservation(through: through, bootID: files.bootID()), into: &buffer)
        try write(buffer)
    }

    private func write(_ buffer: ByteBuffer) throws(JournalError) {
        if damaged != nil {
            do throws(JournalError) {
                try file.truncate(to: segmentBytes)
                damaged = nil
            } catch {
                damaged = error
                throw JournalError("\(file.path) could not be cut back after a failed write: \(error)")
            }
        }
        var remaining = buffer
        do throws(JournalError) {
            while remaining.readableBytes > 0 {
                let written = try Self.writeSome(of: remaining, to: file)
                guard written > 0 else { throw JournalError("write \(file.path): nothing written") }
                remaining.moveReaderIndex(forwardBy: written)
            }
        } catch {
            do throws(JournalError) {
                try file.truncate(to: segmentBytes)
            } catch {
                damaged = error
            }
            throw error
        }
        segmentBytes += buffer.readableBytes
    }

    /// Flushes and closes the current segment and starts the next. Returns the closed segment's index.
    func rotate(sync: Bool) throws(JournalError) -> Int {
        if sync { try file.sync() }
        let closed = segment
        file = try Self.openSegment(directory, segment + 1, files: files)
        segment += 1
        segmentBytes = 0
        damaged = nil
        return closed
    }

    /// Writes `snapshot` atomically (temporary file, fsync, rename, fsync of the directory),
    /// then deletes the segments up to `closedSegment`, which it makes redundant. Blocking:
    /// run it on a thread pool.
    static func writeSnapshot(
        _ snapshot: JournalSnapshot, directory: String, closedSegment: Int,
        files: any JournalFileSystem = PosixJournalFiles()
    ) throws(JournalError) {
        try writeDurably(
            JournalCodec.encode(snapshot), to: "\(directory)/snapshot.bin", directory: directory, files: files)
        for index in try segmentIndices(in: directory, files: files) where index <= closedSegment {
            try files.remove(segmentPath(directory, index))
        }
    }

    // MARK: Files

    static func segmentPath(_ directory: String, _ index: Int) -> String {
        let digits = String(index)
        return "\(directory)/journal-\(String(repeating: "0", count: max(0, 8 - digits.count)))\(digits).log"
    }

    private static func segmentIndices(in directory: String, files: any JournalFileSystem) throws(JournalError)
        -> [Int]
    {
        try files.names(in: directory).compactMap { name in
            guard name.hasPrefix("journal-"), name.hasSuffix(".log") else { return nil }
            return Int(name.dropFirst(8).dropLast(4))
        }.sorted()
    }

    private static func openSegment(_ directory: String, _ index: Int, files: any JournalFileSystem)
        throws(JournalError) -> any JournalFile
    {
        let file = try files.open(segmentPath(directory, index), truncating: false)
        try files.syncDirectory(directory)  // the new file's name is durable before records go in
        return file
    }

    /// One write of as much of `bytes` as the file takes.
    private static func writeSome(of bytes: ByteBuffer, to file: any JournalFile) throws(JournalError) -> Int {
        try bytes.withUnsafeReadableBytes { pointer in
            Result { () throws(JournalError) -> Int in try file.write(pointer) }
        }.get()
    }

    private static func writeDurably(
        _ bytes: ByteBuffer, to path: String, directory: String, files: any JournalFileSystem
    ) throws(JournalError) {
        let temporary = path + ".tmp"
        let file = try files.open(temporary, truncating: true)
        var remaining = bytes
        while remaining.readableBytes > 0 {
            let written = try writeSome(of: remaining, to: file)
            guard written > 0 else { throw JournalError("write \(temporary): nothing written") }
            remaining.moveReaderIndex(forwardBy: written)
        }
        try file.sync()
        try files.rename(temporary, to: path)
        try files.syncDirectory(directory)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
