// How herald-bench publishes: through the hub's admin socket, or with HTTP POST to a URL (the
// same way for Herald's /publish and for nchan's publisher location, for a fair comparison).
import HeraldClient
import NIOCore
import NIOHTTP1

/// Sends one event at a time and waits for the server's acknowledgement.
enum Publisher {
    case admin(AdminConnection, channel: String)
    case http(host: String, port: Int, path: String, headers: [(String, String)], group: EventLoopGroup)

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

    func publish(_ data: String) async throws {
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
