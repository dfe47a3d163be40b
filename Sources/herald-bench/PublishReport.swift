// What herald-bench --publish-throughput prints: acknowledged publishes per second, the
// answers that were not 2xx, acknowledgement latency, and the delivery check's verdict, as
// text for people or one JSON line (deploy/bench's rows of kind "publish").
import Foundation
import Histogram

struct PublishReport: Codable {
    /// Percentiles in microseconds of a histogram in microseconds.
    struct Latency: Codable {
        var p50: UInt64
        var p90: UInt64
        var p99: UInt64
        var max: UInt64

        init(_ histogram: Histogram<UInt64>) {
            p50 = histogram.valueAtPercentile(50)
            p90 = histogram.valueAtPercentile(90)
            p99 = histogram.valueAtPercentile(99)
            max = histogram.maxRecorded
        }
    }

    /// The delivery check: one stream on the channel against the acknowledged indices.
    struct Delivery: Codable {
        /// Acknowledged events the stream received.
        var delivered: Int
        /// Acknowledged events it never received.
        var missing: Int
        /// Receipts beyond the first of an event.
        var duplicated: Int
        /// Events received that were never acknowledged (a failed or abandoned publish that
        /// still went out).
        var unacknowledgedDelivered: Int
        /// The stream ended during the run.
        var streamEnded: Bool
        /// From the first send of an event to its arrival on the stream.
        var latencyMicroseconds: Latency
    }

    /// Always "publish": the kind of row in bench-results.jsonl.
    var kind = "publish"
    /// http, http-batch or admin.
    var transport: String
    var publishers: Int
    var batchSize: Int?
    var window: Int?
    /// Planned publishing time.
    var seconds: Double
    /// Paced runs: the offered events per second (nil: closed loop).
    var rate: Int?
    var payloadBytes: Int
    var idempotencyKeys: Bool
    var acknowledged: Int
    /// Events sent at least once.
    var sent: Int
    var eventsPerSecond: Double
    /// Requests answered (any status).
    var answers: Int
    /// Answers other than 2xx by status ("0": the admin socket's `error: …`).
    var refusals: [String: Int]
    /// Requests whose connection failed or closed before the answer, and 2xx batch answers
    /// without one id per line.
    var transportErrors: Int
    var retries: Int
    var acknowledgedMicroseconds: Latency
    var delivery: Delivery
    /// CPU seconds per server process from the first publish to the end of the check.
    var cpuSeconds: [String: Double]
    var flowSeconds: Double

    init(
        transport: String, publishers: Int, batchSize: Int?, window: Int?, seconds: Double, rate: Int?,
        payloadBytes: Int, idempotencyKeys: Bool, figures: PublishFigures, delivery: Delivery,
        cpuSeconds: [String: Double], flowSeconds: Double
    ) {
        self.transport = transport
        self.publishers = publishers
        self.batchSize = batchSize
        self.window = window
        self.seconds = seconds
        self.rate = rate
        self.payloadBytes = payloadBytes
        self.idempotencyKeys = idempotencyKeys
        acknowledged = figures.acknowledged
        sent = figures.claimed
        eventsPerSecond = figures.seconds > 0 ? Double(figures.acknowledged) / figures.seconds : 0
        answers = figures.answers
        refusals = Dictionary(uniqueKeysWithValues: figures.refusals.map { ("\($0.key)", $0.value) })
        transportErrors = figures.transportErrors
        retries = figures.retries
        acknowledgedMicroseconds = Latency(figures.latency)
        self.delivery = delivery
        self.cpuSeconds = cpuSeconds
        self.flowSeconds = flowSeconds
    }

    /// Every answer 2xx, no transport error, every acknowledged event delivered exactly once.
    var isClean: Bool {
        refusals.isEmpty && transportErrors == 0 && delivery.missing == 0 && delivery.duplicated == 0
    }

    func rendered(json: Bool) -> String {
        guard json else { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    var text: String {
        func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        let shape =
            switch transport {
            case "http-batch": "\(publishers) publishers, batches of \(batchSize ?? 0)"
            case "admin": "one admin connection, window \(window ?? 0)"
            default: "\(publishers) publishers"
            }
        let ack = acknowledgedMicroseconds
        let check = delivery
        let refused: String =
            refusals.isEmpty
            ? "none"
            : refusals.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
        var lines: [String] = [
            "publish over \(transport): \(shape), \(format(seconds, 1)) s "
                + (rate.map { "paced at \($0)/s" } ?? "closed loop") + ", payload \(payloadBytes) bytes"
                + (idempotencyKeys ? ", idempotency keys" : ""),
            "acknowledged \(acknowledged) of \(sent) sent: \(format(eventsPerSecond)) events/s; answers \(answers)",
            "refused: \(refused); transport errors \(transportErrors); retries \(retries)",
            "acknowledged µs: p50 \(ack.p50), p90 \(ack.p90), p99 \(ack.p99), max \(ack.max)",
            "delivery check: delivered \(check.delivered), missing \(check.missing), duplicated \(check.duplicated), "
                + "unacknowledged delivered \(check.unacknowledgedDelivered)"
                + (check.streamEnded ? ", stream ended" : ""),
            "delivery µs: p50 \(check.latencyMicroseconds.p50), p99 \(check.latencyMicroseconds.p99), "
                + "max \(check.latencyMicroseconds.max)",
        ]
        for name in cpuSeconds.keys.sorted() {
            lines.append("  \(name): CPU \(format((cpuSeconds[name] ?? 0) / max(flowSeconds, 0.001) * 100))%")
        }
        return lines.joined(separator: "\n")
    }
}
