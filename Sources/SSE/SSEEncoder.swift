// Turns events, comments and reconnection times into the exact bytes of a `text/event-stream`:
// UTF-8, LF line ends, one blank line after each event.

/// Encodes the server side of a `text/event-stream`.
///
/// Everything it writes is safe by construction: `data` is split on CR, LF and CRLF into
/// several `data:` lines and comments are split the same way, so no payload can start a field
/// or an event of its own. `id` and `event` were already checked by `SSEEvent`.
public enum SSEEncoder {
    /// Appends `event` to `out`: `id:`, `event:`, one `data:` line per line of data, a blank line.
    public static func encode(_ event: SSEEvent, into out: inout [UInt8]) {
        if let id = event.id { appendField("id", id, into: &out) }
        if let name = event.event { appendField("event", name, into: &out) }
        forEachLine(of: event.data) { line in appendField("data", line, into: &out) }
        out.append(newline)
    }

    /// The bytes of `event`.
    public static func encode(_ event: SSEEvent) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(event.data.utf8.count + 32)
        encode(event, into: &out)
        return out
    }

    /// Appends a comment (`: text`), one comment line per line of `text`, ending with a blank
    /// line so that proxies and clients see it at once. Browsers ignore comments; heartbeats use them.
    public static func comment(_ text: String, into out: inout [UInt8]) {
        forEachLine(of: text) { line in
            out.append(colon)
            if !line.isEmpty {
                out.append(space)
                out.append(contentsOf: line)
            }
            out.append(newline)
        }
        out.append(newline)
    }

    /// The bytes of a comment.
    public static func comment(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        comment(text, into: &out)
        return out
    }

    /// Appends `retry: <milliseconds>` and a blank line: the client's reconnection time.
    public static func retry(milliseconds: Int, into out: inout [UInt8]) {
        appendField("retry", String(max(0, milliseconds)), into: &out)
        out.append(newline)
    }

    /// The bytes of a `retry` line.
    public static func retry(milliseconds: Int) -> [UInt8] {
        var out: [UInt8] = []
        retry(milliseconds: milliseconds, into: &out)
        return out
    }

    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")

    private static func appendField(_ name: StaticString, _ value: String, into out: inout [UInt8]) {
        var value = value
        value.withUTF8 { appendField(name, $0, into: &out) }
    }

    private static func appendField(_ name: StaticString, _ value: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(colon)
        out.append(space)
        out.append(contentsOf: value)
        out.append(newline)
    }

    /// Calls `body` with each line of `text`, where CRLF, CR and LF all end a line.
    /// An empty text is one empty line, and a trailing line break leaves a last empty line.
    /// Works on the string's contiguous UTF-8, so each line is copied out in one piece.
    private static func forEachLine(of text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == newline || byte == carriageReturn {
                    body(UnsafeBufferPointer(rebasing: bytes[start..<index]))
                    var next = index + 1
                    if byte == carriageReturn, next < bytes.count, bytes[next] == newline { next += 1 }
                    start = next
                    index = next
                } else {
                    index += 1
                }
            }
            body(UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
        }
    }
}
