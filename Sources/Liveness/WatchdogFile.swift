// The file deploy/run watches (`--watchdog-file`): its modification time is set to now each
// time every event loop has proved that it turns. deploy/run kills a process whose file grew
// older than its bound, and restarts it.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file whose modification time says when the process last proved it is alive.
public struct WatchdogFile: Sendable, Equatable {
    /// The file's path.
    public let path: String

    /// The file at `path` (created by the first ``touch()``).
    public init(path: String) {
        self.path = path
    }

    /// Sets the file's times to now, creating it (empty, mode 0644 before the umask) if missing.
    /// One metadata update on a local file: it does not wait on anything else.
    public func touch() throws(WatchdogFileError) {
        if utimensat(AT_FDCWD, path, nil, 0) == 0 { return }
        guard errno == ENOENT else { throw .system("utimensat", path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .system("open", path) }
        close(fd)
    }
}

/// A watchdog file that could not be touched; the message names the file and the cause.
public struct WatchdogFileError: Error, CustomStringConvertible {
    /// What went wrong, for the operator.
    public let description: String

    static func system(_ call: String, _ path: String) -> WatchdogFileError {
        WatchdogFileError(description: "\(call) \(path): \(String(cString: strerror(errno)))")
    }
}
