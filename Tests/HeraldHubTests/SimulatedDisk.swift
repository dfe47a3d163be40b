// A journal file system in memory that fails on demand: a disk that fills up (short writes,
// then ENOSPC), fsyncs that fail, reads that fail at an offset, and power loss. A file is its
// synced bytes plus its unsynced bytes; a power loss keeps only the synced ones, and only
// files whose name a directory sync made durable.
import NIOConcurrencyHelpers
import NIOCore

@testable import HeraldHub

#if canImport(Glibc)
    import Glibc
#endif

/// An in-memory `JournalFileSystem` with fault injection. Safe from any thread.
final class SimulatedDisk: JournalFileSystem {
    struct File {
        var synced: [UInt8] = []
        var unsynced: [UInt8] = []
        /// Whether the file's name survives a power loss (a directory sync happened after its creation).
        var nameDurable = false
        var bytes: [UInt8] { synced + unsynced }
    }

    struct State {
        var files: [String: File] = [:]
        var directories: Set<String> = []
        /// Bytes that still fit (nil: unlimited). A write beyond it is short, then fails with ENOSPC.
        var freeBytes: Int?
        /// The next write writes at most this many bytes.
        var shortWrite: Int?
        /// Every fsync fails with EIO while set.
        var failSync = false
        /// Reading this file fails with EIO at this offset.
        var readError: (path: String, offset: Int)?
        var boot = 1
        var syncs = 0
    }

    let state = NIOLockedValueBox(State())

    init() {}

    // MARK: Faults

    /// Makes `bytes` more bytes fit on the disk (nil: unlimited).
    func setFreeBytes(_ bytes: Int?) { state.withLockedValue { $0.freeBytes = bytes } }
    func setShortWrite(_ bytes: Int?) { state.withLockedValue { $0.shortWrite = bytes } }
    func setFailSync(_ fail: Bool) { state.withLockedValue { $0.failSync = fail } }
    func setReadError(path: String, offset: Int) { state.withLockedValue { $0.readError = (path, offset) } }

    /// Everything not synced disappears, and the machine boots again.
    func powerLoss() {
        state.withLockedValue { state in
            state.files = state.files.filter { $0.value.nameDurable }.mapValues { file in
                var file = file
                file.unsynced = []
                return file
            }
            state.boot += 1
        }
    }

    /// The file's bytes as a reader sees them now.
    func contents(_ path: String) -> [UInt8]? { state.withLockedValue { $0.files[path]?.bytes } }
    func setContents(_ path: String, _ bytes: [UInt8]) {
        state.withLockedValue { $0.files[path] = File(synced: bytes, unsynced: [], nameDurable: true) }
    }
    var syncCount: Int { state.withLockedValue { $0.syncs } }

    // MARK: JournalFileSystem

    func createDirectory(_ path: String) throws(JournalError) {
        state.withLockedValue { _ = $0.directories.insert(path) }
    }

    func names(in directory: String) throws(JournalError) -> [String] {
        state.withLockedValue { state in
            state.files.keys.filter { $0.hasPrefix(directory + "/") }.map { String($0.dropFirst(directory.count + 1)) }
        }
    }

    func open(_ path: String, truncating: Bool) throws(JournalError) -> any JournalFile {
        state.withLockedValue { state in
            if truncating || state.files[path] == nil {
                var file = File()
                file.nameDurable = state.files[path]?.nameDurable ?? false
                state.files[path] = file
            }
        }
        return SimulatedFile(path: path, disk: self)
    }

    func read(_ path: String) throws(JournalError) -> ByteBuffer? {
        let (bytes, failAt) = state.withLockedValue { state in
            (state.files[path]?.bytes, state.readError?.path == path ? state.readError?.offset : nil)
        }
        guard let bytes else { return nil }
        if let failAt, failAt <= bytes.count {
            throw JournalError("read \(path) at byte \(failAt): \(String(cString: strerror(EIO)))")
        }
        return ByteBuffer(bytes: bytes)
    }

    func truncate(_ path: String, to size: Int) throws(JournalError) {
        try truncateFile(path, to: size)
    }

    func rename(_ path: String, to newPath: String) throws(JournalError) {
        try state.withLockedValue { state -> Result<Void, JournalError> in
            guard var file = state.files.removeValue(forKey: path) else {
                return .failure(JournalError("rename \(newPath): \(String(cString: strerror(ENOENT)))"))
            }
            file.nameDurable = true  // simplification: a rename is durable at once
            state.files[newPath] = file
            return .success(())
        }.get()
    }

    func remove(_ path: String) throws(JournalError) {
        state.withLockedValue { _ = $0.files.removeValue(forKey: path) }
    }

    func syncDirectory(_ path: String) throws(JournalError) {
        state.withLockedValue { state in
            for key in state.files.keys where key.hasPrefix(path + "/") { state.files[key]!.nameDurable = true }
        }
    }

    func bootID() -> String { state.withLockedValue { "boot-\($0.boot)" } }

    // MARK: Files

    fileprivate func write(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(JournalError) -> Int {
        try state.withLockedValue { state -> Result<Int, JournalError> in
            var count = bytes.count
            if let short = state.shortWrite {
                count = min(count, short)
                state.shortWrite = nil
            }
            if let free = state.freeBytes {
                guard free > 0 else {
                    return .failure(JournalError("write \(path): \(String(cString: strerror(ENOSPC)))"))
                }
                count = min(count, free)
                state.freeBytes = free - count
            }
            state.files[path, default: File()].unsynced.append(contentsOf: bytes.prefix(count))
            return .success(count)
        }.get()
    }

    fileprivate func sync(_ path: String) throws(JournalError) {
        try state.withLockedValue { state -> Result<Void, JournalError> in
            state.syncs += 1
            if state.failSync { return .failure(JournalError("fsync \(path): \(String(cString: strerror(EIO)))")) }
            guard var file = state.files[path] else { return .success(()) }
            file.synced += file.unsynced
            file.unsynced = []
            state.files[path] = file
            return .success(())
        }.get()
    }

    fileprivate func truncateFile(_ path: String, to size: Int) throws(JournalError) {
        state.withLockedValue { state in
            guard var file = state.files[path] else { return }
            let freed = max(0, file.bytes.count - size)
            if file.synced.count > size {
                file.synced = Array(file.synced.prefix(size))
                file.unsynced = []
            } else {
                file.unsynced = Array(file.unsynced.prefix(size - file.synced.count))
            }
            state.files[path] = file
            if let free = state.freeBytes { state.freeBytes = free + freed }
        }
    }
}

/// An open file of a `SimulatedDisk`.
final class SimulatedFile: JournalFile {
    let path: String
    let disk: SimulatedDisk

    init(path: String, disk: SimulatedDisk) {
        self.path = path
        self.disk = disk
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(JournalError) -> Int { try disk.write(path, bytes) }
    func sync() throws(JournalError) { try disk.sync(path) }
    func truncate(to size: Int) throws(JournalError) { try disk.truncateFile(path, to: size) }
}

/// Blocking work held until the test runs it: shows what the hub does while an fsync is in flight.
final class HeldWork {
    private var jobs: [(@Sendable () throws -> Void, EventLoopPromise<Void>)] = []

    var blockingWork: BlockingWork {
        BlockingWork { loop, work in
            let promise = loop.makePromise(of: Void.self)
            self.jobs.append((work, promise))
            return promise.futureResult
        }
    }

    var count: Int { jobs.count }

    /// Runs every job held so far (and those they lead to, until none is left).
    func runAll() {
        while !jobs.isEmpty {
            let (work, promise) = jobs.removeFirst()
            do {
                try work()
                promise.succeed(())
            } catch {
                promise.fail(error)
            }
        }
    }
}
