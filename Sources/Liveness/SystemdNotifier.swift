// systemd's notification protocol (sd_notify(3)), spoken by hand: one datagram of
// newline-separated assignments (READY=1, WATCHDOG=1, STOPPING=1) sent to the unix socket that
// $NOTIFY_SOCKET names: a file path, or a name in the abstract namespace when it starts with
// "@". Also reads the watchdog time systemd asks for ($WATCHDOG_USEC, $WATCHDOG_PID).
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A notification that could not be sent; the message names the socket and the cause.
public struct SystemdNotifyError: Error, CustomStringConvertible {
    /// What went wrong, for the operator.
    public let description: String
}

/// Sends notifications to the service manager at one `NOTIFY_SOCKET` address.
public struct SystemdNotifier: Sendable, Equatable {
    /// Where the notifications go.
    public enum Address: Sendable, Equatable {
        /// A socket file, e.g. `/run/systemd/notify`.
        case path(String)
        /// A name in Linux's abstract socket namespace (`@name` in `NOTIFY_SOCKET`, without the `@`).
        case abstract(String)
    }

    /// The address parsed from `NOTIFY_SOCKET`.
    public let address: Address

    /// The notifier for a `NOTIFY_SOCKET` value; nil when it is unset or empty (not under a
    /// service manager), or not something systemd would set: neither an absolute path nor
    /// `@name`, or too long for a unix socket address.
    public init?(notifySocket: String?) {
        guard let notifySocket, let first = notifySocket.first else { return nil }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        switch first {
        case "/":
            // The path and its terminating NUL must fit.
            guard notifySocket.utf8.count < capacity, !notifySocket.utf8.contains(0) else { return nil }
            address = .path(notifySocket)
        case "@":
            let name = String(notifySocket.dropFirst())
            // A leading NUL, then the name (no terminator): the whole sun_path at most.
            guard !name.isEmpty, name.utf8.count < capacity else { return nil }
            address = .abstract(name)
        default:
            return nil
        }
    }

    /// The bytes of `sun_path` for this address and the address length to pass to `sendto`.
    /// An abstract name is a NUL followed by the name, its length counting exactly those bytes.
    var socketAddress: (address: sockaddr_un, length: socklen_t) {
        let pathBytes: [UInt8]
        switch address {
        case .path(let path): pathBytes = Array(path.utf8) + [0]
        case .abstract(let name): pathBytes = [0] + Array(name.utf8)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: pathBytes) }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        return (address, socklen_t(offset + pathBytes.count))
    }

    /// Sends `message` (assignments such as `"READY=1"`, several separated by newlines) as one
    /// datagram. Never blocks: a service manager that does not take it makes this throw.
    public func send(_ message: String) throws(SystemdNotifyError) {
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else { throw error("socket") }
        defer { close(fd) }
        var (address, length) = socketAddress
        let payload = Array(message.utf8)
        #if canImport(Glibc)
            let flags = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)
        #else
            let flags = Int32(MSG_DONTWAIT)
        #endif
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { bytes in
                    sendto(fd, bytes.baseAddress, bytes.count, flags, socketAddress, length)
                }
            }
        }
        guard sent == payload.count else { throw error("sendto") }
    }

    private func error(_ call: String) -> SystemdNotifyError {
        let name: String
        switch address {
        case .path(let path): name = path
        case .abstract(let abstract): name = "@" + abstract
        }
        return SystemdNotifyError(description: "\(call) to NOTIFY_SOCKET \(name): \(String(cString: strerror(errno)))")
    }

    /// The watchdog time systemd set for this process (`WatchdogSec=`): `WATCHDOG_USEC`, in
    /// microseconds, unless `WATCHDOG_PID` names another process. Nil when there is none.
    public static func watchdogTime(usec: String?, pid: String?, ownPID: pid_t) -> TimeAmount? {
        guard let usec, let microseconds = Int64(usec), microseconds > 0 else { return nil }
        if let pid, !pid.isEmpty, pid_t(pid) != ownPID { return nil }
        return .microseconds(microseconds)
    }
}
