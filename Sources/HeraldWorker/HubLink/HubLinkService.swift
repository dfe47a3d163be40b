// Keeps the hub link up for the worker's lifetime: connect, and after every loss wait with
// exponential backoff and jitter (so many workers do not return at once), then connect again.
import Liveness
import Logging
import ServiceLifecycle

/// Runs the worker's hub link until graceful shutdown.
public struct HubLinkService: Service {
    private let core: WorkerCore
    private let liveness: LivenessMonitor?

    /// The link of `core`. With `liveness`, the part "hub link" is reported ready after the
    /// first attempt to connect, whether it reached the hub or not (a worker serves its
    /// clients without a hub, and catches up once the hub is there).
    public init(core: WorkerCore, liveness: LivenessMonitor? = nil) {
        self.core = core
        self.liveness = liveness
    }

    public func run() async throws {
        let link = core.link
        let liveness = self.liveness
        try? await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await link.connectOnce { liveness?.partReady("hub link") }
                    failures = 0
                    if Task.isCancelled { return }
                    link.logger.warning("hub link closed; reconnecting")
                } catch is CancellationError {
                    return
                } catch {
                    liveness?.partReady("hub link")
                    failures += 1
                    if failures == 1 || failures % 20 == 0 {
                        link.logger.warning(
                            "cannot reach the hub",
                            metadata: ["hub.socket": "\(link.configuration.hubSocketPath)", "error": "\(error)"])
                    }
                }
                if Task.isCancelled { return }
                link.markBackingOff()
                try await Task.sleep(for: Self.backoff(afterFailures: failures))
            }
        }
    }

    /// 50 ms doubling per failure up to 3 s, each wait drawn between half and all of it.
    static func backoff(afterFailures failures: Int) -> Duration {
        let ceiling = min(3000.0, 50.0 * Double(1 << min(failures, 10)))
        return .milliseconds(Int(Double.random(in: ceiling / 2...ceiling)))
    }
}
