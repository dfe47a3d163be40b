// The client side of a `text/event-stream`: the WHATWG "interpreting an event stream"
// algorithm, fed bytes in chunks of any size. Used by tests and by the benchmark client.

/// An event as a browser's `EventSource` would dispatch it.
public struct SSEMessage: Sendable, Equatable {
    /// The event type: the last `event:` value, or `message` when there was none.
    public var type: String
    /// The data lines joined with LF.
    public var data: String
    /// The last event id in force when the event was dispatched (it carries over between events).
    public var lastEventId: String

    public init(type: String = "message", data: String, lastEventId: String = "") {
        self.type = type
        self.data = data
        self.lastEventId = lastEventId
    }
}

/// Incremental parser for `text/event-stream` bytes.
///
/// Line ends may be CRLF, LF or CR, and may be split across chunks. A leading UTF-8 BOM is
/// skipped. Comments and `retry` values are reported too, so tests can see heartbeats.
public struct SSEParser: Sendable {
    /// What the parser found in the bytes it was given.
    public enum Item: Sendable, Equatable {
        /// A dispatched event.
        case event(SSEMessage)
        /// A comment line (without its leading colon and one optional space).
        case comment(String)
        /// A valid `retry` field: the new reconnection time in milliseconds.
        case retry(Int)
    }

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var eventType: String = ""
    private var lastEventId: String = ""
    private var skipLineFeed = false
    private var atStart = true
    private var bomProgress = 0

    /// The last event id buffer (what a reconnecting `EventSource` would send as `Last-Event-ID`).
    public var currentLastEventId: String { lastEventId }

    public init() {}

    /// Feeds bytes and returns the items they complete. Bytes of an unfinished line are kept.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Item] where Bytes.Element == UInt8 {
        var items: [Item] = []
        for byte in bytes {
            if atStart {
                let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
                if byte == bom[bomProgress] {
                    bomProgress += 1
                    if bomProgress == bom.count { atStart = false }
                    continue
                }
                atStart = false
                line.append(contentsOf: bom[0..<bomProgress])
            }
            if skipLineFeed {
                skipLineFeed = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"):
                skipLineFeed = true
                processLine(into: &items)
            case UInt8(ascii: "\n"):
                processLine(into: &items)
            default:
                line.append(byte)
            }
        }
        return items
    }

    private mutating func processLine(into items: inout [Item]) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            dispatch(into: &items)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            var text = line[1...]
            if text.first == UInt8(ascii: " ") { text = text.dropFirst() }
            items.append(.comment(String(decoding: text, as: UTF8.self)))
            return
        }
        let name: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            name = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            name = line[...]
            value = []
        }
        switch String(decoding: name, as: UTF8.self) {
        case "event":
            eventType = String(decoding: value, as: UTF8.self)
        case "data":
            data.append(contentsOf: value)
            data.append(UInt8(ascii: "\n"))
        case "id":
            if !value.contains(0) { lastEventId = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let milliseconds = Int(String(decoding: value, as: UTF8.self))
            {
                items.append(.retry(milliseconds))
            }
        default:
            break  // Unknown fields are ignored, as the specification says.
        }
    }

    private mutating func dispatch(into items: inout [Item]) {
        defer {
            data.removeAll(keepingCapacity: true)
            eventType = ""
        }
        guard !data.isEmpty else { return }  // no data line: nothing is dispatched
        data.removeLast()  // the LF after the last data line; `data:` alone dispatches ""
        let type = eventType.isEmpty ? "message" : eventType
        items.append(
            .event(SSEMessage(type: type, data: String(decoding: data, as: UTF8.self), lastEventId: lastEventId)))
    }
}
