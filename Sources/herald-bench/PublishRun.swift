// Runs the publishers of one publishing run on an event loop of their own: N keep-alive HTTP
// publishers (single events or NDJSON batches) or one pipelined admin connection, closed loop
// or paced, bounded by time and by count; returns the tally's figures.
import Foundation
import HeraldClient
import Histogram
import NIOCore
import NIOPosix

/// How the publishers reach the server.
enum PublishTransport: Sendable {
    /// `publishers` keep-alive connections; `target.batchSize` nil for one event per POST.
    case http(target: HTTPPublishTargetSettings, publishers: Int)
    /// One pipelined connection to the admin socket at `path`.
    case admin(path: String, channel: String, window: Int, fanOut: Int?)
}

/// `HTTPPublishTarget` as a Sendable value (headers as pairs of strings).
struct HTTPPublishTargetSettings: Sendable {
    var host: String
    var port: Int
    var path: String
    var headers: [[String]]
    var batchSize: Int?
    var channel: String
    var fanOut: Int?
    var idempotencyKeys: Bool

    var target: HTTPPublishTarget {
        HTTPPublishTarget(
            host: host, port: port, path: path, headers: headers.map { ($0[0], $0[1]) }, batchSize: batchSize,
            channel: channel, fanOut: fanOut, idempotencyKeys: idempotencyKeys,
            keyPrefix: "bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", attempts: 1 + 7)
    }
}

/// The figures of a finished run, copied off the publishers' loop.
struct PublishFigures: Sendable {
    var claimed: Int
    var acknowledged: Int
    var acknowledgedIndices: [UInt64]
    var latency: Histogram<UInt64>
    var refusals: [Int: Int]
    var transportErrors: Int
    var retries: Int
    var answers: Int
    /// Seconds from the start to the last acknowledgement.
    var seconds: Double
}

/// Runs publishers until `seconds` have passed or `maxEvents` indices were sent, paced at `rate`
/// events per second if given. Requests unanswered 5 s after the end are abandoned.
func runPublishers(
    _ transport: PublishTransport, seconds: Double, maxEvents: Int, rate: Int?, payloadBytes: Int
) async throws -> PublishFigures {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    let loop = group.next()
    let data = EventData(paddingBytes: payloadBytes)
    let tally = try await loop.flatSubmit { () -> EventLoopFuture<NIOLoopBound<PublishTally>> in
        let tally = PublishTally(seconds: seconds, maxEvents: maxEvents, rate: rate)
        let bound = NIOLoopBound(tally, eventLoop: loop)
        let hardEnd = TimeAmount.nanoseconds(Int64(seconds * 1e9) + 5_000_000_000)
        switch transport {
        case .http(let settings, let publishers):
            let target = settings.target
            let all = (0..<publishers).map { _ in HTTPPublisher(target: target, data: data, tally: tally, loop: loop) }
            let boundAll = NIOLoopBound(all, eventLoop: loop)
            for publisher in all { publisher.start() }
            loop.scheduleTask(in: hardEnd) { for publisher in boundAll.value { publisher.abandon() } }
            return EventLoopFuture.andAllComplete(all.map(\.done), on: loop).map { bound }
        case .admin(let path, let channel, let window, let fanOut):
            return AdminPipeline.start(
                path: path, tally: tally, channel: channel, data: data, window: window, fanOut: fanOut, loop: loop
            ).flatMap { pipeline in
                let boundPipeline = NIOLoopBound(pipeline, eventLoop: loop)
                loop.scheduleTask(in: hardEnd) { boundPipeline.value.abandon() }
                return pipeline.done.map { bound }
            }
        }
    }.get()
    return try await loop.submit {
        let t = tally.value
        return PublishFigures(
            claimed: t.claimed, acknowledged: t.acknowledged, acknowledgedIndices: t.acknowledgedIndices,
            latency: t.latency, refusals: t.refusals, transportErrors: t.transportErrors, retries: t.retries,
            answers: t.answers, seconds: Double(t.lastAcknowledgement - t.start) / 1e9)
    }.get()
}
