// Herald's figures in the Prometheus text format, rendered with swift-prometheus from the same
// stats that `heraldctl stats` shows: one registry per scrape, filled from a snapshot.
import HeraldProtocol
import Prometheus

/// Renders stats as Prometheus metrics (text exposition format 0.0.4), all named `herald_…`.
public enum PrometheusExposition {
    /// The content type of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The label value that sums the streams of every channel without series of its own (not
    /// a channel name: those never hold parentheses).
    public static let otherChannels = "(other)"

    /// The hub's figures and every worker's. `hub` is nil when only a worker's own figures are
    /// known (the hub could not be asked): then `herald_hub_up` is 0. Per-channel series are
    /// made for `hub.metricChannels` only; every other channel's streams are summed under
    /// `channel="(other)"`, so subscribers cannot make series by choosing channel names.
    public static func render(hub: HubStats?, workers: [WorkerStats]) -> String {
        var metrics = Metrics()
        metrics.gauge("hub", "up", "1 if the hub answered this scrape", hub == nil ? 0 : 1)
        if let hub {
            metrics.gauge("hub", "sequence", "Last event sequence number made visible", Double(hub.sequence))
            metrics.gauge("hub", "channels", "Channels that have had at least one event", Double(hub.channels))
            metrics.counter("hub", "events_published", "Events accepted since the hub started", hub.eventsPublished)
            metrics.counter(
                "hub", "tail_followers_dropped", "Tail followers closed because they stopped reading",
                hub.tailFollowersDropped)
            metrics.gauge(
                "hub", "idempotency_keys", "Idempotency keys remembered on this machine", Double(hub.idempotencyKeys))
            metrics.counter(
                "hub", "idempotent_repeats", "Publishes answered as repeats of earlier ones (known idempotency keys)",
                hub.idempotentRepeats)
            metrics.counter(
                "hub", "idempotency_keys_evicted_early",
                "Idempotency keys forgotten before their window ended (count or byte bound)",
                hub.idempotencyKeysEvictedEarly)
            if let webhooks = hub.webhooks {
                metrics.counter(
                    "hub", "webhooks_delivered", "Occupancy notices a receiver accepted (2xx)", webhooks.delivered)
                metrics.counter(
                    "hub", "webhook_failures", "Occupancy webhook POSTs that failed and were retried",
                    webhooks.failedAttempts)
                metrics.counter(
                    "hub", "webhooks_dropped", "Occupancy notices dropped because a receiver's queue was full",
                    webhooks.dropped)
                metrics.gauge("hub", "webhooks_queued", "Occupancy notices waiting to be sent", Double(webhooks.queued))
            }
            metrics.gauge("hub", "uptime_seconds", "Seconds since the hub started", hub.uptimeSeconds)
            metrics.gauge("hub", "workers", "Workers connected to the hub", Double(hub.workers.count))
        }
        let named = Set(hub?.metricChannels ?? [])
        for worker in workers {
            let labels = [("worker", worker.id)]
            metrics.gauge("worker", "streams", "Open event streams", Double(worker.streams), labels)
            metrics.gauge(
                "worker", "polls_waiting", "Long polls waiting for an event", Double(worker.pollsWaiting), labels)
            metrics.gauge(
                "worker", "publishes_in_flight", "HTTP publishes waiting for the hub's answer",
                Double(worker.publishesInFlight), labels)
            metrics.counter("worker", "events_sent", "Events written to streams", worker.eventsSent, labels)
            metrics.counter(
                "worker", "bytes_sent", "Bytes written to streams, FastCGI framing included", worker.bytesSent, labels)
            metrics.counter(
                "worker", "slow_clients_dropped", "Streams closed because the client fell behind",
                worker.slowClientsDropped, labels)
            metrics.counter(
                "worker", "slow_clients_caught_up",
                "Streams that fell behind on state changes and were caught up with a fresh init on the same connection",
                worker.slowClientsCaughtUp, labels)
            metrics.gauge(
                "worker", "hub_link_up", "1 if the worker's hub link is live", worker.hubLink == "live" ? 1 : 0, labels)
            metrics.gauge("worker", "uptime_seconds", "Seconds since the worker started", worker.uptimeSeconds, labels)
            var other = 0
            for (channel, count) in worker.streamsByChannel.sorted(by: { $0.key < $1.key }) {
                guard named.contains(channel) else {
                    other += count
                    continue
                }
                metrics.gauge(
                    "worker", "channel_streams", channelStreamsHelp, Double(count),
                    [("worker", worker.id), ("channel", channel)])
            }
            metrics.gauge(
                "worker", "channel_streams", channelStreamsHelp, Double(other),
                [("worker", worker.id), ("channel", otherChannels)])
        }
        return metrics.text
    }
}

private let channelStreamsHelp =
    "Open event streams per channel, for the hub's most subscribed channels that have had events (--metrics-channels); channel=\"(other)\" sums the rest"

/// A registry for one scrape.
private struct Metrics {
    let registry = PrometheusCollectorRegistry()

    mutating func gauge(
        _ subsystem: String, _ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []
    ) {
        let descriptor = MetricNameDescriptor(
            namespace: "herald", subsystem: subsystem, metricName: name, unitName: "", helpText: help)
        registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
    }

    mutating func counter(
        _ subsystem: String, _ name: String, _ help: String, _ value: UInt64, _ labels: [(String, String)] = []
    ) {
        let descriptor = MetricNameDescriptor(
            namespace: "herald", subsystem: subsystem, metricName: name, unitName: "total", helpText: help)
        registry.makeCounter(descriptor: descriptor, labels: labels).increment(by: Int64(clamping: value))
    }

    var text: String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
