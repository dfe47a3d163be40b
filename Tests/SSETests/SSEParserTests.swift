// The parser against the WHATWG interpretation rules, fed whole and byte by byte.
import SSE
import Testing

@Suite("SSE parser")
struct SSEParserTests {
    /// Feeds `text` in chunks of `chunk` bytes and collects everything found.
    func parse(_ text: String, chunk: Int = .max) -> [SSEParser.Item] {
        var parser = SSEParser()
        let bytes = Array(text.utf8)
        var items: [SSEParser.Item] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            items += parser.feed(bytes[start..<end])
            start = end
        }
        return items
    }

    static let chunkSizes = [Int.max, 1, 2, 3, 7]

    @Test("splits lines on LF, CR and CRLF in any chunking", arguments: chunkSizes)
    func lineEnds(_ chunk: Int) {
        let text = "data: a\r\ndata: b\rdata: c\n\r\n"
        #expect(parse(text, chunk: chunk) == [.event(SSEMessage(data: "a\nb\nc"))])
    }

    @Test("keeps the last event id across events and ignores ids holding NUL", arguments: chunkSizes)
    func lastEventId(_ chunk: Int) {
        let text = "id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\n"
        #expect(
            parse(text, chunk: chunk) == [
                .event(SSEMessage(data: "a", lastEventId: "1")),
                .event(SSEMessage(data: "b", lastEventId: "1")),
                .event(SSEMessage(data: "c", lastEventId: "1")),
            ])
    }

    @Test("reports comments and valid retry values only", arguments: chunkSizes)
    func commentsAndRetry(_ chunk: Int) {
        let text = ": ping\n:\nretry: 2000\nretry: 20a\nretry:\n\n"
        #expect(parse(text, chunk: chunk) == [.comment("ping"), .comment(""), .retry(2000)])
    }

    @Test("dispatches nothing without data, an empty string for a bare data field")
    func emptyEvents() {
        #expect(parse("event: x\n\n") == [])
        #expect(parse("data\n\n") == [.event(SSEMessage(data: ""))])
        #expect(parse("data:\n\n") == [.event(SSEMessage(data: ""))])
    }

    @Test("strips exactly one space after the colon and ignores unknown fields")
    func fieldValues() {
        #expect(parse("data:x\n\n") == [.event(SSEMessage(data: "x"))])
        #expect(parse("data:  x\n\n") == [.event(SSEMessage(data: " x"))])
        #expect(parse("foo: bar\ndata: y\n\n") == [.event(SSEMessage(data: "y"))])
    }

    @Test("skips a leading byte order mark, also when it arrives byte by byte", arguments: chunkSizes)
    func byteOrderMark(_ chunk: Int) {
        #expect(parse("\u{FEFF}data: x\n\n", chunk: chunk) == [.event(SSEMessage(data: "x"))])
    }

    @Test("does not dispatch an event whose blank line has not arrived")
    func incompleteEvent() {
        var parser = SSEParser()
        #expect(parser.feed(Array("event: delta\ndata: x\n".utf8)) == [])
        #expect(parser.feed(Array("\n".utf8)) == [.event(SSEMessage(type: "delta", data: "x"))])
    }
}
