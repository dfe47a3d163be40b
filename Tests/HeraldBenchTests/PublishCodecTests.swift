// The publishing benchmark's byte-level codecs: keep-alive HTTP answers, admin replies and the
// NDJSON batch give the same result however the bytes are split, and the batch body is JSON a
// server reads back as the events sent.
import Foundation
import NIOCore
import Testing

@testable import herald_bench

@Suite struct HTTPResponseScannerTests {
    private let stream =
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n7-1\n"
        + "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: 1\r\n\r\n"
        + "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
        + "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nRetry-After: 1\r\n\r\n"
        + "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nCONNECTION: Close\r\n\r\nF\r\n{\"ids\":[\"1-5\"]}\r\n0\r\n\r\n"
        + "HTTP/1.0 202 Accepted\r\n\r\nuntil close"

    private let expected: [HTTPResponseScanner.Response] = [
        .init(status: 200, body: Array("7-1\n".utf8), closes: false),
        .init(status: 201, body: Array("hello, chunked!".utf8), closes: false),
        .init(status: 204, body: [], closes: false),
        .init(status: 503, body: [], closes: false),
        .init(status: 200, body: Array("{\"ids\":[\"1-5\"]}".utf8), closes: true),
        .init(status: 202, body: Array("until close".utf8), closes: true),
    ]

    /// Responses found in `stream` fed in pieces cut at `cuts`, then the end of the connection.
    private func scan(_ text: String, cuts: [Int], keepsBody: Bool = true) throws -> [HTTPResponseScanner.Response] {
        let bytes = Array(text.utf8)
        var scanner = HTTPResponseScanner(keepsBody: keepsBody)
        var found: [HTTPResponseScanner.Response] = []
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] where end > start {
            try bytes[start..<end].withUnsafeBytes { piece in try scanner.feed(piece) { found.append($0) } }
            start = end
        }
        try scanner.finish { found.append($0) }
        return found
    }

    @Test func wholeStream() throws {
        #expect(try scan(stream, cuts: []) == expected)
    }

    @Test func everySingleCut() throws {
        for cut in 1..<stream.utf8.count {
            #expect(try scan(stream, cuts: [cut]) == expected, "cut at \(cut)")
        }
    }

    @Test func byteByByte() throws {
        #expect(try scan(stream, cuts: Array(1..<stream.utf8.count)) == expected)
    }

    @Test func bodiesAreSkippedWhenNotKept() throws {
        let statuses = try scan(stream, cuts: [17, 90], keepsBody: false).map { [$0.status, $0.body.count] }
        #expect(statuses == [[200, 0], [201, 0], [204, 0], [503, 0], [200, 0], [202, 0]])
    }

    @Test func aConnectionClosedInsideAResponseIsTruncated() {
        #expect(throws: HTTPResponseScanner.Failure.truncated) {
            try scan("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", cuts: [])
        }
        #expect(throws: HTTPResponseScanner.Failure.truncated) { try scan("HTTP/1.1 200 OK\r\nContent-", cuts: []) }
    }

    @Test func malformedAnswersAreErrors() {
        #expect(throws: HTTPResponseScanner.Failure.malformedHead) { try scan("SSH-2.0-OpenSSH\r\n\r\n", cuts: []) }
        #expect(throws: HTTPResponseScanner.Failure.malformedHead) {
            try scan("HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", cuts: [])
        }
        #expect(throws: HTTPResponseScanner.Failure.malformedChunk) {
            try scan("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", cuts: [])
        }
    }
}

@Suite struct PublishBatchTests {
    private func line(channel: String, data: String, key: String?) -> String {
        var buffer = ByteBuffer()
        PublishBatch.appendLine(
            channel: Array(channel.utf8), data: Array(data.utf8), key: key.map { Array($0.utf8) }, to: &buffer)
        return String(buffer: buffer)
    }

    @Test func linesAreOneJSONObjectPerEvent() {
        #expect(
            line(channel: "bench", data: "12 345 xx", key: nil) == "{\"channel\":\"bench\",\"data\":\"12 345 xx\"}\n")
        #expect(
            line(channel: "bench-3", data: "1", key: "run-1")
                == "{\"channel\":\"bench-3\",\"data\":\"1\",\"key\":\"run-1\"}\n")
    }

    @Test func dataIsEscapedAsAJSONString() {
        // Byte table: each input and its JSON form.
        let table: [(String, String)] = [
            ("a\"b", "\"a\\\"b\""), ("back\\slash", "\"back\\\\slash\""), ("two\nlines\r\n", "\"two\\nlines\\r\\n\""),
            ("tab\t", "\"tab\\t\""), ("\u{01}\u{1f}", "\"\\u0001\\u001f\""), ("é ✓ 😀", "\"é ✓ 😀\""), ("", "\"\""),
        ]
        for (input, json) in table {
            var buffer = ByteBuffer()
            PublishBatch.appendJSONString(Array(input.utf8), to: &buffer)
            #expect(String(buffer: buffer) == json, "\(input.debugDescription)")
        }
    }

    @Test func aServerReadsBackEveryLine() throws {
        let events = ["plain", "quote \" and \\", "line\nbreak", "\u{00}nul", "ünïcödé"]
        var body = ByteBuffer()
        for (index, data) in events.enumerated() {
            PublishBatch.appendLine(
                channel: Array("c".utf8), data: Array(data.utf8), key: Array("k-\(index)".utf8), to: &body)
        }
        let lines = String(buffer: body).split(separator: "\n")
        #expect(lines.count == events.count)
        for (index, line) in lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object == ["channel": "c", "data": events[index], "key": "k-\(index)"])
        }
    }

    @Test func idsAreReadInOrder() {
        #expect(PublishBatch.ids(in: Array("{\"ids\":[\"7-1\",\"7-2\"]}".utf8)) == ["7-1", "7-2"])
        #expect(PublishBatch.ids(in: Array(" { \"ids\" : [ ] } \n".utf8)) == [])
        #expect(PublishBatch.ids(in: Array("{\"id\":\"7-1\"}".utf8)) == nil)
        #expect(PublishBatch.ids(in: Array("7-1\n".utf8)) == nil)
        #expect(PublishBatch.ids(in: Array("{\"ids\":[1,2]}".utf8)) == nil)
    }
}

@Suite struct AdminReplyScannerTests {
    private let stream = "ok\n7-1\n\nerror: no such channel\n\nok\r\n7-2\r\n\r\nok\nid\nmore\n\n"

    private func scan(cuts: [Int]) -> [Bool] {
        let bytes = Array(stream.utf8)
        var scanner = AdminReplyScanner()
        var found: [Bool] = []
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] where end > start {
            bytes[start..<end].withUnsafeBytes { piece in scanner.feed(piece) { found.append($0) } }
            start = end
        }
        return found
    }

    @Test func repliesAreCountedInOrderUnderEveryCut() {
        let expected = [true, false, true, true]
        #expect(scan(cuts: []) == expected)
        for cut in 1..<stream.utf8.count { #expect(scan(cuts: [cut]) == expected, "cut at \(cut)") }
        #expect(scan(cuts: Array(1..<stream.utf8.count)) == expected)
    }
}

@Suite struct PublishTallyTests {
    @Test func eventDataIsWhatTheSubscribersScan() {
        let data = EventData(paddingBytes: 3)
        var buffer = ByteBuffer()
        data.write(index: 120, sent: 9_876_543_210, to: &buffer)
        #expect(String(buffer: buffer) == "120 9876543210 xxx")
        #expect(data.count(index: 120, sent: 9_876_543_210) == buffer.readableBytes)
        var zero = ByteBuffer()
        EventData.writeDecimal(0, to: &zero)
        #expect(String(buffer: zero) == "0")
    }

    @Test func claimsAreBoundedByCountAndPaced() {
        let tally = PublishTally(seconds: 60, maxEvents: 2500, rate: 1000)
        let first = tally.claim(1000, now: tally.start)
        #expect(first?.first == 0 && first?.count == 1000 && first?.due == tally.start + 999 * 1_000_000)
        _ = tally.claim(1000, now: tally.start)
        let last = tally.claim(1000, now: tally.start)
        #expect(last?.first == 2000 && last?.count == 500)
        #expect(tally.claim(1, now: tally.start) == nil)
    }

    @Test func noClaimAfterTheDeadline() {
        let tally = PublishTally(seconds: 1, maxEvents: 10, rate: nil)
        #expect(tally.claim(1, now: tally.start)?.due == tally.start)
        #expect(tally.claim(1, now: tally.deadline) == nil)
    }

    @Test func acknowledgementsMarkTheirIndices() {
        let tally = PublishTally(seconds: 1, maxEvents: 200, rate: nil)
        tally.acknowledge(first: 62, count: 4, sent: 0, now: 5000)
        #expect(tally.acknowledged == 4)
        #expect(tally.acknowledgedIndices[0] == UInt64(3) << 62 && tally.acknowledgedIndices[1] == 3)
        let ledger = DeliveryLedger(maxEvents: 200)
        ledger.record(index: 62, sent: 0, now: 1)
        ledger.record(index: 62, sent: 0, now: 1)
        ledger.record(index: 100, sent: 0, now: 1)
        let compared = ledger.compare(acknowledged: tally.acknowledgedIndices)
        #expect(compared.delivered == 1 && compared.missing == 3 && compared.unacknowledged == 1)
        #expect(ledger.duplicates == 1)
    }
}
