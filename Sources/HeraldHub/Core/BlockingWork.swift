// Where the hub runs its blocking file work (fsyncs, snapshot writes) so that its event loop
// never waits for the disk: a thread pool in production; in tests, a queue the test drives.
import NIOCore
import NIOPosix

/// Runs blocking work off the event loop and reports back on it.
struct BlockingWork {
    private let submit: (EventLoop, @escaping @Sendable () throws -> Void) -> EventLoopFuture<Void>

    /// Work is handed to `submit`, which completes the future on the given loop.
    init(_ submit: @escaping (EventLoop, @escaping @Sendable () throws -> Void) -> EventLoopFuture<Void>) {
        self.submit = submit
    }

    /// Runs work on `pool`'s threads.
    static func threadPool(_ pool: NIOThreadPool) -> BlockingWork {
        BlockingWork { loop, work in pool.runIfActive(eventLoop: loop, work) }
    }

    /// Runs `work` and completes the future on `loop` with its outcome.
    func run(on loop: EventLoop, _ work: @escaping @Sendable () throws -> Void) -> EventLoopFuture<Void> {
        submit(loop, work)
    }
}
