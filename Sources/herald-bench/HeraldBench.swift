// `herald-bench`: N event streams through nginx, M events published at R per second through
// the hub's admin socket, and what arrived: delivered, lost, duplicated, latency percentiles,
// the time to connect everyone, and the memory of hub, workers and nginx.
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
            "Load a running Herald: subscribers through nginx, publishes through the admin socket; report latency and loss."
    )

    @Option(help: "nginx's port on 127.0.0.1.") var port: Int = 8080
    @Option(help: "The hub's admin socket.") var adminSocket: String = "run/admin.sock"
    @Option(help: "The run directory, for the pid files of hub, workers and nginx (memory figures).") var runDir:
        String?
    @Option(help: "Subscribers to open (one connection each).") var subscribers: Int = 1000
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
    @Option(help: "New connections per second while connecting.") var connectRate: Int = 5000
    @Option(help: "Event loops for the subscribers.") var eventLoops: Int = 1
    @Option(help: "Seconds to wait for the last events after the last publish.") var drainSeconds: Double = 10
    @Flag(help: "One line of JSON instead of text.") var json = false

    func validate() throws {
        guard subscribers > 0, events > 0, rate > 0, connectRate > 0, (1...64).contains(eventLoops) else {
            throw ValidationError(
                "--subscribers, --events, --rate and --connect-rate must be positive, --event-loops 1 to 64")
        }
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let loops = Array(group.makeIterator())
        var figures: [NIOLoopBound<LoopFigures>] = []
        for loop in loops {
            figures.append(try await loop.submit { NIOLoopBound(LoopFigures(), eventLoop: loop) }.get())
        }
        let memoryBefore = runDir.map { ProcessMemory.read(runDirectory: $0) } ?? [:]

        // Connect at a bounded rate, then wait until every subscriber has its init.
        let connectStart = ContinuousClock.now
        var channels: [Channel] = []
        var next = connectStart
        for index in 0..<subscribers {
            let slot = index % loops.count
            channels.append(
                try await openSubscriber(
                    loop: loops[slot], figures: figures[slot], host: "127.0.0.1", port: port,
                    path: subscribePath ?? "/stream/\(channel)", events: events, readyOnHead: readyOnHead
                ).get())
            next += .nanoseconds(1_000_000_000 / connectRate)
            if next > .now { try await Task.sleep(until: next) }
        }
        try await waitUntil(seconds: 60) { try await sum(figures) { $0.ready } >= subscribers }
        let connectTime = ContinuousClock.now - connectStart
        let memoryConnected = runDir.map { ProcessMemory.read(runDirectory: $0) } ?? [:]

        // Publish at the rate; each event carries its index and send time.
        let publisher = try await Publisher.make(
            adminSocket: adminSocket, url: publishURL, headers: publishHeader, channel: channel, group: group)
        let padding = String(repeating: "x", count: payloadBytes)
        var acknowledged = 0
        let publishStart = ContinuousClock.now
        next = publishStart
        // Publish to acknowledgement, in microseconds (the admin socket's `ok`, or the HTTP 200).
        var acknowledgement = Histogram<UInt64>(
            highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        for index in 0..<events {
            let sent = monotonicNanoseconds()
            try await publisher.publish("\(index) \(sent) \(padding)")
            _ = acknowledgement.record((monotonicNanoseconds() - sent) / 1000)
            acknowledged += 1
            next += .nanoseconds(1_000_000_000 / rate)
            if next > .now { try await Task.sleep(until: next) }
        }
        let publishTime = ContinuousClock.now - publishStart
        await publisher.close()
        let expected = subscribers * events
        _ = try? await waitUntil(seconds: drainSeconds) { try await sum(figures) { $0.delivered } >= expected }

        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        var delivered = 0
        var duplicates = 0
        for loop in figures {
            let part = try await loop.eventLoop.submit {
                (loop.value.latency, loop.value.delivered, loop.value.duplicates)
            }.get()
            histogram.add(part.0)
            delivered += part.1
            duplicates += part.2
        }
        for channel in channels { channel.close(promise: nil) }
        try await group.shutdownGracefully()

        let report = BenchReport(
            subscribers: subscribers, events: events, rate: rate, payloadBytes: payloadBytes,
            acknowledged: acknowledged,
            expected: expected, delivered: delivered, lost: expected - delivered, duplicates: duplicates,
            deliveredPerSecond: Double(delivered) / seconds(publishTime),
            latencyMilliseconds: .init(
                p50: Double(histogram.valueAtPercentile(50)) / 1000,
                p90: Double(histogram.valueAtPercentile(90)) / 1000,
                p99: Double(histogram.valueAtPercentile(99)) / 1000, max: Double(histogram.maxRecorded) / 1000),
            publishAcknowledgedMilliseconds: .init(
                p50: Double(acknowledgement.valueAtPercentile(50)) / 1000,
                p90: Double(acknowledgement.valueAtPercentile(90)) / 1000,
                p99: Double(acknowledgement.valueAtPercentile(99)) / 1000,
                max: Double(acknowledgement.maxRecorded) / 1000),
            connectSeconds: seconds(connectTime),
            memoryKilobytes: .init(before: memoryBefore, connected: memoryConnected))
        print(json ? report.json : report.text)
    }

    private func sum(_ figures: [NIOLoopBound<LoopFigures>], _ value: @escaping @Sendable (LoopFigures) -> Int)
        async throws -> Int
    {
        var total = 0
        for loop in figures { total += try await loop.eventLoop.submit { value(loop.value) }.get() }
        return total
    }

    private func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw ValidationError("gave up waiting after \(seconds) s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
