// The hub's data directory: an `epoch` file, append-only segments `journal-NNNNNNNN.log`, and
// `snapshot.bin`. Recovery reads the snapshot, then every segment in order; a torn record at
// the very end (a crash mid-write) is cut off, anything else damaged stops the hub with a
// message naming the file.
import HeraldProtocol
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// How hard the journal pushes writes to disk before events are acknowledged and delivered.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// fsync before every acknowledgement (concurrent publishes share one fsync).
    case always
    /// fsync at most every few milliseconds; acknowledgements wait for it (the default).
    case batch
    /// never fsync: the kernel writes in its own time. A killed hub loses nothing; a machine
    /// that loses power may lose the last seconds.
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
}

/// Appends records to the current segment. Owned by the hub's event loop.
final class Journal {
    let directory: String
    private var fd: Int32
    private(set) var segment: Int
    private(set) var segmentBytes = 0
    /// Set when a failed write could not be cut back off the segment: nothing more is appended.
    private(set) var damaged: JournalError?

    private init(directory: String, fd: Int32, segment: Int) {
        self.directory = directory
        self.fd = fd
        self.segment = segment
    }

    deinit { close(fd) }

    /// Opens the data directory (creating it and a new epoch if needed), reads back what it
    /// holds, and starts a new segment for appending.
    static func open(directory: String, logger: Logger) throws(JournalError) -> (Journal, RecoveredJournal) {
        if mkdir(directory, 0o750) != 0, errno != EEXIST { throw systemError("mkdir", directory) }
        let epochPath = "\(directory)/epoch"
        let segments = try segmentIndices(in: directory)
        var created = false
        let epoch: Epoch
        if let text = try readFile(epochPath) {
            guard let parsed = Epoch(String(decoding: text.readableBytesView, as: UTF8.self).trimmingWhitespace())
            else {
                throw JournalError("\(epochPath) does not hold an epoch (1-16 characters of 0-9 a-z)")
            }
            epoch = parsed
        } else {
            guard segments.isEmpty, try readFile("\(directory)/snapshot.bin") == nil else {
                throw JournalError(
                    "\(epochPath) is missing but the journal is not empty: restore the file or move the directory away")
            }
            epoch = .random()
            try writeDurably(ByteBuffer(string: epoch.rawValue + "\n"), to: epochPath, directory: directory)
            created = true
        }

        var snapshot: JournalSnapshot?
        if let bytes = try readFile("\(directory)/snapshot.bin") {
            let loaded = try JournalCodec.decodeSnapshot(bytes)
            guard loaded.epoch == epoch.rawValue else {
                throw JournalError(
                    "snapshot.bin belongs to epoch \(loaded.epoch), not \(epoch): the directory is mixed up")
            }
            snapshot = loaded
        }
        var last = snapshot?.sequence ?? 0
        var records: [JournalRecord] = []
        for (position, index) in segments.enumerated() {
            let path = segmentPath(directory, index)
            guard var bytes = try readFile(path) else { continue }
            while true {
                let (record, torn) = JournalCodec.decodeRecord(from: &bytes)
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
                    logger.warning(
                        "cutting a torn record off the journal's end (a crash mid-write)",
                        metadata: ["journal.file": "\(path)", "journal.offset": "\(bytes.readerIndex)"])
                    guard truncate(path, off_t(bytes.readerIndex)) == 0 else { throw systemError("truncate", path) }
                    break
                }
                guard let record else { break }
                if record.event.sequence <= last { continue }  // already in the snapshot
                guard record.event.sequence == last + 1 else {
                    throw JournalError("\(path): sequence jumps from \(last) to \(record.event.sequence)")
                }
                records.append(record)
                last = record.event.sequence
            }
        }
        let next = (segments.last ?? 0) + 1
        let fd = try openSegment(directory, next)
        return (
            Journal(directory: directory, fd: fd, segment: next),
            RecoveredJournal(epoch: epoch, snapshot: snapshot, records: records, created: created)
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
    /// so the segment ends on a whole record and a later append cannot follow a torn one. If
    /// even that fails, the journal refuses every later append (`damaged`).
    func append(_ records: [JournalRecord]) throws(JournalError) {
        if let damaged { throw damaged }
        var buffer = ByteBufferAllocator().buffer(capacity: records.reduce(0) { $0 + $1.event.data.utf8.count + 64 })
        for record in records { JournalCodec.encode(record, into: &buffer) }
        let path = Self.segmentPath(directory, segment)
        do {
            try Self.writeAll(fd, buffer, path: path)
        } catch {
            if ftruncate(fd, off_t(segmentBytes)) != 0 {
                damaged = Self.systemError("ftruncate after a failed write", path)
            }
            throw error
        }
        segmentBytes += buffer.readableBytes
    }

    /// Writes one record (see `append(_:)` for a batch).
    func append(_ record: JournalRecord) throws(JournalError) {
        try append([record])
    }

    /// A duplicate of the segment's descriptor, for an fsync on another thread (the caller closes it).
    func duplicateDescriptor() -> Int32 { dup(fd) }

    /// Flushes and closes the current segment and starts the next. Returns the closed segment's index.
    func rotate(sync: Bool) throws(JournalError) -> Int {
        if sync { _ = fsync(fd) }
        let closed = segment
        let next = try Self.openSegment(directory, segment + 1)
        close(fd)
        fd = next
        segment += 1
        segmentBytes = 0
        return closed
    }

    /// Writes `snapshot` atomically (temporary file, fsync, rename, fsync of the directory),
    /// then deletes the segments up to `closedSegment`, which it makes redundant. Blocking:
    /// run it on a thread pool.
    static func writeSnapshot(_ snapshot: JournalSnapshot, directory: String, closedSegment: Int) throws(JournalError) {
        try writeDurably(JournalCodec.encode(snapshot), to: "\(directory)/snapshot.bin", directory: directory)
        for index in try segmentIndices(in: directory) where index <= closedSegment {
            unlink(segmentPath(directory, index))
        }
    }

    // MARK: Files

    static func segmentPath(_ directory: String, _ index: Int) -> String {
        let digits = String(index)
        return "\(directory)/journal-\(String(repeating: "0", count: max(0, 8 - digits.count)))\(digits).log"
    }

    private static func segmentIndices(in directory: String) throws(JournalError) -> [Int] {
        guard let handle = opendir(directory) else { throw systemError("opendir", directory) }
        defer { closedir(handle) }
        var indices: [Int] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("journal-"), name.hasSuffix(".log"), let index = Int(name.dropFirst(8).dropLast(4)) {
                indices.append(index)
            }
        }
        return indices.sorted()
    }

    private static func openSegment(_ directory: String, _ index: Int) throws(JournalError) -> Int32 {
        let path = segmentPath(directory, index)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw systemError("open", path) }
        let directoryFD = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)  // the new file's name is durable before records go in
            close(directoryFD)
        }
        return fd
    }

    /// The whole file, or nil if it does not exist.
    static func readFile(_ path: String) throws(JournalError) -> ByteBuffer? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw systemError("open", path)
        }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        while true {
            buffer.reserveCapacity(minimumWritableBytes: 64 * 1024)
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { pointer in
                max(0, read(fd, pointer.baseAddress, pointer.count))
            }
            if count == 0 { return buffer }
        }
    }

    private static func writeDurably(_ bytes: ByteBuffer, to path: String, directory: String) throws(JournalError) {
        let temporary = path + ".tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw systemError("open", temporary) }
        do {
            try writeAll(fd, bytes, path: temporary)
        } catch {
            close(fd)
            throw error
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw systemError("fsync", temporary)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw systemError("rename", path) }
        let directoryFD = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: ByteBuffer, path: String) throws(JournalError) {
        var remaining = bytes
        while remaining.readableBytes > 0 {
            let written = remaining.withUnsafeReadableBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw systemError("write", path)
            }
            remaining.moveReaderIndex(forwardBy: written)
        }
    }

    private static func systemError(_ call: String, _ path: String) -> JournalError {
        JournalError("\(call) \(path): \(String(cString: strerror(errno)))")
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
