// The benchmark client's byte-level decoders: whatever way the bytes are split across reads,
// chunked framing and SSE lines give the same events, and only the benchmark's events count.
import Testing

@testable import herald_bench

@Suite struct EventScannerTests {
    /// Events found in `stream`, fed in pieces cut at `cuts`, optionally chunk-encoded first.
    private func scan(_ stream: String, cuts: [Int], chunkSizes: [Int]? = nil) -> [String] {
        var bytes = Array(stream.utf8)
        if let chunkSizes { bytes = chunked(bytes, sizes: chunkSizes) }
        var scanner = EventScanner()
        var decoder = ChunkDecoder()
        var found: [String] = []
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] where end > start {
            bytes[start..<end].withUnsafeBytes { piece in
                let record: (EventScanner.Event) -> Void = { event in
                    switch event {
                    case .initial: found.append("init")
                    case .numbered(let index, let sent): found.append("\(index)@\(sent)")
                    }
                }
                if chunkSizes == nil {
                    scanner.feed(piece, found: record)
                } else {
                    decoder.feed(piece) { scanner.feed($0, found: record) }
                }
            }
            start = end
        }
        return found
    }

    private func chunked(_ bytes: [UInt8], sizes: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var at = 0
        var index = 0
        while at < bytes.count {
            let size = min(max(1, sizes[index % sizes.count]), bytes.count - at)
            out += Array(String(size, radix: 16).utf8) + [13, 10] + bytes[at..<at + size] + [13, 10]
            at += size
            index += 1
        }
        return out + Array("0\r\n\r\n".utf8)
    }

    private let stream =
        "retry: 1000\n\n: ping\n\nid: 7-0\nevent: init\ndata: {\"a\":1}\n\n"
        + "id: 7-1\nevent: delta\ndata: 0 1234567 xxxxxxxx\n\n"
        + "event: initial\ndata: 9 9\n\n"  // not an init: a numbered event
        + "data: 12 99\n\n"  // no padding
        + "data: abc 1\n\n"  // not a benchmark event
        + "data: 3 44 x\r\n\r\n"  // CRLF line ends
        + "id: 7-2\ndata: 5 6 y\n\n"

    private let expected = ["init", "0@1234567", "9@9", "12@99", "3@44", "5@6"]

    @Test func wholeStream() {
        #expect(scan(stream, cuts: []) == expected)
    }

    @Test func everySingleCut() {
        for cut in 1..<stream.utf8.count {
            #expect(scan(stream, cuts: [cut]) == expected, "cut at \(cut)")
        }
    }

    @Test func byteByByte() {
        #expect(scan(stream, cuts: Array(1..<stream.utf8.count)) == expected)
    }

    @Test func chunkedInAnySizeAndCut() {
        for size in [1, 2, 3, 7, 16, 40, 1000] {
            let encodedCount = chunked(Array(stream.utf8), sizes: [size]).count
            for cut in stride(from: 1, to: encodedCount, by: 3) {
                #expect(scan(stream, cuts: [cut], chunkSizes: [size]) == expected, "chunks of \(size), cut at \(cut)")
            }
        }
        #expect(scan(stream, cuts: Array(1..<400), chunkSizes: [5, 11, 2]) == expected)
    }

    @Test func chunkSizeInUpperCaseHexWithExtension() {
        let body = Array("data: 1 2 x\n\n".utf8)
        let encoded = Array("D;name=value\r\n".utf8) + body + Array("\r\n0\r\n\r\n".utf8)
        var scanner = EventScanner()
        var decoder = ChunkDecoder()
        var found: [String] = []
        encoded.withUnsafeBytes { bytes in
            decoder.feed(bytes) { content in
                scanner.feed(content) { event in
                    if case .numbered(let index, let sent) = event { found.append("\(index)@\(sent)") }
                }
            }
        }
        #expect(found == ["1@2"])
    }
}
