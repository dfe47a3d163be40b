// A stream read in the background: every event is recorded so a test can wait for a
// condition on what arrived (bounded in time), then check order, duplicates and state.
import HeraldClient
import HeraldProtocol
import SSE
import Synchronization

/// The connection a reconnecting client currently reads.
final class ConnectionBox: Sendable {
    let connection: Mutex<EventStreamConnection?>
    init(_ connection: EventStreamConnection) { self.connection = Mutex(connection) }
}

/// A header for a reconnect (tuples are not Sendable).
struct HeaderPair: Sendable {
    let name: String
    let value: String
}

/// What one stream received so far.
actor StreamRecord {
    private(set) var events: [SSEMessage] = []
    /// When each event arrived (same index as `events`).
    private(set) var arrivals: [ContinuousClock.Instant] = []
    private(set) var retries: [Int] = []
    private(set) var status: Int?
    private(set) var ended = false

    func add(_ part: EventStreamPart) {
        switch part {
        case .head(let status, _): self.status = status
        case .item(.event(let message)):
            events.append(message)
            arrivals.append(.now)
        case .item(.retry(let milliseconds)): retries.append(milliseconds)
        case .item(.comment): break
        }
    }

    func end() { ended = true }

    /// Connections that ended (by the server, an error, or a close).
    private(set) var disconnects = 0

    func disconnected() { disconnects += 1 }
}

/// An open stream whose events are recorded as they arrive. With `reconnect`, it behaves as
/// a browser's EventSource: when the stream ends or fails it waits the last `retry` it was sent
/// and connects again with `Last-Event-ID`, until closed.
final class RecordingClient: Sendable {
    let record = StreamRecord()
    private let reader: Task<Void, Never>
    private let current: ConnectionBox

    private init(first: EventStreamConnection, reconnect: Bool, port: Int, path: String, headers: [(String, String)]) {
        let current = ConnectionBox(first)
        self.current = current
        let record = self.record
        let headerList = headers.map { HeaderPair(name: $0.0, value: $0.1) }
        reader = Task {
            var connection = first
            while true {
                do {
                    for try await part in connection.parts { await record.add(part) }
                } catch {}
                await record.disconnected()
                guard reconnect, !Task.isCancelled else { break }
                // EventSource waits the reconnection time, then resumes after the last id it saw.
                let wait = await record.retries.last ?? 2000
                do {
                    try await Task.sleep(for: .milliseconds(wait))
                    var headers = headerList.filter { $0.name.lowercased() != "last-event-id" }.map {
                        ($0.name, $0.value)
                    }
                    if let last = await record.events.last?.lastEventId, !last.isEmpty {
                        headers.append(("Last-Event-ID", last))
                    }
                    let next = try await EventStreamConnection.open(port: port, path: path, headers: headers)
                    current.connection.withLock { $0 = next }
                    connection = next
                } catch is CancellationError {
                    break
                } catch {
                    continue  // nobody accepted: try again after the same wait
                }
            }
            await record.end()
        }
    }

    static func open(port: Int, path: String, headers: [(String, String)] = [], reconnect: Bool = false) async throws
        -> RecordingClient
    {
        let first = try await EventStreamConnection.open(port: port, path: path, headers: headers)
        return RecordingClient(first: first, reconnect: reconnect, port: port, path: path, headers: headers)
    }

    /// Waits until `condition` holds for the events so far; throws after `seconds`.
    @discardableResult
    func waitFor(within seconds: Double = 15, _ what: String, _ condition: @Sendable ([SSEMessage]) -> Bool)
        async throws -> [SSEMessage]
    {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let events = await record.events
            if condition(events) { return events }
            let ended = await record.ended
            if ContinuousClock.now > deadline || ended {
                throw ProbeError(
                    "stream: \(what) did not happen (\(events.count) events, last \(events.last?.lastEventId ?? "-"))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until an event with id `id` arrived.
    func waitFor(id: String, within seconds: Double = 15) async throws -> [SSEMessage] {
        try await waitFor(within: seconds, "event \(id)") { $0.contains { $0.lastEventId == id } }
    }

    func close() async {
        reader.cancel()
        let connection = current.connection.withLock { $0 }
        await connection?.close()
    }
}

/// Folds `init` and merge `delta` events into each channel's state, as a page would.
struct StateFolder {
    var states: [String: JSONValue] = [:]

    /// Applies one event of a single-channel stream on `channel`.
    mutating func apply(_ message: SSEMessage, channel: String) throws {
        switch message.type {
        case "init": states[channel] = try JSONValue(parsing: message.data)
        case "delta": states[channel] = (states[channel] ?? .null).merging(patch: try JSONValue(parsing: message.data))
        default: break
        }
    }
}

extension [SSEMessage] {
    /// The sequence numbers of the events, in arrival order.
    var sequences: [UInt64] { compactMap { EventID(parsing: $0.lastEventId)?.sequence } }

    /// Whether the sequence numbers only ever go up (no duplicate, no reordering); an `init`
    /// may repeat the sequence of the event before it only when it starts a stream.
    var strictlyIncreasing: Bool {
        let values = sequences
        return zip(values, values.dropFirst()).allSatisfy { $0 < $1 }
    }
}
