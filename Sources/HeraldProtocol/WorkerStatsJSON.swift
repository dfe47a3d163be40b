// JSON text of the stats types, with the one encoder configuration every side uses.
import Foundation

/// Encodes and decodes `WorkerStats` and `HubStats` as compact JSON with sorted keys.
public enum WorkerStatsJSON {
    /// The stats as one line of JSON.
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A worker's figures from JSON, or `nil` if the text is not such a document.
    public static func decode(_ json: String) -> WorkerStats? {
        try? JSONDecoder().decode(WorkerStats.self, from: Data(json.utf8))
    }

    /// A `T` from JSON, or `nil` if the text is not such a document.
    public static func decode<T: Decodable>(_ type: T.Type, from json: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(json.utf8))
    }

    /// The hub's figures from JSON, or `nil` if the text is not such a document.
    public static func decodeHub(_ json: String) -> HubStats? {
        try? JSONDecoder().decode(HubStats.self, from: Data(json.utf8))
    }
}
