// Byte tables for the encoder: what each event must look like on the wire, and payloads
// that try to inject fields or whole events.
import SSE
import Testing

@Suite("SSE encoder")
struct SSEEncoderTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let id: String?
        let event: String?
        let data: String
        let bytes: String
        var testDescription: String { name }
    }

    static let table: [Case] = [
        Case(name: "data only", id: nil, event: nil, data: "hello", bytes: "data: hello\n\n"),
        Case(name: "all fields", id: "k3-7", event: "delta", data: "{}", bytes: "id: k3-7\nevent: delta\ndata: {}\n\n"),
        Case(name: "empty data", id: nil, event: nil, data: "", bytes: "data: \n\n"),
        Case(name: "LF splits data", id: nil, event: nil, data: "a\nb", bytes: "data: a\ndata: b\n\n"),
        Case(name: "CR splits data", id: nil, event: nil, data: "a\rb", bytes: "data: a\ndata: b\n\n"),
        Case(name: "CRLF is one break", id: nil, event: nil, data: "a\r\nb", bytes: "data: a\ndata: b\n\n"),
        Case(name: "LFCR is two breaks", id: nil, event: nil, data: "a\n\rb", bytes: "data: a\ndata: \ndata: b\n\n"),
        Case(name: "trailing break", id: nil, event: nil, data: "a\n", bytes: "data: a\ndata: \n\n"),
        Case(name: "leading space kept", id: nil, event: nil, data: " x", bytes: "data:  x\n\n"),
        Case(
            name: "injected event", id: nil, event: nil, data: "x\n\nevent: evil\ndata: pwned",
            bytes: "data: x\ndata: \ndata: event: evil\ndata: data: pwned\n\n"),
        Case(
            name: "injected id via CR", id: "1", event: nil, data: "x\rid: 999\r\rdata: y",
            bytes: "id: 1\ndata: x\ndata: id: 999\ndata: \ndata: data: y\n\n"),
        Case(
            name: "unicode", id: nil, event: "änderung", data: "Zürich 🚲", bytes: "event: änderung\ndata: Zürich 🚲\n\n"),
    ]

    @Test("encodes events exactly", arguments: table)
    func encodesEventsExactly(_ item: Case) throws {
        let event = try SSEEvent(id: item.id, event: item.event, data: item.data)
        #expect(SSEEncoder.encode(event) == Array(item.bytes.utf8))
    }

    @Test("refuses an id or event name holding CR, LF or NUL", arguments: ["a\nb", "a\rb", "a\0b", "\n", "x\r\n"])
    func refusesFieldInjection(_ value: String) {
        #expect(throws: SSEFieldError.self) { try SSEEvent(id: value, data: "x") }
        #expect(throws: SSEFieldError.self) { try SSEEvent(event: value, data: "x") }
    }

    @Test("names the refused character in its error")
    func errorNamesCharacter() {
        #expect(throws: SSEFieldError(field: .event, character: "\n")) { try SSEEvent(event: "a\nb", data: "") }
        let error = SSEFieldError(field: .id, character: "\0")
        #expect(error.description.contains("NUL"))
    }

    @Test("writes comments on their own lines, even when the text holds line breaks")
    func comments() {
        #expect(SSEEncoder.comment("ping") == Array(": ping\n\n".utf8))
        #expect(SSEEncoder.comment("") == Array(":\n\n".utf8))
        #expect(SSEEncoder.comment("a\ndata: x") == Array(": a\n: data: x\n\n".utf8))
    }

    @Test("writes the reconnection time")
    func retry() {
        #expect(SSEEncoder.retry(milliseconds: 2000) == Array("retry: 2000\n\n".utf8))
        #expect(SSEEncoder.retry(milliseconds: -5) == Array("retry: 0\n\n".utf8))
    }

    @Test("every encoded payload parses back to itself, with line ends normalised to LF")
    func roundTrip() throws {
        let payloads = ["", "x", "a\nb", "a\r\nb\rc", "\n\n", "data: x\n\nid: 3", String(repeating: "é", count: 300)]
        for payload in payloads {
            var parser = SSEParser()
            let event = try SSEEvent(id: "e-1", event: "delta", data: payload)
            let items = parser.feed(SSEEncoder.encode(event))
            let expected = payload.replacingCRLF()
            #expect(items == [.event(SSEMessage(type: "delta", data: expected, lastEventId: "e-1"))])
        }
    }
}

extension String {
    /// The string with CRLF and CR turned into LF, as an event stream delivers it.
    func replacingCRLF() -> String {
        var out = ""
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out.unicodeScalars.append("\n")
                previousCR = true
            } else {
                if !(scalar == "\n" && previousCR) { out.unicodeScalars.append(scalar) }
                previousCR = false
            }
        }
        return out
    }
}
