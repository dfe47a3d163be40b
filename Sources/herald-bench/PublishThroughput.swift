// herald-bench --publish-throughput: how many publishes a server acknowledges per second over
// one transport (keep-alive HTTP, NDJSON batches, pipelined admin), closed loop or paced, and
// whether one stream on the channel then received every acknowledged event exactly once.
import Foundation
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

struct PublishThroughput {
    var transport: PublishTransport
    var transportName: String
    var publishers: Int
    var batchSize: Int?
    var window: Int?
    var seconds: Double
    var rate: Int?
    var maxEvents: Int
    var payloadBytes: Int
    var idempotencyKeys: Bool
    /// nginx's port, and the stream path of the delivery check.
    var port: Int
    var checkPath: String
    var readyOnHead: Bool
    var drainSeconds: Double
    var runDir: String?

    func run() async throws -> PublishReport {
        // The delivery check: one stream, up before the first publish.
        let checkGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { checkGroup.shutdownGracefully { _ in } }
        let checkLoop = checkGroup.next()
        let maxEvents = maxEvents
        let ledger = try await checkLoop.submit {
            NIOLoopBound(DeliveryLedger(maxEvents: maxEvents), eventLoop: checkLoop)
        }
        .get()
        let stream = try await openDeliveryCheck(
            loop: checkLoop, ledger: ledger, port: port, path: checkPath, readyOnHead: readyOnHead
        ).get()
        do {
            try await waitUntil(seconds: 10) { try await checkLoop.submit { ledger.value.isReady }.get() }
        } catch {
            throw BenchError("the delivery check's stream \(checkPath) did not start within 10 s")
        }

        let cpuBefore = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
        let flowStart = ContinuousClock.now
        let figures = try await runPublishers(
            transport, seconds: seconds, maxEvents: maxEvents, rate: rate, payloadBytes: payloadBytes)

        // Let the stream catch up, then compare.
        let acknowledged = figures.acknowledged
        _ = try? await waitUntil(seconds: drainSeconds) {
            try await checkLoop.submit { ledger.value.receivedCount >= acknowledged }.get()
        }
        let cpuAfter = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
        let flowSeconds = herald_bench.seconds(ContinuousClock.now - flowStart)
        let indices = figures.acknowledgedIndices
        let check = try await checkLoop.submit {
            let ledger = ledger.value
            let compared = ledger.compare(acknowledged: indices)
            return PublishReport.Delivery(
                delivered: compared.delivered, missing: compared.missing, duplicated: ledger.duplicates,
                unacknowledgedDelivered: compared.unacknowledged, streamEnded: ledger.ended,
                latencyMicroseconds: .init(ledger.latency))
        }.get()
        try? await stream.close()

        return PublishReport(
            transport: transportName, publishers: publishers, batchSize: batchSize, window: window,
            seconds: seconds, rate: rate, payloadBytes: payloadBytes, idempotencyKeys: idempotencyKeys,
            figures: figures, delivery: check,
            cpuSeconds: cpuAfter.reduce(into: [:]) { $0[$1.key] = $1.value - (cpuBefore[$1.key] ?? 0) },
            flowSeconds: flowSeconds)
    }
}
