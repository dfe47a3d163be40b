// What herald-bench prints: one run's figures, as text for people or one JSON line.
import Foundation
import Histogram

struct BenchReport: Codable {
    struct Latency: Codable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        /// Percentiles in milliseconds of a histogram in microseconds.
        init(_ histogram: Histogram<UInt64>) {
            p50 = Double(histogram.valueAtPercentile(50)) / 1000
            p90 = Double(histogram.valueAtPercentile(90)) / 1000
            p99 = Double(histogram.valueAtPercentile(99)) / 1000
            max = Double(histogram.maxRecorded) / 1000
        }
    }

    struct Memory: Codable {
        /// Resident kilobytes per process (hub, worker-N, nginx, nginx-worker-PID) before connecting.
        var before: [String: Int]
        /// The same once every subscriber was streaming.
        var connected: [String: Int]
    }

    /// The kind of row in bench-results.jsonl: "matrix" (one channel) or "many-channel".
    var kind = "matrix"
    /// Each subscriber streams a channel of its own; each event has one recipient.
    var channelPerSubscriber = false
    var subscribers: Int
    var events: Int
    var rate: Int
    var payloadBytes: Int
    /// Events acknowledged by the server (fewer than `events` if publishing hit its deadline).
    var acknowledged: Int
    /// Deliveries due: subscribers × acknowledged.
    var expected: Int
    var delivered: Int
    var lost: Int
    var duplicates: Int
    /// Events a subscriber received that belong to another subscriber's channel.
    var misrouted = 0
    /// Server CPU (all processes measured) per delivered event, in microseconds.
    var cpuMicrosecondsPerDelivery: Double?
    /// Publish answers other than 2xx, by status (many-channel runs).
    var publishRefusals: [String: Int] = [:]
    /// Publishes whose connection failed (many-channel runs).
    var publishTransportErrors = 0
    /// Streams that ended during the run.
    var ended: Int
    /// Seconds from the first publish to the last acknowledgement.
    var publishSeconds: Double
    /// Events delivered per second, over all subscribers, while publishing.
    var deliveredPerSecond: Double
    var latencyMilliseconds: Latency
    /// From sending a publish to its acknowledgement.
    var publishAcknowledgedMilliseconds: Latency
    var connectSeconds: Double
    var memoryKilobytes: Memory
    /// CPU seconds per server process while events flowed (first publish to end of drain).
    var cpuSeconds: [String: Double]
    /// Wall seconds of that interval.
    var flowSeconds: Double
    /// Per subscriber process: the share of one core it kept busy while events flowed.
    var clientBusy: [Double]

    init(
        subscribers: Int, events: Int, rate: Int, payloadBytes: Int, acknowledged: Int,
        acknowledgement: Histogram<UInt64>, publishSeconds: Double,
        shares: [SubscriberShare], connectSeconds: Double, memoryKilobytes: Memory, cpuSeconds: [String: Double],
        flowSeconds: Double, channelPerSubscriber: Bool = false
    ) {
        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        for share in shares { histogram.add(share.latency) }
        self.subscribers = subscribers
        self.events = events
        self.rate = rate
        self.payloadBytes = payloadBytes
        self.acknowledged = acknowledged
        self.channelPerSubscriber = channelPerSubscriber
        kind = channelPerSubscriber ? "many-channel" : "matrix"
        expected = channelPerSubscriber ? acknowledged : subscribers * acknowledged
        delivered = shares.reduce(0) { $0 + $1.delivered }
        lost = max(0, expected - delivered)
        duplicates = shares.reduce(0) { $0 + $1.duplicates }
        misrouted = shares.reduce(0) { $0 + $1.misrouted }
        let serverCPU = cpuSeconds.values.reduce(0, +)
        cpuMicrosecondsPerDelivery = delivered > 0 && !cpuSeconds.isEmpty ? serverCPU / Double(delivered) * 1e6 : nil
        ended = shares.reduce(0) { $0 + $1.ended }
        self.publishSeconds = publishSeconds
        deliveredPerSecond = publishSeconds > 0 ? Double(delivered) / publishSeconds : 0
        latencyMilliseconds = Latency(histogram)
        publishAcknowledgedMilliseconds = Latency(acknowledgement)
        self.connectSeconds = connectSeconds
        self.memoryKilobytes = memoryKilobytes
        self.cpuSeconds = cpuSeconds
        self.flowSeconds = flowSeconds
        clientBusy = shares.map(\.busy)
    }

    /// Kilobytes per subscriber added over all processes measured, if any were.
    var kilobytesPerSubscriber: Double? {
        guard !memoryKilobytes.before.isEmpty else { return nil }
        let added = memoryKilobytes.connected.reduce(0) { $0 + ($1.value - (memoryKilobytes.before[$1.key] ?? 0)) }
        return Double(added) / Double(subscribers)
    }

    func rendered(json: Bool) -> String {
        guard json else { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    var text: String {
        func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        var lines = [
            "subscribers \(subscribers)" + (channelPerSubscriber ? " (a channel each)" : "")
                + ", events \(events) at \(rate)/s planned, payload \(payloadBytes) bytes",
            "connect: all \(subscribers) streaming after \(format(connectSeconds, 2)) s",
            "published \(acknowledged) in \(format(publishSeconds, 2)) s; delivered \(delivered) of \(expected) "
                + "(\(format(deliveredPerSecond, 0)) events/s), lost \(lost), duplicated \(duplicates), streams ended \(ended)",
            "latency ms: p50 \(format(latencyMilliseconds.p50)), p90 \(format(latencyMilliseconds.p90)), "
                + "p99 \(format(latencyMilliseconds.p99)), max \(format(latencyMilliseconds.max))",
            "publish acknowledged ms: p50 \(format(publishAcknowledgedMilliseconds.p50, 2)), "
                + "p90 \(format(publishAcknowledgedMilliseconds.p90, 2)), "
                + "p99 \(format(publishAcknowledgedMilliseconds.p99, 2)), max \(format(publishAcknowledgedMilliseconds.max, 2))",
            "client: \(clientBusy.count) subscriber processes, busy "
                + clientBusy.map { "\(format($0 * 100, 0))%" }.joined(separator: " ") + " of a core",
        ]
        if channelPerSubscriber {
            lines.append(
                "misrouted \(misrouted); publish refusals \(publishRefusals.isEmpty ? "none" : "\(publishRefusals)"), "
                    + "transport errors \(publishTransportErrors)")
        }
        if let perDelivery = cpuMicrosecondsPerDelivery {
            lines.append("server CPU per delivered event: \(format(perDelivery)) µs")
        }
        if let perSubscriber = kilobytesPerSubscriber {
            lines.append("memory: \(format(perSubscriber)) KB per subscriber over hub, workers and nginx")
            for name in memoryKilobytes.connected.keys.sorted() {
                let cpu = cpuSeconds[name].map { ", CPU \(format($0 / max(flowSeconds, 0.001) * 100, 0))%" } ?? ""
                lines.append(
                    "  \(name): \(memoryKilobytes.before[name] ?? 0) KB -> \(memoryKilobytes.connected[name] ?? 0) KB\(cpu)"
                )
            }
        }
        return lines.joined(separator: "\n")
    }
}
