// FastCGI records a worker writes itself and the SSE bytes it formats: exact byte tables
// (header layout from the FastCGI specification / fastcgi.h), splitting, padding and ends.
import HeraldProtocol
import NIOCore
import Testing

@testable import HeraldWorker

/// An FCGI header written out by hand: version 1, type, request id, content length, padding, reserved.
private func header(type: UInt8, requestID: UInt16, contentLength: Int, padding: Int) -> [UInt8] {
    [
        1, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF), UInt8(contentLength >> 8),
        UInt8(contentLength & 0xFF), UInt8(padding), 0,
    ]
}

private let stdoutType: UInt8 = 6
private let endRequestType: UInt8 = 3

private func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("FastCGI records")
struct FastCGIRecordsTests {
    @Test("frames a small content as one FCGI_STDOUT record padded to 8")
    func smallStdout() {
        let record = FastCGIRecords.stdout(requestID: 1, content: ByteBuffer(string: "hello"))
        #expect(bytes(record) == [1, 6, 0, 1, 0, 5, 3, 0] + bytes("hello") + [0, 0, 0])
    }

    static let paddings: [(Int, Int)] = [(1, 7), (5, 3), (7, 1), (8, 0), (9, 7), (16, 0), (65535, 1), (4465, 7)]

    @Test("pads every content length to a multiple of 8", arguments: paddings)
    func padding(_ length: Int, _ padding: Int) {
        #expect(FastCGIRecords.padding(length) == padding)
        let content = ByteBuffer(repeating: 0x41, count: min(length, 100))
        let record = FastCGIRecords.stdout(requestID: 0x0102, content: content)
        let expectedPadding = FastCGIRecords.padding(content.readableBytes)
        #expect(
            bytes(record)
                == header(
                    type: stdoutType, requestID: 0x0102, contentLength: content.readableBytes, padding: expectedPadding)
                + bytes(content) + Array(repeating: 0, count: expectedPadding))
    }

    @Test("writes the request id big-endian", arguments: [UInt16(0), 1, 0x00FF, 0x0100, 0xABCD, 0xFFFF])
    func requestIDs(_ requestID: UInt16) {
        let record = FastCGIRecords.stdout(requestID: requestID, content: ByteBuffer(string: "12345678"))
        #expect(Array(bytes(record).prefix(8)) == [1, 6, UInt8(requestID >> 8), UInt8(requestID & 0xFF), 0, 8, 0, 0])
    }

    @Test("splits content over 65535 bytes into full records and the rest, each padded")
    func splitsLargeContent() {
        let content = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let record = bytes(FastCGIRecords.stdout(requestID: 3, content: ByteBuffer(bytes: content)))
        let expected =
            header(type: stdoutType, requestID: 3, contentLength: 65535, padding: 1)
            + content.prefix(65535) + [0]
            + header(type: stdoutType, requestID: 3, contentLength: 4465, padding: 7)
            + content.dropFirst(65535) + [0, 0, 0, 0, 0, 0, 0]
        #expect(record.count == 8 + 65535 + 1 + 8 + 4465 + 7)
        #expect(record == expected)
    }

    @Test("fills exactly two records for twice the maximum")
    func exactlyTwoRecords() {
        let content = [UInt8](repeating: 0x5A, count: 2 * 65535)
        let record = bytes(FastCGIRecords.stdout(requestID: 1, content: ByteBuffer(bytes: content)))
        let one =
            header(type: stdoutType, requestID: 1, contentLength: 65535, padding: 1)
            + [UInt8](repeating: 0x5A, count: 65535) + [0]
        #expect(record == one + one)
    }

    @Test("appends to what the buffer already holds and leaves the content untouched")
    func appends() {
        var out = ByteBuffer(string: "AB")
        let content = ByteBuffer(string: "xyz")
        FastCGIRecords.writeStdout(requestID: 1, content: content, into: &out)
        #expect(bytes(out) == bytes("AB") + [1, 6, 0, 1, 0, 3, 5, 0] + bytes("xyz") + [0, 0, 0, 0, 0])
        #expect(bytes(content) == bytes("xyz"))
    }

    @Test("ends a response with an empty FCGI_STDOUT and FCGI_END_REQUEST, request complete")
    func endRecords() {
        #expect(
            bytes(FastCGIRecords.end(requestID: 1))
                == [1, 6, 0, 1, 0, 0, 0, 0]  // empty stdout: end of the stream
                + [1, 3, 0, 1, 0, 8, 0, 0]  // END_REQUEST, 8 bytes of body
                + [0, 0, 0, 0, 0, 0, 0, 0])  // appStatus 0, protocolStatus 0 (FCGI_REQUEST_COMPLETE), reserved
    }

    @Test("writes the application status big-endian in END_REQUEST")
    func endRecordsWithStatus() {
        #expect(
            bytes(FastCGIRecords.end(requestID: 0x0203, appStatus: 0x0102_0304))
                == header(type: stdoutType, requestID: 0x0203, contentLength: 0, padding: 0)
                + header(type: endRequestType, requestID: 0x0203, contentLength: 8, padding: 0)
                + [1, 2, 3, 4, 0, 0, 0, 0])
    }
}

@Suite("Event formatter")
struct EventFormatterTests {
    static let epoch = Epoch("k3j9x2mq0a")!

    @Test("formats an event as SSE for single- and multi-channel streams")
    func formatsEvent() {
        let event = HubEvent(sequence: 42, channel: "rooms", name: "delta", data: "{\"a\":1}")
        let formatted = EventFormatter.format(event, epoch: Self.epoch)
        #expect(formatted.id == "k3j9x2mq0a-42")
        #expect(formatted.sequence == 42)
        #expect(formatted.channel == "rooms")
        #expect(formatted.name == "delta")
        #expect(formatted.data == "{\"a\":1}")
        #expect(bytes(formatted.single) == bytes("id: k3j9x2mq0a-42\nevent: delta\ndata: {\"a\":1}\n\n"))
        #expect(bytes(formatted.multi) == bytes("id: k3j9x2mq0a-42\nevent: rooms:delta\ndata: {\"a\":1}\n\n"))
    }

    @Test("splits multi-line data into data lines so it cannot inject fields")
    func multiLineData() {
        let event = HubEvent(sequence: 1, channel: "c", name: "note", data: "a\nb\r\nc\rid: x\n")
        let formatted = EventFormatter.format(event, epoch: Self.epoch)
        #expect(
            bytes(formatted.single)
                == bytes("id: k3j9x2mq0a-1\nevent: note\ndata: a\ndata: b\ndata: c\ndata: id: x\ndata: \n\n"))
    }

    @Test("sends empty data as one empty data line")
    func emptyData() {
        let formatted = EventFormatter.format(
            HubEvent(sequence: 3, channel: "c", name: "delta", data: ""), epoch: Self.epoch)
        #expect(bytes(formatted.single) == bytes("id: k3j9x2mq0a-3\nevent: delta\ndata: \n\n"))
    }

    @Test("frames the formatted bytes as FCGI_STDOUT for request id 1, and for any other id on demand")
    func framedRecords() {
        let event = HubEvent(sequence: 42, channel: "rooms", name: "delta", data: "{\"a\":1}")
        let formatted = EventFormatter.format(event, epoch: Self.epoch)
        let single = bytes("id: k3j9x2mq0a-42\nevent: delta\ndata: {\"a\":1}\n\n")  // 46 bytes
        let multi = bytes("id: k3j9x2mq0a-42\nevent: rooms:delta\ndata: {\"a\":1}\n\n")  // 52 bytes
        #expect(single.count == 46)
        #expect(multi.count == 52)
        #expect(bytes(formatted.singleRecord) == [1, 6, 0, 1, 0, 46, 2, 0] + single + [0, 0])
        #expect(bytes(formatted.multiRecord) == [1, 6, 0, 1, 0, 52, 4, 0] + multi + [0, 0, 0, 0])
        #expect(bytes(formatted.record(requestID: 1, multiChannel: false)) == bytes(formatted.singleRecord))
        #expect(bytes(formatted.record(requestID: 1, multiChannel: true)) == bytes(formatted.multiRecord))
        #expect(
            bytes(formatted.record(requestID: 7, multiChannel: false)) == [1, 6, 0, 7, 0, 46, 2, 0] + single + [0, 0])
        #expect(
            bytes(formatted.record(requestID: 0x0100, multiChannel: true))
                == [1, 6, 1, 0, 0, 52, 4, 0] + multi + [0, 0, 0, 0])
    }

    @Test("formats an init event with the state as of its sequence")
    func formatsInit() {
        #expect(
            bytes(
                EventFormatter.initEvent(
                    channel: "rooms", state: "{\"a\":[1,2]}", sequence: 7, epoch: Self.epoch, multiChannel: false))
                == bytes("id: k3j9x2mq0a-7\nevent: init\ndata: {\"a\":[1,2]}\n\n"))
        #expect(
            bytes(
                EventFormatter.initEvent(
                    channel: "rooms", state: "{}", sequence: 0, epoch: Self.epoch, multiChannel: true))
                == bytes("id: k3j9x2mq0a-0\nevent: rooms:init\ndata: {}\n\n"))
    }

    @Test("starts a stream with the CGI headers of an event stream and a retry line")
    func prologue() {
        #expect(
            bytes(EventFormatter.prologue(corsOrigin: "https://example.org", retryMilliseconds: 2000))
                == bytes(
                    "Status: 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nX-Accel-Buffering: no\r\n"
                        + "Access-Control-Allow-Origin: https://example.org\r\nCache-Control: no-cache, no-transform\r\n\r\n"
                        + "retry: 2000\n\n"))
        #expect(
            bytes(EventFormatter.prologue(corsOrigin: "*", retryMilliseconds: 0)).suffix(12)
                == bytes("\r\n\r\nretry: 0\n\n").suffix(12))
    }

    @Test("sends heartbeats as a ping comment")
    func ping() {
        #expect(bytes(EventFormatter.ping) == bytes(": ping\n\n"))
    }

    @Test("drops the id and event fields rather than send a name with a line break")
    func unsafeNameFallsBack() {
        let formatted = EventFormatter.format(
            HubEvent(sequence: 1, channel: "c", name: "bad\nevent: x", data: "d"), epoch: Self.epoch)
        #expect(bytes(formatted.single) == bytes("data: d\n\n"))
        #expect(bytes(formatted.multi) == bytes("data: d\n\n"))
    }
}
