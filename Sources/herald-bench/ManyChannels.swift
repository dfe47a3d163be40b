// herald-bench --channel-per-subscriber: the notification workload. Subscriber i streams its own
// channel `<channel>-<i>`; keep-alive HTTP publishers, paced at --rate, send event k to channel
// `<channel>-<k mod subscribers>`, so each event has exactly one recipient. Reports what the
// matrix reports, plus the server's CPU per delivered event.
import Foundation
import HeraldClient
import NIOCore

extension HeraldBench {
    /// The publishers' transport from the command line; `fanOut` spreads events over channels.
    func publishTransport(fanOut: Int?) throws -> PublishTransport {
        if transport == "admin" {
            return .admin(path: adminSocket, channel: channel, window: window, fanOut: fanOut)
        }
        guard let url = publishURL, url.hasPrefix("http://") else {
            throw BenchError("--publish-url must start with http://")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw BenchError("--publish-url needs host:port") }
        let headers = try publishHeader.map { header -> [String] in
            guard let colon = header.firstIndex(of: ":") else {
                throw BenchError("--publish-header must be 'Name: value'")
            }
            return [
                String(header[..<colon]),
                String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces),
            ]
        }
        return .http(
            target: HTTPPublishTargetSettings(
                host: String(parts[0]), port: port, path: path.isEmpty ? "/" : String(path), headers: headers,
                batchSize: transport == "http-batch" ? batchSize : nil, channel: channel, fanOut: fanOut,
                idempotencyKeys: idempotencyKeys),
            publishers: publishers)
    }

    /// The coordinator's side of a many-channel run, once the fleet is started.
    func runManyChannels(fleet: SubscriberFleet, memoryBefore: [String: Int]) async throws {
        do {
            let connectTimes = try await fleet.waitUntilReady()
            let memoryConnected = runDir.map { ProcessMemory.read(runDirectory: $0) } ?? [:]
            let publishing = try publishTransport(fanOut: subscribers)
            let cpuBefore = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
            fleet.send(FleetLine.go)
            let publishStart = ContinuousClock.now
            // Twice the planned time, plus 5 s: past that the server is far beyond its limit.
            let figures = try await runPublishers(
                publishing, seconds: 2 * Double(events) / Double(rate) + 5, maxEvents: events, rate: rate,
                payloadBytes: payloadBytes)
            // Indices 0..<claimed went out; the subscribers expect their share of them.
            fleet.send("\(FleetLine.published) \(figures.claimed)")
            let shares = try await fleet.collect()
            let cpuAfter = runDir.map { ProcessCPU.read(runDirectory: $0) } ?? [:]
            var report = BenchReport(
                subscribers: subscribers, events: events, rate: rate, payloadBytes: payloadBytes,
                acknowledged: figures.acknowledged, acknowledgement: figures.latency, publishSeconds: figures.seconds,
                shares: shares, connectSeconds: connectTimes.max() ?? 0,
                memoryKilobytes: .init(before: memoryBefore, connected: memoryConnected),
                cpuSeconds: cpuAfter.reduce(into: [:]) { $0[$1.key] = $1.value - (cpuBefore[$1.key] ?? 0) },
                flowSeconds: seconds(ContinuousClock.now - publishStart), channelPerSubscriber: true)
            report.publishRefusals = Dictionary(uniqueKeysWithValues: figures.refusals.map { ("\($0.key)", $0.value) })
            report.publishTransportErrors = figures.transportErrors
            print(report.rendered(json: json))
        } catch {
            fleet.terminate()
            throw error
        }
    }
}
