// Raw clients for the hostile-input tests: a blocking unix socket with a deadline on every
// read and write, FastCGI records written byte by byte as the specification lays them out (not
// with Herald's code), and a way to run blocking work off Swift's cooperative pool.
import Foundation
import SocketFiles

#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking socket work on a thread of its own, so that waiting on a read never holds one
/// of the few cooperative threads the rest of the test (and SwiftNIO's futures) need.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A connected unix stream socket, used from one thread. Writes never raise SIGPIPE and give up
/// after two seconds; reads take a deadline.
final class RawUnixSocket {
    let fd: Int32
    private var isOpen = true

    init(path: String) throws {
        guard let fd = UnixListener.connect(path) else {
            throw LiveStackError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    /// Writes all of `bytes`; false once the peer is gone (or stops reading for two seconds).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// Says "no more input" (the peer reads EOF) while the reply can still be read.
    func shutdownWrite() {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads until the peer closes (`eof`), `done` holds for what arrived, or `seconds` pass.
    /// A reset connection counts as closed.
    func read(within seconds: Double, until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], eof: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return (bytes, false) }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, remaining * 1000)))
            if ready < 0, errno == EINTR { continue }
            if ready <= 0 { return (bytes, false) }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { return (bytes, true) }
            bytes += chunk[0..<count]
            if done(bytes) { return (bytes, false) }
        }
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        _ = Glibc.close(fd)
    }
}

/// FastCGI 1.0 records as bytes: header {version, type, requestId B1 B0, contentLength B1 B0,
/// paddingLength, reserved}, content, padding.
enum FastCGIWire {
    static let beginRequest: UInt8 = 1
    static let abortRequest: UInt8 = 2
    static let endRequest: UInt8 = 3
    static let params: UInt8 = 4
    static let stdin: UInt8 = 5
    static let stdout: UInt8 = 6
    static let stderr: UInt8 = 7
    static let getValues: UInt8 = 9
    static let unknownType: UInt8 = 11

    /// One record. `claimedLength` writes a content length other than the content's own.
    static func record(
        _ type: UInt8, id: UInt16 = 1, _ content: [UInt8] = [], version: UInt8 = 1, claimedLength: Int? = nil
    ) -> [UInt8] {
        let length = claimedLength ?? content.count
        let padding = claimedLength == nil ? -content.count & 7 : 0
        return [
            version, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
            UInt8(padding), 0,
        ] + content + [UInt8](repeating: 0, count: padding)
    }

    /// FCGI_BEGIN_REQUEST: role (1 responder), flags (1 keep the connection).
    static func begin(id: UInt16 = 1, role: UInt16 = 1, flags: UInt8 = 0) -> [UInt8] {
        record(beginRequest, id: id, [UInt8(role >> 8), UInt8(role & 0xFF), flags, 0, 0, 0, 0, 0])
    }

    /// A name-value pair: each length in one byte below 128, else four with the top bit set.
    static func nameValue(_ name: [UInt8], _ value: [UInt8]) -> [UInt8] {
        length(name.count) + length(value.count) + name + value
    }

    static func length(_ count: Int) -> [UInt8] {
        count < 128
            ? [UInt8(count)]
            : [
                UInt8(count >> 24 & 0x7F | 0x80), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF),
                UInt8(count & 0xFF),
            ]
    }

    /// PARAMS records holding `pairs` (split at 65535 bytes), then the empty one that ends them.
    static func params(_ pairs: [(String, String)], id: UInt16 = 1) -> [UInt8] {
        paramsRecords(pairs.flatMap { nameValue(Array($0.0.utf8), Array($0.1.utf8)) }, id: id)
    }

    /// Raw params bytes cut into PARAMS records, then the empty one.
    static func paramsRecords(_ body: [UInt8], id: UInt16 = 1) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < body.count {
            let end = min(body.count, index + 65535)
            out += record(params, id: id, Array(body[index..<end]))
            index = end
        }
        return out + record(params, id: id)
    }

    /// The params nginx sends for a request (the ones Herald reads).
    static func cgiParams(method: String, path: String, query: String = "", headers: [(String, String)] = [])
        -> [(String, String)]
    {
        [
            ("REQUEST_METHOD", method), ("DOCUMENT_URI", path),
            ("REQUEST_URI", query.isEmpty ? path : "\(path)?\(query)"), ("QUERY_STRING", query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ] + headers
    }

    /// A whole request as nginx sends it: BEGIN_REQUEST, PARAMS, STDIN (`body`, then empty).
    static func request(
        method: String = "GET", path: String, query: String = "", headers: [(String, String)] = [],
        body: [UInt8] = [], id: UInt16 = 1
    ) -> [UInt8] {
        begin(id: id) + params(cgiParams(method: method, path: path, query: query, headers: headers), id: id)
            + (body.isEmpty ? [] : record(stdin, id: id, body)) + record(stdin, id: id)
    }

    struct Record: Equatable {
        var type: UInt8
        var id: UInt16
        var content: [UInt8]
    }

    /// The whole records in `bytes`.
    static func records(_ bytes: [UInt8]) -> [Record] {
        var out: [Record] = []
        var index = 0
        while index + 8 <= bytes.count {
            let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
            let padding = Int(bytes[index + 6])
            guard index + 8 + length <= bytes.count else { break }
            out.append(
                Record(
                    type: bytes[index + 1], id: UInt16(bytes[index + 2]) << 8 | UInt16(bytes[index + 3]),
                    content: Array(bytes[(index + 8)..<(index + 8 + length)])))
            index += 8 + length + padding
        }
        return out
    }

    /// The STDOUT text of request `id`.
    static func stdoutText(_ records: [Record], id: UInt16 = 1) -> String {
        String(decoding: records.filter { $0.type == stdout && $0.id == id }.flatMap(\.content), as: UTF8.self)
    }

    /// The `Status:` of a CGI response, if it has one.
    static func status(_ stdoutText: String) -> Int? {
        guard stdoutText.hasPrefix("Status: ") else { return nil }
        return Int(stdoutText.dropFirst(8).prefix(3))
    }

    /// Whether `bytes` end a response: an END_REQUEST record for `id` arrived.
    static func hasEnd(_ bytes: [UInt8], id: UInt16 = 1) -> Bool {
        records(bytes).contains { $0.type == endRequest && $0.id == id }
    }
}
