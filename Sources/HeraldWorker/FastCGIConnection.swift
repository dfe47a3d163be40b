// One libfcgi request slot, used by exactly one accept thread: accept, read params and body,
// answer short requests, or hand the connected socket over to the event loop.
import CFastCGI

#if canImport(Glibc)
    import Glibc
#endif

/// Owns an `FCGX_Request`. libfcgi's streams point back at the request, so it lives at a fixed
/// address for its whole life and is never copied. Made and used on one thread only.
final class FastCGIConnection {
    private let request: UnsafeMutablePointer<FCGX_Request>
    private let listenFD: Int32

    init(listenFD: Int32) {
        self.listenFD = listenFD
        request = .allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        FCGX_InitRequest(request, listenFD, 0)
    }

    deinit {
        FCGX_Free(request, 1)
        request.deallocate()
    }

    /// Waits for the next request and reads its BEGIN_REQUEST and PARAMS. Returns libfcgi's
    /// result: 0, or a negative errno (after `shutdown` of the listening socket: stop).
    func accept() -> Int32 {
        FCGX_Accept_r(request)
    }

    /// nginx's request id (always 1 with `fastcgi_keep_conn off`, but taken as sent).
    var requestID: UInt16 { UInt16(truncatingIfNeeded: request.pointee.requestId) }

    /// The request's params (CGI variables) that `RequestHead` reads; the others (nginx sends
    /// about thirty) are not copied out. A param without `=` is skipped.
    func params() -> [String: String] {
        var params: [String: String] = [:]
        guard var entry = request.pointee.envp else { return params }
        while let pointer = entry.pointee {
            entry += 1
            // The name is compared in place; only a wanted param becomes Swift strings.
            guard let equals = strchr(pointer, Int32(UInt8(ascii: "="))) else { continue }
            let nameLength = pointer.distance(to: equals)
            guard let name = RequestHead.paramNames.first(where: { wanted in
                wanted.utf8.count == nameLength && strncmp(pointer, wanted, nameLength) == 0
            }) else { continue }
            params[name] = String(cString: equals + 1)
        }
        return params
    }

    /// Reads STDIN to its end. Returns `nil` if it holds more than `limit` bytes.
    func readBody(limit: Int) -> [UInt8]? {
        var body: [UInt8] = []
        var chunk = [CChar](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBufferPointer {
                FCGX_GetStr($0.baseAddress, Int32($0.count), request.pointee.in)
            }
            if count <= 0 { return body }
            body.append(contentsOf: chunk[0..<Int(count)].map { UInt8(bitPattern: $0) })
            if body.count > limit { return nil }
        }
    }

    /// Writes a whole CGI response (headers and body) and finishes the request.
    func respond(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = bytes.withMemoryRebound(to: CChar.self) {
                FCGX_PutStr($0.baseAddress, Int32($0.count), request.pointee.out)
            }
        }
        FCGX_Finish_r(request)
    }

    /// Gives up libfcgi's hold on the connection and returns its socket, still open, for the
    /// event loop to write the stream. The slot is initialised again, as it must be: without it
    /// the next accept would close the descriptor the event loop now owns.
    func detachSocket() -> Int32 {
        FCGX_Free(request, 0)
        let fd = request.pointee.ipcFd
        FCGX_InitRequest(request, listenFD, 0)
        return fd
    }
}
