// Unix datagram sockets the tests bind to stand in for systemd's notification socket: a file
// path or a name in the abstract namespace, read without blocking (the datagram is queued by
// the time the sender's sendto returns).
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A bound datagram socket; closed (and its file removed) by `close()`.
final class DatagramReceiver {
    let fd: Int32
    /// The `NOTIFY_SOCKET` value that names it.
    let notifySocket: String
    private let path: String?

    /// Binds a socket file in a fresh temporary directory.
    static func path() throws -> DatagramReceiver {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "herald-notify-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("notify").path
        var bytes = Array(path.utf8) + [0]
        return try DatagramReceiver(sunPath: &bytes, notifySocket: path, path: path)
    }

    /// Binds a unique name in the abstract namespace (a NUL, then the name; no file).
    static func abstract() throws -> DatagramReceiver {
        let name = "herald-test-notify-\(getpid())-\(UUID().uuidString.prefix(8))"
        var bytes = [0] + Array(name.utf8)
        return try DatagramReceiver(sunPath: &bytes, notifySocket: "@" + name, path: nil)
    }

    private init(sunPath bytes: inout [UInt8], notifySocket: String, path: String?) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ReceiverError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw ReceiverError("bind \(notifySocket): \(errno)")
        }
        self.fd = fd
        self.notifySocket = notifySocket
        self.path = path
    }

    /// Every datagram waiting now, oldest first.
    func received() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count >= 0 else { break }
            messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
        return messages
    }

    func close() {
        Glibc.close(fd)
        if let path {
            unlink(path)
            rmdir((path as NSString).deletingLastPathComponent)
        }
    }
}

struct ReceiverError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
