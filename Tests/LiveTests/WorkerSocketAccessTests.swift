// Who may talk FastCGI to a worker, and for how long: every accepted connection's peer is
// checked (SO_PEERCRED) before libfcgi reads a byte, so a process the socket's mode lets
// connect but whose user is not allowed gets the connection closed; and a peer that connects
// and says nothing holds a request thread for --receive-timeout at most, not for good.
import Foundation
import HeraldClient
import SocketFiles
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension LiveSuites {
    @Suite("Worker socket access")
    struct WorkerSocketAccessTests {
        /// Sends `request` to the unix socket `path` as user 65534 (nobody, through setpriv and
        /// python3), half-closes, and returns what came back before the worker closed (5 s at most).
        static func exchangeAsNobody(_ path: String, _ request: [UInt8]) throws -> [UInt8] {
            let script = """
                import socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(sys.argv[1])
                try:
                    # A refused peer may be closed before its request is written: not an error here.
                    s.sendall(bytes.fromhex(sys.argv[2]))
                    s.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                data = b""
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except (socket.timeout, ConnectionResetError):
                    pass
                sys.stdout.write(data.hex())
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = [
                "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, path,
                request.map { String(format: "%02x", $0) }.joined(),
            ]
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw LiveStackError("the client as uid 65534 failed (status \(process.terminationStatus)): \(errorText)")
            }
            let hex = Array(String(decoding: data, as: UTF8.self).utf8)
            return stride(from: 0, to: hex.count - 1, by: 2).compactMap {
                UInt8(String(decoding: hex[$0...$0 + 1], as: UTF8.self), radix: 16)
            }
        }

        @Test(
            "a peer whose user is not allowed is closed before libfcgi reads its request, even on a 0666 socket; --allow-uid lets it in"
        )
        func workerSocketPeerCredentials() async throws {
            for allowed in [false, true] {
                let arguments = "--socket-mode 0666" + (allowed ? " --allow-uid 65534" : "")
                try await LiveStack.with(workers: 1, environment: ["HERALD_WORKER_ARGS": arguments]) { stack in
                    chmod(stack.runDirectory, 0o711)  // let uid 65534 reach the socket file
                    let socket = "\(stack.runDirectory)/worker-1.sock"
                    let reply = try await onOwnThread {
                        try Self.exchangeAsNobody(socket, FastCGIWire.request(path: "/status"))
                    }
                    let stdout = FastCGIWire.stdoutText(FastCGIWire.records(reply))
                    if allowed {
                        #expect(FastCGIWire.status(stdout) == 200 && FastCGIWire.hasEnd(reply), "allowed: \(stdout.prefix(80))")
                    } else {
                        #expect(reply.isEmpty, "refused, yet \(reply.count) bytes came back: \(stdout.prefix(80))")
                        let log = try String(contentsOfFile: "\(stack.runDirectory)/worker-1.log", encoding: .utf8)
                        #expect(log.contains("FastCGI connection refused"))
                        #expect(log.contains("fastcgi.peer.uid=65534"))
                    }
                    // Root (this test) is always allowed, and the worker serves on.
                    let mine = try await onOwnThread {
                        let raw = try RawUnixSocket(path: socket)
                        defer { raw.close() }
                        raw.send(FastCGIWire.request(path: "/status"))
                        raw.shutdownWrite()
                        return raw.read(within: 5).bytes
                    }
                    #expect(FastCGIWire.status(FastCGIWire.stdoutText(FastCGIWire.records(mine))) == 200)
                }
            }
        }

        @Test(
            "silent connections on every request thread are closed after --receive-timeout, and the request queued behind them is answered"
        )
        func silentPeersTimeOut() async throws {
            let environment = ["HERALD_WORKER_ARGS": "--accept-threads 2 --receive-timeout 1"]
            try await LiveStack.with(workers: 1, environment: environment) { stack in
                let socket = "\(stack.runDirectory)/worker-1.sock"
                // Two silent peers: both request threads wait on them; then a real request.
                let (answered, waited, closed) = try await onOwnThread {
                    let silent = try (0..<2).map { _ in try RawUnixSocket(path: socket) }
                    defer { for peer in silent { peer.close() } }
                    let started = Date()
                    let raw = try RawUnixSocket(path: socket)
                    defer { raw.close() }
                    raw.send(FastCGIWire.request(path: "/status"))
                    raw.shutdownWrite()
                    let answered = raw.read(within: 10) { FastCGIWire.hasEnd($0) }.bytes
                    let waited = Date().timeIntervalSince(started)
                    // The silent peers were closed by the worker, without a reply.
                    return (answered, waited, silent.map { $0.read(within: 5) })
                }
                // Without the timeout it would wait for as long as the silent peers stay.
                #expect(
                    FastCGIWire.status(FastCGIWire.stdoutText(FastCGIWire.records(answered))) == 200,
                    "not answered within 10 s (waited \(waited) s)")
                for peer in closed { #expect(peer.bytes.isEmpty && peer.eof) }
            }
        }
    }
}
