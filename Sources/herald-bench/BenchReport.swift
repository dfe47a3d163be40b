// What herald-bench prints: one run's figures, as text for people or one JSON line.
import Foundation

struct BenchReport: Codable {
    struct Latency: Codable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double
    }

    struct Memory: Codable {
        /// Resident kilobytes per process (hub, worker-N, nginx, nginx-worker-PID) before connecting.
        var before: [String: Int]
        /// The same once every subscriber had its init.
        var connected: [String: Int]
    }

    var subscribers: Int
    var events: Int
    var rate: Int
    var payloadBytes: Int
    var acknowledged: Int
    var expected: Int
    var delivered: Int
    var lost: Int
    var duplicates: Int
    var deliveredPerSecond: Double
    var latencyMilliseconds: Latency
    /// From sending a publish to its acknowledgement (one publish at a time).
    var publishAcknowledgedMilliseconds: Latency
    var connectSeconds: Double
    var memoryKilobytes: Memory

    /// Kilobytes per subscriber added over all processes measured, if any were.
    var kilobytesPerSubscriber: Double? {
        guard !memoryKilobytes.before.isEmpty else { return nil }
        let added = memoryKilobytes.connected.reduce(0) { $0 + ($1.value - (memoryKilobytes.before[$1.key] ?? 0)) }
        return Double(added) / Double(subscribers)
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    var text: String {
        var lines = [
            "subscribers \(subscribers), events \(events) at \(rate)/s, payload \(payloadBytes) bytes",
            "connect: all \(subscribers) streaming after \(String(format: "%.2f", connectSeconds)) s",
            "delivered \(delivered) of \(expected) (\(String(format: "%.0f", deliveredPerSecond)) events/s), lost \(lost), duplicated \(duplicates)",
            String(
                format: "latency ms: p50 %.1f, p90 %.1f, p99 %.1f, max %.1f", latencyMilliseconds.p50,
                latencyMilliseconds.p90,
                latencyMilliseconds.p99, latencyMilliseconds.max),
            String(
                format: "publish acknowledged ms: p50 %.2f, p90 %.2f, p99 %.2f, max %.2f",
                publishAcknowledgedMilliseconds.p50, publishAcknowledgedMilliseconds.p90,
                publishAcknowledgedMilliseconds.p99, publishAcknowledgedMilliseconds.max),
        ]
        if let perSubscriber = kilobytesPerSubscriber {
            lines.append(String(format: "memory: %.1f KB per subscriber over hub, workers and nginx", perSubscriber))
            for name in memoryKilobytes.connected.keys.sorted() {
                lines.append(
                    "  \(name): \(memoryKilobytes.before[name] ?? 0) KB -> \(memoryKilobytes.connected[name] ?? 0) KB")
            }
        }
        return lines.joined(separator: "\n")
    }
}
