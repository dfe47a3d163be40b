// Cluster mode's reader: one connection that LISTENs for commits and reads the new events in
// sequence order, from the last one this hub has read, so a lost notification or a reconnect
// loses nothing (NOTIFY only wakes it). It also reads the head every `pollInterval` (another
// hub's prune reaches this hub's history that way), prunes the log every `pruneInterval`, and
// when the database goes away it keeps the hub serving what it has and reconnects with backoff.
import HeraldProtocol
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Follows the cluster's log for one hub.
struct ClusterFollower: Service {
    let clusterLog: NIOLoopBound<ClusterEventLog>
    let loop: EventLoop
    let log: ClusterLog
    let settings: ClusterSettings
    let historyEvents: Int
    let wakes: AsyncStream<ClusterWake>
    let wake: AsyncStream<ClusterWake>.Continuation
    let logger: Logger

    /// Rows read per query while catching up.
    static let pageSize = 1000

    /// The connection ended (its notification stream stopped).
    struct ConnectionLost: Error, CustomStringConvertible {
        var description: String { "the connection to the cluster database was lost" }
    }

    func run() async throws {
        var iterator = wakes.makeAsyncIterator()
        var backoff = TimeAmount.milliseconds(50)
        var lastPrune = NIODeadline.now()
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let open = try await settings.connect(role: "follower", id: 2, on: loop, logger: logger)
                connection = open
                try await open.listen(on: ClusterLog.notifyChannel) { notifications in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { [wake] in
                            do {
                                for try await notification in notifications {
                                    wake.yield(.notified(UInt64(notification.payload) ?? .max))
                                }
                            } catch {}
                            wake.yield(.lost)
                        }
                        group.addTask { [wake, settings] in
                            while true {
                                try await Task.sleep(nanoseconds: UInt64(settings.pollInterval.nanoseconds))
                                wake.yield(.tick)
                            }
                        }
                        defer { group.cancelAll() }
                        // Listening first, then reading: nothing committed in between is missed.
                        try await synchronize(open)
                        try await loop.submit { clusterLog.value.linkChanged(connected: true, error: nil) }.get()
                        logger.info(
                            "cluster database connected", metadata: ["cluster.database": "\(settings.database)"])
                        backoff = .milliseconds(50)
                        while let next = await iterator.next() {
                            switch next {
                            case .lost:
                                throw ConnectionLost()
                            case .notified(let sequence):
                                let visible = try await loop.submit { clusterLog.value.readThrough }.get()
                                if sequence > visible { try await catchUp(open) }
                            case .catchUp:
                                try await catchUp(open)
                            case .tick:
                                try await synchronize(open)
                                if NIODeadline.now() - lastPrune >= settings.pruneInterval {
                                    lastPrune = .now()
                                    try await prune(open)
                                }
                            }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                let message = ClusterLog.describe(error)
                logger.warning(
                    "cluster database unreachable; serving what this hub has read and reconnecting",
                    metadata: [
                        "cluster.database": "\(settings.database)", "error": "\(message)",
                        "cluster.retryMilliseconds": "\(backoff.nanoseconds / 1_000_000)",
                    ])
                _ = try? await loop.submit { clusterLog.value.linkChanged(connected: false, error: message) }.get()
            }
            if let connection { _ = try? await connection.close() }
            if Task.isCancelled { break }
            let jitter = Int64.random(in: 0...(backoff.nanoseconds / 4))
            try? await Task.sleep(nanoseconds: UInt64(backoff.nanoseconds + jitter))
            backoff = min(backoff * 2, .seconds(3))
        }
    }

    /// Reads the head: catches up when behind, reloads when needed.
    private func synchronize(_ connection: PostgresConnection) async throws {
        let head = try await connection.within(settings.timeout) { try await log.head(on: $0) }
        switch try await loop.submit({ clusterLog.value.headSeen(head) }).get() {
        case .current: break
        case .behind: try await catchUp(connection)
        case .reload: try await reload(connection)
        }
    }

    /// Reads and delivers every event after the last one this hub has read.
    private func catchUp(_ connection: PostgresConnection) async throws {
        while true {
            let visible = try await loop.submit { clusterLog.value.readThrough }.get()
            let records = try await connection.within(settings.timeout) {
                try await log.records(after: visible, limit: Self.pageSize, on: $0)
            }
            if records.isEmpty {
                // Nothing after `visible`: current, unless what follows it was pruned.
                let head = try await connection.within(settings.timeout) { try await log.head(on: $0) }
                if try await loop.submit({ clusterLog.value.headSeen(head) }).get() == .reload {
                    try await reload(connection)
                }
                return
            }
            let followsOn = try await loop.submit { clusterLog.value.committed(records) }.get()
            if !followsOn {
                try await reload(connection)
                return
            }
            if records.count < Self.pageSize { return }
        }
    }

    private func reload(_ connection: PostgresConnection) async throws {
        let snapshot = try await connection.within(settings.timeout * 10) {
            try await log.snapshot(historyEvents: historyEvents, on: $0)
        }
        try await loop.submit { clusterLog.value.reload(snapshot) }.get()
    }

    private func prune(_ connection: PostgresConnection) async throws {
        let cut = try await connection.within(settings.timeout * 10) {
            try await log.prune(
                retainEvents: settings.retainEvents, retainSeconds: settings.retainSeconds, on: $0)
        }
        guard let cut else { return }
        try await loop.submit { clusterLog.value.pruned(through: cut) }.get()
        logger.info("pruned the cluster log", metadata: ["cluster.prunedThrough": "\(cut)"])
    }

    /// Connects, creates the schema if needed and reads a snapshot, trying again with backoff
    /// until it works or the hub is asked to stop (a hub does not serve before it knows the
    /// cluster's epoch and state).
    static func initialSnapshot(
        log: ClusterLog, settings: ClusterSettings, historyEvents: Int, loop: EventLoop, logger: Logger
    )
        async throws -> ClusterSnapshot
    {
        var backoff = TimeAmount.milliseconds(100)
        while true {
            try Task.checkCancellation()
            do {
                let connection = try await settings.connect(role: "loader", id: 0, on: loop, logger: logger)
                do {
                    let snapshot = try await connection.within(settings.timeout * 10) { connection in
                        try await log.prepareSchema(on: connection)
                        return try await log.snapshot(historyEvents: historyEvents, on: connection)
                    }
                    try? await connection.close()
                    return snapshot
                } catch {
                    try? await connection.close()
                    throw error
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning(
                    "cluster database unreachable at start; the hub opens its sockets once it has read the log",
                    metadata: ["cluster.database": "\(settings.database)", "error": "\(ClusterLog.describe(error))"])
                try await Task.sleep(nanoseconds: UInt64(backoff.nanoseconds))
                backoff = min(backoff * 2, .seconds(3))
            }
        }
    }
}
