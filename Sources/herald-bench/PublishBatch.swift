// The wire format of Herald's batch publish, `POST /publish` with an NDJSON body: one line
// `{"channel":"…","data":"…"}` (plus `"key":"…"` with idempotency keys) per event, answered
// with `{"ids":["…",…]}` in line order.
import Foundation
import NIOCore

/// Encodes batch lines and decodes the ids of the answer.
enum PublishBatch {
    /// Appends one NDJSON line for an event of `channel` whose data is `data` (UTF-8), with an
    /// idempotency key if given, ended by a newline.
    static func appendLine(
        channel: some Collection<UInt8>, data: some Collection<UInt8>, key: (some Collection<UInt8>)?,
        to buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString("{\"channel\":")
        appendJSONString(channel, to: &buffer)
        buffer.writeStaticString(",\"data\":")
        appendJSONString(data, to: &buffer)
        if let key {
            buffer.writeStaticString(",\"key\":")
            appendJSONString(key, to: &buffer)
        }
        buffer.writeStaticString("}\n")
    }

    /// Appends `utf8` as a JSON string: quotes, with `"`, `\` and control characters escaped
    /// (RFC 8259 §7); runs of ordinary bytes are copied whole.
    static func appendJSONString(_ utf8: some Collection<UInt8>, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = utf8.startIndex
        var at = utf8.startIndex
        while at != utf8.endIndex {
            let byte = utf8[at]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 {
                buffer.writeBytes(utf8[runStart..<at])
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 10: buffer.writeStaticString("\\n")
                case 13: buffer.writeStaticString("\\r")
                case 9: buffer.writeStaticString("\\t")
                default:
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex[Int(byte >> 4)])
                    buffer.writeInteger(hex[Int(byte & 15)])
                }
                runStart = utf8.index(after: at)
            }
            at = utf8.index(after: at)
        }
        buffer.writeBytes(utf8[runStart..<at])
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// The answer to a batch: one id per line, in order.
    struct Answer: Decodable, Equatable {
        var ids: [String]
    }

    /// The ids of an answer body, or nil if it is not `{"ids":[…]}`.
    static func ids(in body: [UInt8]) -> [String]? {
        try? JSONDecoder().decode(Answer.self, from: Data(body)).ids
    }
}
