// The subscriber side of herald-bench, one process of the fleet: opens its share of the
// streams, says when they are all up, counts what arrives while the coordinator publishes, and
// prints its figures as one JSON line.
import ArgumentParser
import Foundation
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

struct SubscriberProcess {
    var port: Int
    var path: String
    var subscribers: Int
    var events: Int
    var connectRate: Int
    var eventLoops: Int
    var readyOnHead: Bool
    var drainSeconds: Double
    /// The fleet-wide number of this process's first subscriber.
    var firstSubscriber = 0
    /// Many channels: subscriber i streams `<path>-<i>` and expects events k with k mod
    /// `fanOut` == i.
    var fanOut: Int?

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let loops = Array(group.makeIterator())
        var figures: [NIOLoopBound<LoopFigures>] = []
        for loop in loops {
            figures.append(try await loop.submit { NIOLoopBound(LoopFigures(), eventLoop: loop) }.get())
        }

        // Start connections at a bounded rate without waiting for each, then wait until every
        // subscriber is streaming.
        let connectStart = ContinuousClock.now
        var opening: [EventLoopFuture<Channel>] = []
        var channels: [Channel] = []
        var next = connectStart
        do {
            for index in 0..<subscribers {
                let slot = index % loops.count
                let global = firstSubscriber + index
                opening.append(
                    openSubscriber(
                        loop: loops[slot], figures: figures[slot], host: "127.0.0.1", port: port,
                        path: fanOut == nil ? path : "\(path)-\(global)", events: events, readyOnHead: readyOnHead,
                        fanOut: fanOut ?? 1, channelIndex: fanOut == nil ? 0 : global))
                next += .nanoseconds(1_000_000_000 / connectRate)
                if next > .now { try await Task.sleep(until: next) }
            }
            for future in opening { channels.append(try await future.get()) }
            try await waitUntil(seconds: 60) { try await sum(figures) { $0.ready } >= subscribers }
        } catch {
            say("\(FleetLine.failed) \(channels.count) connected, \(error)")
            throw ExitCode.failure
        }
        say("\(FleetLine.ready) \(seconds(ContinuousClock.now - connectStart))")

        guard await readLine() == FleetLine.go else { throw ExitCode.failure }
        let cpuStart = ProcessCPU.ownSeconds()
        let wallStart = ContinuousClock.now
        // "published N" (N events were acknowledged), or EOF if the coordinator died.
        let published = await readLine()?.split(separator: " ").last.flatMap { Int($0) } ?? events
        let expected: Int
        if let fanOut {
            // Subscriber i gets the events k < published with k mod fanOut == i.
            expected = (firstSubscriber..<firstSubscriber + subscribers).reduce(0) {
                $0 + published / fanOut + ($1 < published % fanOut ? 1 : 0)
            }
        } else {
            expected = subscribers * published
        }
        _ = try? await waitUntil(seconds: drainSeconds) { try await sum(figures) { $0.delivered } >= expected }
        let cpuSeconds = ProcessCPU.ownSeconds() - cpuStart
        let wallSeconds = seconds(ContinuousClock.now - wallStart)

        var share = SubscriberShare(
            subscribers: subscribers, connectSeconds: 0, delivered: 0, duplicates: 0, ended: 0,
            latency: Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three),
            cpuSeconds: cpuSeconds, wallSeconds: wallSeconds)
        for loop in figures {
            let part = try await loop.eventLoop.submit {
                (
                    loop.value.latency, loop.value.delivered, loop.value.duplicates, loop.value.ended,
                    loop.value.misrouted
                )
            }.get()
            share.misrouted += part.4
            share.latency.add(part.0)
            share.delivered += part.1
            share.duplicates += part.2
            share.ended += part.3
        }
        for channel in channels { channel.close(promise: nil) }
        try await group.shutdownGracefully()
        let json = try JSONEncoder().encode(share)
        say(String(decoding: json, as: UTF8.self))
    }

    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private func readLine() async -> String? {
        await Task.detached { Swift.readLine() }.value
    }

    private func sum(_ figures: [NIOLoopBound<LoopFigures>], _ value: @escaping @Sendable (LoopFigures) -> Int)
        async throws -> Int
    {
        var total = 0
        for loop in figures { total += try await loop.eventLoop.submit { value(loop.value) }.get() }
        return total
    }
}

/// Polls `condition` every 10 ms until it holds, or throws after `seconds`.
func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw BenchError("gave up waiting after \(seconds) s") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A duration in seconds.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
