// The file operations the journal needs, behind one small interface: the real one (POSIX calls)
// here, and in the tests one that injects ENOSPC, short writes, failed fsyncs, read errors and
// power loss. Every failure is a `JournalError` naming the call, the file and the cause.
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One open journal file, appended to by the event loop and synced from a thread pool.
protocol JournalFile: AnyObject, Sendable {
    /// The file's path, for messages.
    var path: String { get }
    /// Appends as much of `bytes` as the file system takes and returns how many that was (a
    /// short write returns fewer); throws when nothing could be written.
    func write(_ bytes: UnsafeRawBufferPointer) throws(JournalError) -> Int
    /// Forces what was written to stable storage (fsync).
    func sync() throws(JournalError)
    /// Cuts the file back to `size` bytes (ftruncate).
    func truncate(to size: Int) throws(JournalError)
}

/// The directory operations of the journal. Implementations are safe to call from any thread.
protocol JournalFileSystem: Sendable {
    /// Creates the directory unless it exists.
    func createDirectory(_ path: String) throws(JournalError)
    /// The names in a directory.
    func names(in directory: String) throws(JournalError) -> [String]
    /// Opens a file for appending, creating it; with `truncating`, empties it first.
    func open(_ path: String, truncating: Bool) throws(JournalError) -> any JournalFile
    /// The whole file, or nil if it does not exist. A read error names the file and the offset.
    func read(_ path: String) throws(JournalError) -> ByteBuffer?
    /// Cuts a file that is not open back to `size` bytes.
    func truncate(_ path: String, to size: Int) throws(JournalError)
    func rename(_ path: String, to newPath: String) throws(JournalError)
    func remove(_ path: String) throws(JournalError)
    /// Makes the directory's entries (new, renamed, removed files) durable.
    func syncDirectory(_ path: String) throws(JournalError)
    /// Identifies the running kernel: when it is the one that wrote the journal, the page cache
    /// survived and every written byte is there, synced or not.
    func bootID() -> String
}

/// The journal's files on the local file system (POSIX calls).
struct PosixJournalFiles: JournalFileSystem {
    init() {}

    func createDirectory(_ path: String) throws(JournalError) {
        if mkdir(path, 0o750) != 0, errno != EEXIST { throw .system("mkdir", path) }
    }

    func names(in directory: String) throws(JournalError) -> [String] {
        guard let handle = opendir(directory) else { throw .system("opendir", directory) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            names.append(
                withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names
    }

    func open(_ path: String, truncating: Bool) throws(JournalError) -> any JournalFile {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncating ? O_TRUNC : 0), 0o640)
        guard fd >= 0 else { throw .system("open", path) }
        return PosixJournalFile(path: path, fd: fd)
    }

    func read(_ path: String) throws(JournalError) -> ByteBuffer? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .system("open", path)
        }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        while true {
            var failure: Int32 = 0
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { pointer in
                let count = Glibc.read(fd, pointer.baseAddress, pointer.count)
                if count < 0 { failure = errno }
                return max(0, count)
            }
            if failure == EINTR { continue }
            if failure != 0 {
                throw JournalError("read \(path) at byte \(buffer.writerIndex): \(String(cString: strerror(failure)))")
            }
            if count == 0 { return buffer }
        }
    }

    func truncate(_ path: String, to size: Int) throws(JournalError) {
        guard Glibc.truncate(path, off_t(size)) == 0 else { throw .system("truncate", path) }
    }

    func rename(_ path: String, to newPath: String) throws(JournalError) {
        guard Glibc.rename(path, newPath) == 0 else { throw .system("rename", newPath) }
    }

    func remove(_ path: String) throws(JournalError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw .system("unlink", path) }
    }

    func syncDirectory(_ path: String) throws(JournalError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .system("fsync", path) }
    }

    func bootID() -> String {
        let fd = Glibc.open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).filter { !$0.isWhitespace }
    }
}

/// An open file descriptor; closed when the last user lets go (a sync on the thread pool may
/// outlive the segment's rotation).
final class PosixJournalFile: JournalFile {
    let path: String
    private let fd: Int32

    init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    func write(_ bytes: UnsafeRawBufferPointer) throws(JournalError) -> Int {
        while true {
            let written = Glibc.write(fd, bytes.baseAddress, bytes.count)
            if written >= 0 { return written }
            if errno != EINTR { throw .system("write", path) }
        }
    }

    func sync() throws(JournalError) {
        guard fsync(fd) == 0 else { throw .system("fsync", path) }
    }

    func truncate(to size: Int) throws(JournalError) {
        guard ftruncate(fd, off_t(size)) == 0 else { throw .system("ftruncate", path) }
    }
}

extension JournalError {
    /// The failure of a system call on `path`, with errno's text.
    static func system(_ call: String, _ path: String) -> JournalError {
        JournalError("\(call) \(path): \(String(cString: strerror(errno)))")
    }
}
