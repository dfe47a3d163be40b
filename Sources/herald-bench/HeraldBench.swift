// `herald-bench`: N event streams through nginx, M events published at R per second, and what
// arrived: delivered, lost, duplicated, latency percentiles, the time to connect everyone, and
// the memory and CPU of hub, workers and nginx. With --channel-per-subscriber each stream has
// a channel of its own (the notification workload); with --publish-throughput it measures
// publishing itself (see PublishThroughput).
//
// This process only coordinates and publishes, on an event loop of its own; the streams live
// in subscriber processes (copies of herald-bench started with --subscriber-process), so that
// the client spreads over the cores and checking events never delays publishing.
import ArgumentParser
import Foundation
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

@main
struct HeraldBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-bench",
        abstract:
            "Load a running Herald (or nchan): subscribers through nginx, paced publishes; report latency, loss, memory and CPU."
    )

    @Option(help: "nginx's port on 127.0.0.1.") var port: Int = 8080
    @Option(help: "The hub's admin socket.") var adminSocket: String = "run/admin.sock"
    @Option(help: "The run directory, for the pid files of hub, workers and nginx (memory and CPU figures).")
    var runDir: String?
    @Option(help: "Subscribers to open (one connection each).") var subscribers: Int = 1000
    @Option(help: "Subscriber processes (default: one per 5,000 subscribers, at least 2).") var processes: Int?
    @Option(help: "The channel.") var channel: String = "bench"
    @Option(help: "Subscribe path (default /stream/<channel>); e.g. nchan's /sub/<channel>.") var subscribePath: String?
    @Option(
        help:
            "Publish with HTTP POST to this URL instead of the admin socket, e.g. http://127.0.0.1:8080/publish/bench.")
    var publishURL: String?
    @Option(help: "A header for HTTP publishing, 'Name: value' (repeatable), e.g. 'Authorization: Bearer TOKEN'.")
    var publishHeader: [String] = []
    @Flag(help: "Count a subscriber as connected on its 200 response head, for servers that send no init (nchan).")
    var readyOnHead = false
    @Option(help: "Events to publish.") var events: Int = 200
    @Option(help: "Events per second.") var rate: Int = 20
    @Option(help: "Bytes of padding in each event.") var payloadBytes: Int = 64
    @Option(help: "New connections per second while connecting, over all subscriber processes.")
    var connectRate: Int = 50_000
    @Option(help: "Event loops in each subscriber process.") var eventLoops: Int = 1
    @Option(help: "Seconds to wait for the last events after the last publish.") var drainSeconds: Double = 10
    @Flag(help: "One line of JSON instead of text.") var json = false
    @Option(help: "Create this file when publishing starts, so that a profiler can start with it (deploy/bench).")
    var publishingFile: String?
    @Flag(help: .hidden) var subscriberProcess = false
    @Option(help: .hidden) var firstSubscriber = 0

    @Flag(
        help:
            "Many channels: subscriber i streams channel <channel>-<i> (path <subscribe path>-<i>); event k goes to channel <channel>-<k mod subscribers> over HTTP (--publish-url names <channel>'s path)."
    )
    var channelPerSubscriber = false

    @Flag(help: "Measure publishing: closed-loop publishers for --seconds, one stream checking delivery.")
    var publishThroughput = false
    @Option(help: "Publish-throughput transport: http, http-batch (POST --publish-url with NDJSON) or admin.")
    var transport: String = "http"
    @Option(help: "Concurrent HTTP publishers (keep-alive connections); also for --channel-per-subscriber.")
    var publishers: Int = 16
    @Option(name: .customLong("seconds"), help: "Seconds of publishing (publish-throughput).")
    var publishingSeconds: Double = 8
    @Option(help: "Events per NDJSON batch (http-batch).") var batchSize: Int = 1000
    @Option(help: "Admin publishes in flight on the one connection (admin).") var window: Int = 256
    @Option(help: "Pace publishing at this many events per second instead of a closed loop (publish-throughput).")
    var pace: Int?
    @Option(help: "Events sent at most (publish-throughput).") var maxEvents: Int = 20_000_000
    @Flag(
        help:
            "Send an idempotency key with each publish and retry failures with it, up to 7 times, waiting 0.25 s doubling to 2 s between tries."
    )
    var idempotencyKeys = false

    /// Subscriber processes of a many-channel run: the number of channels (all subscribers).
    @Option(name: .customLong("fan-out"), help: .hidden) var fanOutArgument: Int = 1

    func validate() throws {
        guard ["http", "http-batch", "admin"].contains(transport) else {
            throw ValidationError("--transport must be http, http-batch or admin")
        }
        guard publishers > 0, publishingSeconds > 0, batchSize > 0, window > 0, maxEvents > 0, (pace ?? 1) > 0 else {
            throw ValidationError(
                "--publishers, --seconds, --batch-size, --window, --max-events and --pace must be positive")
        }
        if (publishThroughput && transport != "admin") || (channelPerSubscriber && !subscriberProcess),
            publishURL == nil
        {
            throw ValidationError("HTTP publishing needs --publish-url")
        }
        guard subscribers > 0, events > 0, rate > 0, connectRate > 0, (1...64).contains(eventLoops),
            (1...64).contains(processes ?? 1)
        else {
            throw ValidationError(
                "--subscribers, --events, --rate and --connect-rate must be positive, --event-loops and --processes 1 to 64"
            )
        }
    }

    func run() async throws {
        let path = subscribePath ?? "/stream/\(channel)"
        if subscriberProcess {
            try await SubscriberProcess(
                port: port, path: path, subscribers: subscribers, events: events, connectRate: connectRate,
                eventLoops: eventLoops, readyOnHead: readyOnHead, drainSeconds: drainSeconds,
                firstSubscriber: firstSubscriber, fanOut: channelPerSubscriber ? fanOutArgument : nil
            ).run()
            return
        }
        if publishThroughput {
            let report = try await PublishThroughput(
                transport: try publishTransport(fanOut: nil), transportName: transport, publishers: publishers,
                batchSize: transport == "http-batch" ? batchSize : nil, window: transport == "admin" ? window : nil,
                seconds: publishingSeconds, rate: pace, maxEvents: maxEvents, payloadBytes: payloadBytes,
                idempotencyKeys: idempotencyKeys, port: port, checkPath: path, readyOnHead: readyOnHead,
                drainSeconds: drainSeconds, runDir: runDir
            ).run()
            print(report.rendered(json: json))
            return
        }

        // The subscriber processes, each with its share of streams and of the connect rate.
        let count = min(processes ?? max(2, (subscribers + 4999) / 5000), subscribers)
        let shares = (0..<count).map { subscribers / count + ($0 < subscribers % count ? 1 : 0) }
        var arguments = [
            "--port", "\(port)", "--subscribe-path", path, "--events", "\(events)",
            "--connect-rate", "\(max(1, connectRate / count))", "--event-loops", "\(eventLoops)",
            "--drain-seconds", "\(drainSeconds)",
        ]
        if readyOnHead { arguments.append("--ready-on-head") }
        if channelPerSubscriber { arguments += ["--channel-per-subscriber", "--fan-out", "\(subscribers)"] }
        let memoryBefore = runDir.map { ProcessMemory.read(runDirectory: $0) } ?? [:]
        let fleet = try SubscriberFleet(shares: shares, arguments: arguments)
        if channelPerSubscriber {
            try await runManyChannels(fleet: fleet, memoryBefore: memoryBefore)
            return
        }
        do {
            let connectTimes = try await fleet.waitUntilReady()
            let memoryConnected = runDir.map { ProcessMemory.read(runDirectory: $0) } ?? [:]

            // Publish at the rate from an event loop of our own; each event carries its index
            // and send time (CLOCK_MONOTONIC, shared by all processes of the machine).
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let publisher = try await Publisher.make(
                adminSocket: adminSocket, url: publishURL, headers: publishHeader, channel: channel, group: group)
            let cpuBefore = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
            fleet.send(FleetLine.go)
            let publishStart = ContinuousClock.now
            if let publishingFile {
                guard FileManager.default.createFile(atPath: publishingFile, contents: nil) else {
                    throw ValidationError("cannot create --publishing-file \(publishingFile)")
                }
            }
            // Twice the planned time, plus 5 s: past that the server is far beyond its limit.
            let deadline = publishStart + .seconds(2 * Double(events) / Double(rate) + 5)
            let (acknowledged, acknowledgement) = try await publisher.publish(
                count: events, rate: rate, payloadBytes: payloadBytes, deadline: deadline)
            let publishTime = seconds(ContinuousClock.now - publishStart)
            await publisher.close()
            try await group.shutdownGracefully()
            fleet.send("\(FleetLine.published) \(acknowledged)")
            let shares = try await fleet.collect()
            let cpuAfter = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
            let flowSeconds = seconds(ContinuousClock.now - publishStart)

            print(
                BenchReport(
                    subscribers: subscribers, events: events, rate: rate, payloadBytes: payloadBytes,
                    acknowledged: acknowledged, acknowledgement: acknowledgement, publishSeconds: publishTime,
                    shares: shares,
                    connectSeconds: connectTimes.max() ?? 0,
                    memoryKilobytes: .init(before: memoryBefore, connected: memoryConnected),
                    cpuSeconds: cpuAfter.reduce(into: [:]) { $0[$1.key] = $1.value - (cpuBefore[$1.key] ?? 0) },
                    flowSeconds: flowSeconds
                ).rendered(json: json))
        } catch {
            fleet.terminate()
            throw error
        }
    }
}
