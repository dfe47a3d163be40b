// Listening unix sockets as an operator expects them: refused if another process serves the
// path, a stale file replaced, the mode and group set before anyone can connect, and the path
// appearing only once the socket accepts (so `test -S path` is a readiness check).
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A socket file that could not be set up; the message names the path and the cause.
public struct SocketFileError: Error, CustomStringConvertible {
    /// What went wrong, for the operator.
    public let description: String

    init(_ description: String) { self.description = description }

    static func system(_ call: String, _ path: String) -> SocketFileError {
        SocketFileError("\(call) \(path): \(String(cString: strerror(errno)))")
    }
}

/// Creates listening unix stream sockets.
public enum UnixListener {
    /// Opens a listening socket at `path` with permission bits `mode` and, if given, group `group`.
    ///
    /// The socket is bound under a temporary name beside `path`, given its mode and group, set
    /// listening, and only then renamed to `path`. A file already at `path` that nobody accepts
    /// on is replaced; one that a live process serves makes this fail.
    /// - Returns: the listening descriptor (the caller owns it).
    public static func listen(path: String, mode: mode_t, group: String? = nil, backlog: Int32 = 1024)
        throws(SocketFileError) -> Int32
    {
        if isServed(path) {
            throw SocketFileError("\(path) is already served by another process; stop it first or choose another path")
        }
        let temporary = "\(path).\(getpid()).tmp"
        guard temporary.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw SocketFileError("socket path \(path) is too long for a unix socket (at most about 100 bytes)")
        }
        unlink(temporary)
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw .system("socket for", path) }
        var ok = false
        defer {
            if !ok {
                close(fd)
                unlink(temporary)
            }
        }
        var address = Self.address(temporary)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw .system("bind", temporary) }
        if let group {
            guard let entry = getgrnam(group) else {
                throw SocketFileError("unknown group \(group) for socket \(path)")
            }
            guard chown(temporary, uid_t.max, entry.pointee.gr_gid) == 0 else { throw .system("chown", temporary) }
        }
        guard chmod(temporary, mode) == 0 else { throw .system("chmod", temporary) }
        guard Glibc.listen(fd, backlog) == 0 else { throw .system("listen on", temporary) }
        guard rename(temporary, path) == 0 else { throw .system("rename to", path) }
        ok = true
        return fd
    }

    /// Whether a process accepts connections on the unix socket at `path`.
    public static func isServed(_ path: String) -> Bool {
        guard let fd = connect(path) else { return false }
        close(fd)
        return true
    }

    /// Connects a blocking unix stream socket to `path`; `nil` if nobody accepts there.
    public static func connect(_ path: String) -> Int32? {
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        var address = Self.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Removes the socket file at `path` (on shutdown).
    public static func remove(_ path: String) {
        unlink(path)
    }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}
