// Test-side helpers over HeraldClient: wait for the next event or head with a deadline.
import HeraldClient
import SSE
import Synchronization

/// An open stream and an iterator over its parts, with deadlines on every wait.
final class StreamProbe {
    let connection: EventStreamConnection
    private var iterator: AsyncThrowingStream<EventStreamPart, Error>.AsyncIterator

    init(port: Int, path: String, headers: [(String, String)] = []) async throws {
        connection = try await EventStreamConnection.open(port: port, path: path, headers: headers)
        iterator = connection.parts.makeAsyncIterator()
    }

    /// The next part (`nil` when the server ended the stream), or an error after `seconds`:
    /// the deadline closes the connection, which ends the wait.
    func next(within seconds: Double = 10) async throws -> EventStreamPart? {
        let connection = self.connection
        let expired = Mutex(false)
        let timer = Task {
            try await Task.sleep(for: .seconds(seconds))
            expired.withLock { $0 = true }
            await connection.close()
        }
        defer { timer.cancel() }
        let part = try await iterator.next()
        if part == nil, expired.withLock({ $0 }) { throw ProbeError("nothing arrived within \(seconds) s") }
        return part
    }

    /// The response head (the first part).
    func head() async throws -> (status: Int, headers: [String: String]) {
        guard case .head(let status, let headers)? = try await next() else {
            throw ProbeError("the stream sent no response head")
        }
        return (status, headers)
    }

    /// The next dispatched event, skipping comments and retry lines.
    func nextEvent(within seconds: Double = 10) async throws -> SSEMessage {
        while true {
            guard let part = try await next(within: seconds) else { throw ProbeError("the stream ended") }
            if case .item(.event(let message)) = part { return message }
        }
    }

    func close() async { await connection.close() }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
