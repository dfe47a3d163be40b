// Per-channel Prometheus series are bounded: only channels the hub knows, the most subscribed
// first, at most --metrics-channels; every other channel's streams summed under "(other)".
import HeraldMetrics
import HeraldProtocol
import Testing

@Suite struct MetricChannelsTests {
    @Test func ranksKnownChannelsBySubscribersThenNameAndCaps() {
        let subscribers = ["rooms": 40, "news": 40, "chat": 7, "random-1": 900, "empty": 0, "tiny": 1]
        let known: Set = ["rooms", "news", "chat", "empty", "tiny"]
        let picked = HubStats.metricChannels(subscribers: subscribers, known: { known.contains($0) }, limit: 3)
        // random-1 has the most subscribers but no events: a name any subscriber may pick.
        #expect(picked == ["news", "rooms", "chat"])
        #expect(HubStats.metricChannels(subscribers: subscribers, known: { known.contains($0) }, limit: 0).isEmpty)
        #expect(
            HubStats.metricChannels(subscribers: subscribers, known: { known.contains($0) }, limit: 100)
                == ["news", "rooms", "chat", "tiny"], "no series for a channel without subscribers")
    }

    @Test func rendersNamedChannelsAndSumsTheRest() {
        let worker = WorkerStats(
            id: "worker-1", pid: 1, uptimeSeconds: 1, streams: 6, streamsByChannel: ["rooms": 2, "x-1": 3, "x-2": 1],
            eventsSent: 0, bytesSent: 0, slowClientsDropped: 0, hubLink: "live")
        var hub = HubStats(
            epoch: "e", sequence: 1, channels: 1, eventsPublished: 1, uptimeSeconds: 1, streams: 6, workers: [worker])
        hub.metricChannels = ["rooms"]
        let lines = Set(PrometheusExposition.render(hub: hub, workers: [worker]).split(separator: "\n").map(String.init))
        #expect(lines.contains(#"herald_worker_channel_streams{worker="worker-1",channel="rooms"} 2.0"#))
        #expect(lines.contains(#"herald_worker_channel_streams{worker="worker-1",channel="(other)"} 4.0"#))
        #expect(!lines.contains { $0.contains("x-1") || $0.contains("x-2") })

        // Without the hub (it did not answer), every channel is summed.
        let alone = PrometheusExposition.render(hub: nil, workers: [worker])
        #expect(alone.contains(#"herald_worker_channel_streams{worker="worker-1",channel="(other)"} 6.0"#))
        #expect(!alone.contains(#"channel="rooms""#))
    }
}
