// The request phase: a few dedicated threads (never Swift's cooperative pool) block in
// libfcgi's accept, read each request, answer the short ones at once and hand event streams
// to the event loops. On shutdown the listening socket is shut down, which ends every accept.
import CFastCGI
import Foundation
import HeraldProtocol
import Liveness
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import SocketFiles

/// The FastCGI responder as a service.
public struct FastCGIFront: Service {
    private let core: WorkerCore
    private let liveness: LivenessMonitor?

    /// Serves `core`'s configured socket. With `liveness`, the part "FastCGI socket" is
    /// reported ready once the socket accepts, and shutdown is reported when it begins.
    public init(core: WorkerCore, liveness: LivenessMonitor? = nil) {
        self.core = core
        self.liveness = liveness
    }

    /// Initialises libfcgi and takes back the signals it takes over. Call once, in `main`,
    /// before the service group installs its own signal handling.
    public static func initializeLibrary() {
        FCGX_Init()
        // libfcgi installs a SIGPIPE handler even when SIGPIPE is ignored, and turns SIGTERM
        // into a flag that leaves the process half-alive: give both back.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
    }

    public func run() async throws {
        let configuration = core.configuration
        let logger = core.logger
        let listenFD = try UnixListener.listen(
            path: configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup)
        let stopping = NIOLockedValueBox(false)
        let threads = max(1, configuration.acceptThreads)
        // Threads still accepting, and who waits for the last one: one lock for both.
        let running = NIOLockedValueBox<(count: Int, waiter: CheckedContinuation<Void, Never>?)>((threads, nil))
        let router = Router(configuration: configuration)
        let core = self.core
        let timeout = Double(configuration.receiveTimeout.nanoseconds) / 1e9
        for index in 0..<threads {
            let thread = Thread {
                let connection = FastCGIConnection(
                    listenFD: listenFD, receiveTimeout: timeout, allowsPeer: configuration.allowsPeer(uid:))
                let handler = RequestHandler(core: core, router: router)
                accepting: while true {
                    switch connection.accept() {
                    case .request:
                        handler.handle(connection)
                    case .refused(let peer):
                        logger.warning(
                            "FastCGI connection refused: this user may not use the worker socket (see --allow-user)",
                            metadata: ["fastcgi.peer.uid": "\(peer.uid)", "fastcgi.peer.pid": "\(peer.pid)"])
                    case .closed:
                        break  // libfcgi dropped it (bad records or silent): nothing to answer
                    case .acceptFailed(let error):
                        if stopping.withLockedValue({ $0 }) { break accepting }
                        logger.warning("FastCGI accept failed", metadata: ["error": "\(String(cString: strerror(error)))"])
                        usleep(10_000)  // EMFILE and friends: do not spin
                    }
                }
                running.withLockedValue { state in
                    state.count -= 1
                    if state.count == 0 { state.waiter?.resume() }
                }
            }
            thread.name = "fcgi-accept-\(index)"
            thread.start()
        }
        logger.info(
            "worker ready",
            metadata: [
                "worker.id": "\(configuration.workerID)", "worker.socket": "\(configuration.socketPath)",
                "worker.hub": "\(configuration.hubSocketPath)",
            ])
        liveness?.partReady("FastCGI socket")

        try? await gracefulShutdown()
        logger.info("worker stopping: no new requests, draining streams")
        liveness?.stopping()
        stopping.withLockedValue { $0 = true }
        UnixListener.remove(configuration.socketPath)
        shutdown(listenFD, Int32(SHUT_RDWR))
        await withCheckedContinuation { continuation in
            running.withLockedValue { state in
                if state.count == 0 { continuation.resume() } else { state.waiter = continuation }
            }
        }
        close(listenFD)
        try? await core.drainAll().get()
        logger.info("worker stopped accepting and drained its streams")
    }
}
