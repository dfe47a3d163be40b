// heraldctl's connection to the hub's admin socket: one request line out, one reply in.
import HeraldProtocol
import SocketFiles

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking admin-socket client (heraldctl does one thing and exits).
struct AdminClient {
    let fd: Int32

    /// Connects to the admin socket at `path`.
    init(path: String) throws(AdminClientError) {
        guard let fd = UnixListener.connect(path) else {
            throw AdminClientError(
                "cannot connect to the admin socket \(path): \(String(cString: strerror(errno))) (is herald-hub running? set --socket or HERALD_ADMIN_SOCKET)"
            )
        }
        self.fd = fd
    }

    /// Sends one request line.
    func send(_ words: [String]) throws(AdminClientError) {
        let line = AdminLine.join(words) + "\n"
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else {
                throw AdminClientError("writing to the admin socket failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Sends one request and reads its reply (up to the empty line that ends it).
    func request(_ words: [String]) throws(AdminClientError) -> AdminReply {
        // A hub that refuses this connection says why and closes at once: if the request can
        // no longer be written, its explanation may still be there to read.
        var sendError: AdminClientError?
        do {
            try send(words)
        } catch {
            sendError = error
        }
        var lines: [String] = []
        var reader = LineReader(fd: fd)
        while let text = reader.next() {
            if text.isEmpty { break }
            lines.append(text)
        }
        guard let status = lines.first else {
            throw sendError ?? AdminClientError("the hub closed the admin connection without a reply")
        }
        guard let reply = AdminReply(lines: lines) else {
            throw AdminClientError("unexpected reply from the hub: \(status)")
        }
        return reply
    }

    /// Reads lines until the connection closes (for streaming commands).
    func lines() -> LineReader { LineReader(fd: fd) }

    func close() { _ = Glibc.close(fd) }
}

/// Reads LF-terminated lines from a descriptor.
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }
}

/// heraldctl failed to talk to the hub.
struct AdminClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
