// How herald-bench publishes: through the hub's admin socket, or with HTTP POST to a URL (the
// same way for Herald's /publish and for nchan's publisher location, for a fair comparison).
import Foundation
import HeraldClient
import Histogram
import NIOCore
import NIOHTTP1

/// Sends events at a steady rate and waits for the server's acknowledgements.
enum Publisher {
    case admin(AdminConnection, channel: String)
    case http(host: String, port: Int, path: String, headers: [(String, String)], group: EventLoopGroup)

    /// HTTP publishes in flight at most: enough that one slow answer never holds back the
    /// schedule, few enough that a stuck server is noticed.
    static let httpInFlight = 64

    static func make(adminSocket: String, url: String?, headers: [String], channel: String, group: EventLoopGroup)
        async throws -> Publisher
    {
        guard let url else {
            return .admin(try await AdminConnection.connect(path: adminSocket, group: group), channel: channel)
        }
        guard url.hasPrefix("http://") else { throw BenchError("--publish-url must start with http://") }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw BenchError("--publish-url needs host:port") }
        let pairs = try headers.map { header -> (String, String) in
            guard let colon = header.firstIndex(of: ":") else {
                throw BenchError("--publish-header must be 'Name: value'")
            }
            return (
                String(header[..<colon]),
                String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            )
        }
        return .http(
            host: String(parts[0]), port: port, path: path.isEmpty ? "/" : String(path), headers: pairs, group: group)
    }

    /// Publishes `count` events at `rate` per second, each `<index> <monotonic ns> <padding>`,
    /// and returns how many were acknowledged and the time from sending each to its
    /// acknowledgement (the admin socket's `ok`, or the HTTP 2xx), in microseconds. A server that
    /// cannot take the rate slows the schedule down; after `deadline` no new event is sent, so
    /// an overloaded run still ends. Admin publishes go one at a time on one connection; HTTP
    /// publishes overlap (up to ``httpInFlight``), so that the schedule holds even when an answer
    /// is slow. The send time is taken as the event goes out.
    func publish(count: Int, rate: Int, payloadBytes: Int, deadline: ContinuousClock.Instant) async throws -> (
        acknowledged: Int, latency: Histogram<UInt64>
    ) {
        let padding = String(repeating: "x", count: payloadBytes)
        let interval = Duration.nanoseconds(1_000_000_000 / rate)
        var next = ContinuousClock.now
        var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        let acknowledged = try await withThrowingTaskGroup(of: UInt64.self) { tasks in
            var acknowledged = 0
            var inFlight = 0
            for index in 0..<count {
                if next > .now { try await Task.sleep(until: next) }
                if ContinuousClock.now > deadline { break }
                next += interval
                let sent = monotonicNanoseconds()
                let data = "\(index) \(sent) \(padding)"
                if case .admin = self {
                    try await send(data)
                    _ = latency.record((monotonicNanoseconds() - sent) / 1000)
                    acknowledged += 1
                    continue
                }
                if inFlight == Self.httpInFlight, let took = try await tasks.next() {
                    _ = latency.record(took)
                    acknowledged += 1
                    inFlight -= 1
                }
                tasks.addTask {
                    try await send(data)
                    return (monotonicNanoseconds() - sent) / 1000
                }
                inFlight += 1
            }
            for try await took in tasks {
                _ = latency.record(took)
                acknowledged += 1
            }
            return acknowledged
        }
        return (acknowledged, latency)
    }

    private func send(_ data: String) async throws {
        switch self {
        case .admin(let connection, let channel):
            _ = try await connection.publish(channel: channel, data: data)
        case .http(let host, let port, let path, let headers, let group):
            let response = try await HTTPExchange.send(
                host: host, port: port, method: .POST, path: path, headers: headers, body: Array(data.utf8),
                group: group)
            guard (200..<300).contains(response.status) else {
                throw BenchError("publish answered \(response.status): \(response.body.prefix(200))")
            }
        }
    }

    func close() async {
        if case .admin(let connection, _) = self { await connection.close() }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
