// Publish batches in NDJSON (`POST /publish`, `heraldctl publish --batch`): one event per line,
// `{"channel":"c","data":…,"event":"name","merge":true,"key":"k"}`. One decoder, used by the worker's HTTP
// front and by the hub's admin session, so both refuse the same lines with the same words.

/// Decodes and checks a whole batch before anything of it is published.
public enum PublishBatch {
    /// The media type of a batch over HTTP.
    public static let mediaType = "application/x-ndjson"

    /// The default most events in one batch.
    public static let defaultMaxEvents = 1000

    /// Why a batch was refused: the line (1-based; 0 for the batch as a whole) and what was wrong.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String

        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }

        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// The fields a line may carry.
    static let fields: Set<String> = ["channel", "data", "event", "merge", "key"]

    /// Splits `text` into lines (LF or CRLF; one final line break is allowed) and decodes each.
    /// Every line must hold an event: an empty line in the middle is refused, so that line
    /// numbers and event positions agree.
    public static func decode(_ text: String, maxEvents: Int, maxDataBytes: Int) -> Result<[PublishRequest], Refusal> {
        // By bytes: a CRLF is one Character in Swift, so splitting characters at LF would miss it.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        let texts = lines.map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        return decode(lines: texts, maxEvents: maxEvents, maxDataBytes: maxDataBytes)
    }

    /// Decodes one event per line.
    public static func decode(lines: [String], maxEvents: Int, maxDataBytes: Int) -> Result<[PublishRequest], Refusal> {
        guard !lines.isEmpty else {
            return .failure(Refusal(line: 0, message: "the batch holds no events (one JSON object per line)"))
        }
        guard lines.count <= maxEvents else {
            return .failure(
                Refusal(line: 0, message: "the batch holds \(lines.count) events (at most \(maxEvents) per batch)"))
        }
        var requests: [PublishRequest] = []
        requests.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            do {
                requests.append(try decode(line: line, maxDataBytes: maxDataBytes))
            } catch {
                return .failure(Refusal(line: index + 1, message: error.message))
            }
        }
        if let refusal = repeatedKey(in: requests) { return .failure(refusal) }
        return .success(requests)
    }

    /// Refuses a batch in which two events carry the same idempotency key, naming both lines.
    public static func repeatedKey(in requests: [PublishRequest]) -> Refusal? {
        var lineOfKey: [String: Int] = [:]
        for (index, request) in requests.enumerated() {
            guard let key = request.key else { continue }
            if let earlier = lineOfKey[key] {
                return Refusal(
                    line: index + 1, message: "idempotency key \(JSONValue.quoted(key)) is already on line \(earlier)")
            }
            lineOfKey[key] = index + 1
        }
        return nil
    }

    /// One line as a publish, checked by `PublishRules`.
    public static func decode(line: String, maxDataBytes: Int) throws(LineError) -> PublishRequest {
        if line.allSatisfy({ $0 == " " || $0 == "\t" }) { throw LineError("empty line (one JSON object per line)") }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: line)
        } catch {
            throw LineError("\(error)")
        }
        guard case .object(let object) = value else { throw LineError("a line must be a JSON object") }
        for (key, _) in object.members where !fields.contains(key) {
            throw LineError("unknown field \(JSONValue.quoted(key)) (allowed: channel, data, event, merge, key)")
        }
        guard case .string(let channel) = object["channel"] else {
            throw LineError("\"channel\" must be a string")
        }
        let data: String
        switch object["data"] {
        case nil: throw LineError("\"data\" is missing")
        case .string(let text): data = text
        case .some(let other): data = other.serialized
        }
        var name = "delta"
        switch object["event"] {
        case nil: break
        case .string(let text): name = text
        case .some: throw LineError("\"event\" must be a string")
        }
        var merge = false
        switch object["merge"] {
        case nil: break
        case .bool(let flag): merge = flag
        case .some: throw LineError("\"merge\" must be true or false")
        }
        var key: String?
        switch object["key"] {
        case nil: break
        case .string(let text): key = text
        case .some: throw LineError("\"key\" must be a string (an idempotency key)")
        }
        if merge, case .object = object["data"] {
        } else if merge {
            throw LineError("\"merge\": true needs \"data\" to be a JSON object (RFC 7386 merge patch)")
        }
        let request = PublishRequest(channel: channel, name: name, data: data, merge: merge, key: key)
        if let refusal = PublishRules.refusal(for: request, maxDataBytes: maxDataBytes) { throw LineError(refusal) }
        return request
    }

    /// What was wrong with one line.
    public struct LineError: Error, Equatable {
        public var message: String
        init(_ message: String) { self.message = message }
    }

    /// The answer to an accepted batch: `{"ids":[…]}`, the events' ids in order, and with
    /// `"repeated":[…]` the lines (1-based) not published again because of their keys.
    public static func idsDocument(_ ids: [String], repeatedLines: [Int] = []) -> String {
        var out = "{\"ids\":["
        for (index, id) in ids.enumerated() {
            if index > 0 { out += "," }
            JSONValue.writeString(id, into: &out)
        }
        out += "]"
        if !repeatedLines.isEmpty { out += ",\"repeated\":[" + repeatedLines.map(String.init).joined(separator: ",") + "]" }
        return out + "}"
    }
}
