// A stream read in the background: every event is recorded so a test can wait for a
// condition on what arrived (bounded in time), then check order, duplicates and state.
import HeraldClient
import HeraldProtocol
import SSE

/// What one stream received so far.
actor StreamRecord {
    private(set) var events: [SSEMessage] = []
    private(set) var retries: [Int] = []
    private(set) var status: Int?
    private(set) var ended = false

    func add(_ part: EventStreamPart) {
        switch part {
        case .head(let status, _): self.status = status
        case .item(.event(let message)): events.append(message)
        case .item(.retry(let milliseconds)): retries.append(milliseconds)
        case .item(.comment): break
        }
    }

    func end() { ended = true }
}

/// An open stream whose events are recorded as they arrive.
final class RecordingClient: Sendable {
    let connection: EventStreamConnection
    let record = StreamRecord()
    private let reader: Task<Void, Never>

    private init(connection: EventStreamConnection) {
        self.connection = connection
        let record = self.record
        reader = Task {
            do {
                for try await part in connection.parts { await record.add(part) }
            } catch {}
            await record.end()
        }
    }

    static func open(port: Int, path: String, headers: [(String, String)] = []) async throws -> RecordingClient {
        RecordingClient(connection: try await EventStreamConnection.open(port: port, path: path, headers: headers))
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
        await connection.close()
        reader.cancel()
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
