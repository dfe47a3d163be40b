// One libfcgi request slot, used by exactly one accept thread: accept, read params and body,
// answer short requests, or hand the connected socket over to the event loop.
import CFastCGI
import SocketFiles

#if canImport(Glibc)
    import Glibc
#endif

/// What one `FastCGIConnection.accept` came to.
enum FastCGIAcceptOutcome {
    /// A request's BEGIN_REQUEST and PARAMS are read: answer it or hand it over.
    case request
    /// A peer that may not use the socket (SO_PEERCRED): closed before a byte was read.
    case refused(PeerCredentials)
    /// libfcgi closed the connection: bad records, or silent past the receive timeout.
    case closed
    /// `accept` itself failed with this errno (after `shutdown` of the listening socket: stop).
    case acceptFailed(Int32)
}

/// Owns an `FCGX_Request`. libfcgi's streams point back at the request, so it lives at a fixed
/// address for its whole life and is never copied. Made and used on one thread only.
///
/// Connections are accepted here, not inside libfcgi: each peer is checked and given a receive
/// timeout before libfcgi reads from it, and then handed to libfcgi in the request slot
/// (`ipcFd`, with `keepConnection` set so that `FCGX_Accept_r` takes it instead of closing it).
/// libfcgi's own listening socket is `-1`: when it drops a bad connection it tries to accept
/// the next one itself, and that fails at once (EBADF) and returns here, so no connection ever
/// skips the check.
final class FastCGIConnection {
    private let request: UnsafeMutablePointer<FCGX_Request>
    private let listenFD: Int32
    private let allowsPeer: (uid_t) -> Bool
    private let timeoutSeconds: Double
    /// What libfcgi is given as its listening socket: none (see above).
    private static let noListener: Int32 = -1

    init(listenFD: Int32, receiveTimeout: Double, allowsPeer: @escaping (uid_t) -> Bool) {
        self.listenFD = listenFD
        self.allowsPeer = allowsPeer
        timeoutSeconds = receiveTimeout
        request = .allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        FCGX_InitRequest(request, Self.noListener, 0)
    }

    deinit {
        FCGX_Free(request, 1)
        request.deallocate()
    }

    /// Waits for the next connection, checks its peer, and reads its BEGIN_REQUEST and PARAMS.
    func accept() -> FastCGIAcceptOutcome {
        let fd = Glibc.accept(listenFD, nil, nil)
        guard fd >= 0 else { return .acceptFailed(errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // (Glibc does not export accept4)
        let peer = PeerCredentials.of(socket: fd)
        guard let peer, allowsPeer(peer.uid) else {
            close(fd)
            // A peer the kernel does not name is refused too, as uid -1.
            return .refused(peer ?? PeerCredentials(pid: 0, uid: uid_t.max, gid: gid_t.max))
        }
        SocketTimeouts.set(fd, seconds: timeoutSeconds)
        // A connection libfcgi kept (a peer that asked for FCGI_KEEP_CONN) is not reused.
        if request.pointee.ipcFd >= 0 { FCGX_Free(request, 1) }
        request.pointee.ipcFd = fd
        request.pointee.keepConnection = 1
        return FCGX_Accept_r(request) == 0 ? .request : .closed
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

    /// What reading a request's STDIN came to.
    enum Body {
        /// STDIN to its end.
        case complete([UInt8])
        /// More than the limit.
        case tooLarge
        /// The connection failed or stayed silent past the receive timeout before STDIN ended.
        case failed
    }

    /// Reads STDIN to its end, at most `limit` bytes.
    func readBody(limit: Int) -> Body {
        var body: [UInt8] = []
        var chunk = [CChar](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBufferPointer {
                FCGX_GetStr($0.baseAddress, Int32($0.count), request.pointee.in)
            }
            if count <= 0 { return FCGX_GetError(request.pointee.in) == 0 ? .complete(body) : .failed }
            body.append(contentsOf: chunk[0..<Int(count)].map { UInt8(bitPattern: $0) })
            if body.count > limit { return .tooLarge }
        }
    }

    /// Closes a connection whose request cannot be answered (its STDIN failed), without a reply.
    func abandon() {
        FCGX_Free(request, 1)
        FCGX_InitRequest(request, Self.noListener, 0)
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
        FCGX_InitRequest(request, Self.noListener, 0)
        return fd
    }
}
