// A time limit on work over one database connection: when it passes, the connection is closed,
// which fails whatever waits on it at once (a database that stopped answering must not hang a
// publisher or the follower).
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// The work ran past its time limit; the connection was closed.
struct ClusterTimeout: Error, CustomStringConvertible {
    let limit: TimeAmount
    var description: String { "the cluster database did not answer within \(limit.nanoseconds / 1_000_000) ms" }
}

extension PostgresConnection {
    /// Runs `body`; if it takes longer than `limit`, closes this connection and throws `ClusterTimeout`.
    func within<T: Sendable>(_ limit: TimeAmount, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let expired = NIOLockedValueBox(false)
        let timer = eventLoop.scheduleTask(in: limit) { [self] in
            expired.withLockedValue { $0 = true }
            let closed: EventLoopFuture<Void> = self.close()
            _ = closed
        }
        do {
            let value = try await body(self)
            timer.cancel()
            return value
        } catch {
            timer.cancel()
            if expired.withLockedValue({ $0 }) { throw ClusterTimeout(limit: limit) }
            throw error
        }
    }
}
