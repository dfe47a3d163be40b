// Cluster mode's writer: takes the publishes queued in the cluster's event log, puts up to `maximumBatch` of
// them into one transaction on its own connection (they share the round trips and the
// commit), and answers each only after COMMIT. Before answering it reads any events other hubs
// committed just before its own, so the hub delivers them in order and the publisher sees its
// event at once. The connection is kept between batches and made again after a failure; a
// database that is away fails the publish within `timeout`, never hangs it.
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Writes the hub's publishes into the cluster's log.
struct ClusterPublisher: Service {
    let clusterLog: NIOLoopBound<ClusterEventLog>
    let loop: EventLoop
    let log: ClusterLog
    let settings: ClusterSettings
    let wakes: AsyncStream<Void>
    let logger: Logger

    func run() async throws {
        var connection: PostgresConnection?
        for await _ in wakes {
            while true {
                let batch = try await loop.submit { clusterLog.value.takeBatch() }.get()
                if batch.isEmpty { break }
                let result: Result<[ClusterWriteOutcome], ClusterWriteError>
                do {
                    let open: PostgresConnection
                    if let connection {
                        open = connection
                    } else {
                        open = try await connect()
                    }
                    connection = open
                    let outcomes = try await open.within(settings.timeout) { open in
                        let outcomes = try await log.append(batch, on: open)
                        try await readEventsBefore(outcomes, on: open)
                        return outcomes
                    }
                    result = .success(outcomes)
                } catch {
                    if let connection { _ = try? await connection.close() }
                    connection = nil
                    switch error {
                    case let error as ClusterWriteError: result = .failure(error)
                    case let error as ClusterTimeout:
                        result = .failure(ClusterWriteError(duringCommit: true, underlying: error.description))
                    default:
                        result = .failure(
                            ClusterWriteError(duringCommit: false, underlying: ClusterLog.describe(error)))
                    }
                    logger.warning(
                        "cluster publish failed",
                        metadata: ["cluster.events": "\(batch.count)", "error": "\(ClusterLog.describe(error))"])
                }
                try await loop.submit { clusterLog.value.batchFinished(batch, result) }.get()
            }
        }
        try await loop.submit { clusterLog.value.failAll("the hub is stopping") }.get()
        if let connection { try? await connection.close() }
    }

    /// Reads the events committed between what this hub has read and `outcomes`' first event,
    /// and makes them visible, so that this batch can follow them at once.
    private func readEventsBefore(_ outcomes: [ClusterWriteOutcome], on connection: PostgresConnection) async throws {
        guard
            let first = outcomes.lazy.compactMap({ outcome -> UInt64? in
                if case .stored(let records, _) = outcome { return records.first?.event.sequence }
                return nil
            }).first
        else { return }
        let visible = try await loop.submit { clusterLog.value.readThrough }.get()
        guard visible + 1 < first else { return }
        let records = try await log.records(after: visible, limit: Int(first - 1 - visible), on: connection)
        try await loop.submit {
            if !clusterLog.value.committed(records) { clusterLog.value.wakeFollower(.catchUp) }
        }.get()
    }

    private func connect() async throws -> PostgresConnection {
        try await settings.connect(role: "publisher", id: 1, on: loop, logger: logger)
    }
}
