// Who is on the other end of a unix socket: the kernel's record of the peer process
// (SO_PEERCRED), taken when it connected, which the peer cannot forge.
#if canImport(Glibc)
    import Glibc
#endif

/// `struct ucred` of <sys/socket.h> (Linux), which Swift's Glibc module does not export: the
/// peer's process id, user id and group id at `connect` time. Its layout is the kernel's, so it
/// can also be read as a socket option value (SwiftNIO's `unsafeGetSocketOption`).
public struct PeerCredentials: Sendable, Equatable {
    /// The peer's process id.
    public var pid: pid_t = 0
    /// The peer's user id.
    public var uid: uid_t = 0
    /// The peer's group id.
    public var gid: gid_t = 0

    /// Credentials with these ids.
    public init(pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The peer of the connected unix socket `fd`, or nil if the kernel does not say.
    public static func of(socket fd: Int32) -> PeerCredentials? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<PeerCredentials>.size)
        else { return nil }
        return credentials
    }
}

/// Time limits on a blocking socket's reads and writes.
public enum SocketTimeouts {
    /// Makes a blocking `read` or `write` on `fd` fail with `EAGAIN` after `seconds` without
    /// progress (SO_RCVTIMEO, SO_SNDTIMEO). Returns false if the kernel refused either.
    @discardableResult
    public static func set(_ fd: Int32, seconds: Double) -> Bool {
        let whole = seconds.rounded(.down)
        var limit = timeval(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, size) == 0
            && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, size) == 0
    }
}
