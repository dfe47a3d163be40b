// Hub link frames: exact bytes of each layout, round trips, the stream decoder, refusals and random input.
import HeraldProtocol
import NIOCore
import NIOTestUtils
import Testing

/// Big-endian bytes of `value` in `width` bytes: written by hand so the table does not trust the codec.
private func be(_ value: UInt64, _ width: Int) -> [UInt8] {
    (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// A length-prefixed string field.
private func str(_ text: String) -> [UInt8] {
    be(UInt64(text.utf8.count), 4) + Array(text.utf8)
}

/// A whole frame: the 4-byte length of `body`, then `body`.
private func frame(_ body: [UInt8]) -> [UInt8] {
    be(UInt64(body.count), 4) + body
}

private func encoded(_ frame: HubFrame) -> [UInt8] {
    var buffer = ByteBuffer()
    frame.encode(into: &buffer)
    return Array(buffer.readableBytesView)
}

/// Runs `bytes` through a decoder as a stream that then ends: every frame it gives, then the error if any.
private func drain(_ bytes: [UInt8], maximumFrameLength: Int = 1 << 16) -> (frames: [HubFrame], error: (any Error)?) {
    var decoder = HubFrameDecoder(maximumFrameLength: maximumFrameLength)
    var buffer = ByteBuffer(bytes: bytes)
    var frames: [HubFrame] = []
    do {
        while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { frames.append(frame) }
    } catch {
        return (frames, error)
    }
    return (frames, nil)
}

/// SplitMix64: a tiny seeded generator so the random tests are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Hub frame codec")
struct HubFrameCodecTests {
    static let byteTable: [(HubFrame, [UInt8])] = [
        (
            .welcome(epoch: "ab", sequence: 7, resnapshot: true),
            [
                0, 0, 0, 16,  // length of type and fields
                2,  // welcome
                0, 0, 0, 2, 0x61, 0x62,  // "ab"
                0, 0, 0, 0, 0, 0, 0, 7,  // sequence
                1,  // resnapshot
            ]
        ),
        (
            .event(HubEvent(sequence: 258, channel: "c", name: "delta", data: "{}")),
            [
                0, 0, 0, 29,
                5,  // event
                0, 0, 0, 0, 0, 0, 1, 2,  // sequence 258
                0, 0, 0, 1, 0x63,  // "c"
                0, 0, 0, 5, 0x64, 0x65, 0x6C, 0x74, 0x61,  // "delta"
                0, 0, 0, 2, 0x7B, 0x7D,  // "{}"
            ]
        ),
        (
            .hello(version: 1, workerID: "w1", epoch: "ab", lastSequence: 0),
            [0, 0, 0, 23, 1, 0, 1, 0, 0, 0, 2, 0x77, 0x31, 0, 0, 0, 2, 0x61, 0x62, 0, 0, 0, 0, 0, 0, 0, 0]
        ),
        (
            .subscribe(request: 3, channels: ["a", "bc"], resumeAfter: 9),
            frame([3] + be(3, 8) + be(2, 4) + str("a") + str("bc") + be(9, 8))
        ),
        (
            .subscribe(request: 0, channels: [], resumeAfter: 0),
            frame([3] + be(0, 8) + be(0, 4) + be(0, 8))
        ),
        (
            .subscribed(
                request: 1, sequence: 2,
                replay: [HubEvent(sequence: 2, channel: "a", name: "init", data: "1")],
                snapshots: [ChannelSnapshot(channel: "b", state: "{}")]),
            frame(
                [4] + be(1, 8) + be(2, 8)
                    + be(1, 4) + be(2, 8) + str("a") + str("init") + str("1")
                    + be(1, 4) + str("b") + str("{}"))
        ),
        (
            .publish(request: 4, [PublishRequest(channel: "a", name: "delta", data: "1", merge: true)]),
            frame([6] + be(4, 8) + be(1, 4) + str("a") + str("delta") + str("1") + [1])
        ),
        (
            .publish(request: 4, [PublishRequest(channel: "a", data: "1"), PublishRequest(channel: "b", data: "2")]),
            frame(
                [6] + be(4, 8) + be(2, 4) + str("a") + str("delta") + str("1") + [0]
                    + str("b") + str("delta") + str("2") + [0])
        ),
        (
            .publish(request: 4, [PublishRequest(channel: "a", data: "1", merge: true, key: "k")]),
            frame([6] + be(4, 8) + be(1, 4) + str("a") + str("delta") + str("1") + [3] + str("k"))
        ),
        (
            .published(
                request: 5, .accepted(sequence: 9, repeats: [PublishRepeat(index: 0, sequence: 3), PublishRepeat(index: 2, sequence: 4)])),
            frame([7] + be(5, 8) + [4] + be(9, 8) + be(2, 4) + be(0, 4) + be(3, 8) + be(2, 4) + be(4, 8))
        ),
        (
            .published(request: 5, .accepted(sequence: 6)),
            frame([7] + be(5, 8) + [0] + be(6, 8))
        ),
        (
            .published(request: 5, .refused("no")),
            frame([7] + be(5, 8) + [1] + str("no"))
        ),
        (
            .published(request: 5, .unavailable("db")),
            frame([7] + be(5, 8) + [2] + str("db"))
        ),
        (
            .published(request: 5, .uncertain("commit")),
            frame([7] + be(5, 8) + [3] + str("commit"))
        ),
        (
            .statsRequest(request: 0x0102_0304_0506_0708),
            [0, 0, 0, 9, 8, 1, 2, 3, 4, 5, 6, 7, 8]
        ),
        (
            .statsReply(request: 1, json: "{}"),
            frame([9] + be(1, 8) + str("{}"))
        ),
        (
            .failure(message: "\u{E9}"),
            [0, 0, 0, 7, 10, 0, 0, 0, 2, 0xC3, 0xA9]
        ),
        (
            .failure(message: ""),
            [0, 0, 0, 5, 10, 0, 0, 0, 0]
        ),
    ]

    @Test("encodes each frame to exactly the documented bytes", arguments: byteTable)
    func encodesBytes(_ value: HubFrame, _ bytes: [UInt8]) {
        #expect(encoded(value) == bytes)
    }

    @Test("decodes the documented bytes to the frame", arguments: byteTable)
    func decodesBytes(_ value: HubFrame, _ bytes: [UInt8]) throws {
        var decoder = HubFrameDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        #expect(try decoder.decode(buffer: &buffer) == value)
        #expect(buffer.readableBytes == 0)
    }

    @Test("appends after what the buffer already holds, length prefix included")
    func appendsToBuffer() {
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
        HubFrame.statsRequest(request: 1).encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0xAA, 0xBB, 0, 0, 0, 9, 8] + be(1, 8))
    }

    @Test("announces protocol version 4 (workers report their occupancy)")
    func protocolVersion() {
        #expect(HubFrame.protocolVersion == 4)
    }

    @Test("an occupancy frame: its exact bytes, counts in order, zero included")
    func occupancyBytes() throws {
        let frame = HubFrame.occupancy([ChannelCount(channel: "ab", subscribers: 3), ChannelCount(channel: "c", subscribers: 0)])
        var buffer = ByteBuffer()
        frame.encode(into: &buffer)
        let body: [UInt8] = [17] + be(2, 4) + be(2, 4) + Array("ab".utf8) + be(3, 4) + be(1, 4) + Array("c".utf8) + be(0, 4)
        #expect(Array(buffer.readableBytesView) == be(UInt64(body.count), 4) + body)
        try decodesBytes(frame, Array(buffer.readableBytesView))
    }

    static let longText = String(repeating: "x\u{1F600}\u{E9}", count: 20_000)

    static let everyCase: [HubFrame] = [
        .hello(version: HubFrame.protocolVersion, workerID: "worker-1", epoch: "k3j9x2mq0a", lastSequence: 1042),
        .hello(version: .max, workerID: "", epoch: "", lastSequence: .max),
        .welcome(epoch: "k3j9x2mq0a", sequence: 0, resnapshot: false),
        .drain(retryMilliseconds: 2000, jitterMilliseconds: 5000),
        .occupancy([ChannelCount(channel: "rooms", subscribers: 2), ChannelCount(channel: "", subscribers: 0)]),
        .occupancy([]),
        .hubStatsRequest(request: 9),
        .hubStatsReply(request: 9, json: "{\"streams\":0}"),
        .presenceRequest(request: 10, channel: "rooms"),
        .stateEvent(HubEvent(sequence: 11, channel: "rooms", name: "delta", data: "{\"a\":1}")),
        .publish(request: 12, [{ var r = PublishRequest(channel: "rooms", data: "{\"a\":1}", key: "k"); r.replace = true; return r }()]),
        .presenceReply(request: 10, json: "{\"channel\":\"rooms\",\"subscribers\":2}"),
        .welcome(epoch: "", sequence: .max, resnapshot: true),
        .subscribe(request: 1, channels: ["news", "sport", "a.b-c_d"], resumeAfter: 17),
        .subscribe(request: .max, channels: [], resumeAfter: 0),
        .subscribe(request: 2, channels: ["", ""], resumeAfter: 0),
        .subscribed(
            request: 9, sequence: 120,
            replay: [
                HubEvent(sequence: 118, channel: "news", name: "delta", data: #"{"a":1}"#),
                HubEvent(sequence: 119, channel: "sport", name: "init", data: "{}"),
                HubEvent(sequence: 120, channel: "news", name: "", data: ""),
            ],
            snapshots: [
                ChannelSnapshot(channel: "weather", state: #"{"t":"21\u00b0C"}"#),
                ChannelSnapshot(channel: "empty", state: ""),
            ]),
        .subscribed(request: 0, sequence: 0, replay: [], snapshots: []),
        .subscribed(
            request: 1, sequence: 5, replay: [],
            snapshots: [ChannelSnapshot(channel: "a", state: "1"), ChannelSnapshot(channel: "b", state: "2")]),
        .subscribed(
            request: 1, sequence: 5, replay: [HubEvent(sequence: 5, channel: "a", name: "delta", data: "x")],
            snapshots: []),
        .event(HubEvent(sequence: 1, channel: "news", name: "delta", data: "line one\nline two\r\n\0end")),
        .event(HubEvent(sequence: .max, channel: "", name: "", data: "")),
        .event(
            HubEvent(
                sequence: 7, channel: "\u{1F389}", name: "caf\u{E9}",
                data: "\u{65E5}\u{672C}\u{8A9E} \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}")),
        .event(HubEvent(sequence: 8, channel: "big", name: "delta", data: longText)),
        .publish(request: 3, [PublishRequest(channel: "news", name: "delta", data: #"{"a":null}"#, merge: true)]),
        .publish(request: 4, [PublishRequest(channel: "news", name: "alert", data: "plain", merge: false)]),
        .publish(request: 0, [PublishRequest(channel: "", name: "", data: "", merge: false)]),
        .publish(request: 9, [PublishRequest(channel: "a", data: "x", key: "order-\u{7E}"), PublishRequest(channel: "b", data: "y")]),
        .published(request: 8, .accepted(sequence: 0, repeats: [PublishRepeat(index: 0, sequence: 77)])),
        .published(request: 3, .accepted(sequence: 1043)),
        .published(request: .max, .accepted(sequence: 0)),
        .published(request: 4, .refused("invalid channel name: empty")),
        .published(request: 5, .refused("")),
        .published(request: 6, .unavailable("the cluster database is unavailable")),
        .published(request: 7, .uncertain("the cluster database failed while committing")),
        .statsRequest(request: 0),
        .statsRequest(request: .max),
        .statsReply(request: 6, json: #"{"streams":3,"queued":[1,2]}"#),
        .statsReply(request: 7, json: ""),
        .failure(message: "unknown hub frame type 99"),
        .failure(message: "\u{1F4A5} \u{0}"),
    ]

    @Test("decodes every encoded frame back to the same value", arguments: everyCase)
    func roundTrip(_ value: HubFrame) throws {
        var buffer = ByteBuffer()
        value.encode(into: &buffer)
        let length = try #require(buffer.getInteger(at: 0, as: UInt32.self))
        #expect(Int(length) == buffer.readableBytes - 4)
        var decoder = HubFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == value)
        #expect(buffer.readableBytes == 0)
    }

    @Test("decodes frames written back to back by the channel encoder in order")
    func backToBack() throws {
        let encoder = HubFrameEncoder()
        var buffer = ByteBuffer()
        for value in Self.everyCase { encoder.encode(data: value, out: &buffer) }
        var decoder = HubFrameDecoder()
        var decoded: [HubFrame] = []
        while let value = try decoder.decode(buffer: &buffer) { decoded.append(value) }
        #expect(decoded == Self.everyCase)
        #expect(buffer.readableBytes == 0)
    }

    @Test("decodes a stream fed byte by byte, in chunks and all at once")
    func verifier() throws {
        let small = Self.everyCase.filter { encoded($0).count < 400 }
        #expect(small.count == Self.everyCase.count - 1)
        var pairs = small.map { (ByteBuffer(bytes: encoded($0)), [$0]) }
        // Several frames in one write.
        pairs.append(
            (
                ByteBuffer(bytes: encoded(small[0]) + encoded(small[2]) + encoded(small[4])),
                [small[0], small[2], small[4]]
            ))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs, decoderFactory: { HubFrameDecoder() })
    }

    @Test("waits for the whole frame before consuming anything")
    func waitsForWholeFrame() throws {
        let bytes = encoded(.welcome(epoch: "ab", sequence: 7, resnapshot: false))
        var decoder = HubFrameDecoder()
        var buffer = ByteBuffer()
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            let result = try decoder.decode(buffer: &buffer)
            if index < bytes.count - 1 {
                #expect(result == nil)
                #expect(buffer.readableBytes == index + 1)
            } else {
                #expect(result == .welcome(epoch: "ab", sequence: 7, resnapshot: false))
                #expect(buffer.readableBytes == 0)
            }
        }
    }

    @Test("at the end of the stream gives a last whole frame and leaves a partial one unread")
    func decodeLast() throws {
        var decoder = HubFrameDecoder()
        let whole = encoded(.statsRequest(request: 1))
        var buffer = ByteBuffer(bytes: whole + whole.dropLast(3))
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == .statsRequest(request: 1))
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
        #expect(buffer.readableBytes == whole.count - 3)
    }

    // MARK: Refusals

    @Test("refuses a length over the limit as soon as the length arrives, before the body")
    func frameTooLarge() throws {
        var decoder = HubFrameDecoder(maximumFrameLength: 16)
        var buffer = ByteBuffer(bytes: [0, 0, 0, 17])
        #expect(throws: HubFrameError.frameTooLarge(length: 17, limit: 16)) { try decoder.decode(buffer: &buffer) }

        var atLimit = ByteBuffer(bytes: [0, 0, 0, 16, 10])
        #expect(try decoder.decode(buffer: &atLimit) == nil)
        #expect(atLimit.readableBytes == 5)
    }

    @Test("refuses a frame over the limit even when all of it has arrived, and takes one at the limit")
    func frameTooLargeWhole() throws {
        var decoder = HubFrameDecoder(maximumFrameLength: 17)
        let atLimit = frame([10] + str("abcdefghijkl"))
        #expect(atLimit.count == 4 + 17)
        var buffer = ByteBuffer(bytes: atLimit)
        #expect(try decoder.decode(buffer: &buffer) == .failure(message: "abcdefghijkl"))

        var over = ByteBuffer(bytes: frame([10] + str("abcdefghijklm")))
        #expect(throws: HubFrameError.frameTooLarge(length: 18, limit: 17)) { try decoder.decode(buffer: &over) }
    }

    @Test("refuses the largest possible length with the default limit of 32 MiB")
    func defaultLimit() {
        var decoder = HubFrameDecoder()
        #expect(decoder.maximumFrameLength == 32 << 20)
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: HubFrameError.frameTooLarge(length: 4_294_967_295, limit: 33_554_432)) {
            try decoder.decode(buffer: &buffer)
        }
        var justOver = ByteBuffer(bytes: be(UInt64(32 << 20) + 1, 4))
        #expect(throws: HubFrameError.frameTooLarge(length: (32 << 20) + 1, limit: 32 << 20)) {
            try decoder.decode(buffer: &justOver)
        }
    }

    @Test("waits while fewer than four length bytes have arrived")
    func partialLength() throws {
        var decoder = HubFrameDecoder(maximumFrameLength: 16)
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 3)
    }

    static let malformed: [(String, [UInt8], HubFrameError)] = [
        ("an empty body", frame([]), .truncated(type: 0)),
        ("type 0", frame([0]), .unknownType(0)),
        ("type 18", frame([18] + be(1, 8)), .unknownType(18)),
        ("type 255", frame([255]), .unknownType(255)),
        ("a hello with a one-byte version", frame([1, 0]), .truncated(type: 1)),
        ("a welcome whose string is longer than the frame", frame([2] + be(5, 4) + [0x61, 0x62]), .truncated(type: 2)),
        ("a welcome without its sequence", frame([2] + str("ab")), .truncated(type: 2)),
        ("a welcome with a short sequence", frame([2] + str("ab") + be(7, 7)), .truncated(type: 2)),
        ("a welcome without its resnapshot flag", frame([2] + str("ab") + be(7, 8)), .truncated(type: 2)),
        (
            "a welcome whose resnapshot flag is 2", frame([2] + str("ab") + be(7, 8) + [2]),
            .invalidFlag(type: 2, value: 2)
        ),
        ("a subscribe without resumeAfter", frame([3] + be(1, 8) + be(1, 4) + str("a")), .truncated(type: 3)),
        ("a subscribe with a missing string length", frame([3] + be(1, 8) + be(1, 4) + [0, 0]), .truncated(type: 3)),
        ("an event without its data", frame([5] + be(1, 8) + str("c") + str("delta")), .truncated(type: 5)),
        (
            "a publish without its merge flag", frame([6] + be(1, 8) + be(1, 4) + str("a") + str("delta") + str("1")),
            .truncated(type: 6)
        ),
        ("an accepted publish without its sequence", frame([7] + be(1, 8) + [0]), .truncated(type: 7)),
        ("a published without its tag", frame([7] + be(1, 8)), .truncated(type: 7)),
        ("a stats request of seven bytes", frame([8] + be(1, 7)), .truncated(type: 8)),
        ("a stats reply without json", frame([9] + be(1, 8)), .truncated(type: 9)),
        ("a failure with a string length of 4 GiB", frame([10] + be(0xFFFF_FFFF, 4)), .truncated(type: 10)),
        ("a stats request with one byte after", frame([8] + be(1, 8) + [0]), .trailingBytes(type: 8, count: 1)),
        (
            "a welcome with three bytes after", frame([2] + str("ab") + be(7, 8) + [0, 1, 2, 3]),
            .trailingBytes(type: 2, count: 3)
        ),
        ("a failure with a second string after", frame([10] + str("a") + str("b")), .trailingBytes(type: 10, count: 5)),
        ("a subscribe listing 4 billion channels", frame([3] + be(1, 8) + be(0xFFFF_FFFF, 4)), .truncated(type: 3)),
        (
            "a subscribe listing 4 billion channels then some bytes",
            frame([3] + be(1, 8) + be(0xFFFF_FFFF, 4) + [UInt8](repeating: 0, count: 64)), .truncated(type: 3)
        ),
        (
            "a subscribe listing three channels in room for two",
            frame([3] + be(1, 8) + be(3, 4) + str("a") + str("b") + be(0, 8)), .truncated(type: 3)
        ),
        (
            "a subscribed replaying 2 billion events", frame([4] + be(1, 8) + be(2, 8) + be(0x7FFF_FFFF, 4) + be(0, 4)),
            .truncated(type: 4)
        ),
        (
            "a subscribed with 4 billion snapshots", frame([4] + be(1, 8) + be(2, 8) + be(0, 4) + be(0xFFFF_FFFF, 4)),
            .truncated(type: 4)
        ),
        ("a failure holding the byte FF", frame([10] + be(1, 4) + [0xFF]), .invalidUTF8(type: 10)),
        ("a failure holding an overlong NUL", frame([10] + be(2, 4) + [0xC0, 0x80]), .invalidUTF8(type: 10)),
        ("a failure holding a surrogate", frame([10] + be(3, 4) + [0xED, 0xA0, 0x80]), .invalidUTF8(type: 10)),
        ("a failure holding a cut two-byte sequence", frame([10] + be(1, 4) + [0xC3]), .invalidUTF8(type: 10)),
        (
            "an event whose data is not UTF-8",
            frame([5] + be(1, 8) + str("c") + str("delta") + be(2, 4) + [0x61, 0xFE]), .invalidUTF8(type: 5)
        ),
        (
            "a hello whose worker id is not UTF-8", frame([1] + be(1, 2) + be(1, 4) + [0x80] + str("ab") + be(0, 8)),
            .invalidUTF8(type: 1)
        ),
    ]

    @Test("refuses malformed frames with the exact error", arguments: malformed)
    func refusesMalformed(_ label: String, _ bytes: [UInt8], _ expected: HubFrameError) {
        var decoder = HubFrameDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: expected, "\(label)") { try decoder.decode(buffer: &buffer) }
    }

    @Test("refuses a malformed body given directly without a length prefix")
    func decodeBodyDirectly() throws {
        var empty = ByteBuffer()
        #expect(throws: HubFrameError.truncated(type: 0)) { try HubFrame.decode(body: &empty) }
        var body = ByteBuffer(bytes: [8] + be(42, 8))
        #expect(try HubFrame.decode(body: &body) == .statsRequest(request: 42))
        #expect(body.readableBytes == 0)
    }

    @Test("refuses a frame whose one-byte flags and tags hold values they do not define")
    func refusesUnknownFlags() {
        // The published tag is 0 (accepted) to 3 (uncertain); the merge flag is 0
        // or 1. Any other value is a malformed frame, which closes the link.
        let badTag = frame([7] + be(1, 8) + [4] + str("x"))
        let badMerge = frame([6] + be(1, 8) + be(1, 4) + str("a") + str("delta") + str("1") + [2])
        for bytes in [badTag, badMerge] {
            var decoder = HubFrameDecoder()
            var buffer = ByteBuffer(bytes: bytes)
            #expect(throws: HubFrameError.self) { try decoder.decode(buffer: &buffer) }
        }
    }

    static let errorDescriptions: [(HubFrameError, String)] = [
        (.frameTooLarge(length: 17, limit: 16), "hub frame of 17 bytes exceeds the limit of 16"),
        (.unknownType(99), "unknown hub frame type 99"),
        (.truncated(type: 3), "hub frame of type 3 ends before its fields do"),
        (.trailingBytes(type: 8, count: 2), "hub frame of type 8 has 2 bytes after its fields"),
        (.invalidUTF8(type: 10), "hub frame of type 10 holds text that is not UTF-8"),
    ]

    @Test("describes each refusal in words", arguments: errorDescriptions)
    func describes(_ error: HubFrameError, _ expected: String) {
        #expect(error.description == expected)
    }

    // MARK: Random input

    @Test("the seeded generator is SplitMix64 and repeats for a seed")
    func generator() {
        var a = SplitMix64(seed: 0)
        var b = SplitMix64(seed: 0)
        #expect(a.next() == 0xE220_A839_7B1D_CDAF)
        #expect(b.next() == 0xE220_A839_7B1D_CDAF)
        #expect(a.next() == b.next())
    }

    /// What every outcome of decoding hostile bytes must satisfy: only `HubFrameError`s are
    /// thrown, and any frame that does come out encodes and decodes back to itself.
    private func checkOutcome(_ bytes: [UInt8], maximumFrameLength: Int = 1 << 16) -> (frames: Int, threw: Bool) {
        let (frames, error) = drain(bytes, maximumFrameLength: maximumFrameLength)
        if let error { #expect(error is HubFrameError, "unexpected \(error) for \(bytes)") }
        for value in frames {
            #expect(drain(encoded(value)).frames == [value], "unstable \(value) from \(bytes)")
        }
        return (frames.count, error != nil)
    }

    @Test("survives 2,000 random byte strings, decoding or refusing each")
    func randomBytes() {
        var rng = SplitMix64(seed: 0x4845_5241_4C44)
        var decoded = 0
        var refused = 0
        for index in 0..<2_000 {
            let count = Int.random(in: 0...48, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if index % 2 == 0 {
                // Half get a plausible header so the field readers are reached, not only the length check.
                let type = UInt8.random(in: 1...10, using: &rng)
                bytes = be(UInt64(bytes.count + 1), 4) + [type] + bytes
            }
            let outcome = checkOutcome(bytes)
            decoded += outcome.frames
            if outcome.threw { refused += 1 }
        }
        #expect(decoded > 0)
        #expect(refused > 0)
    }

    @Test("survives 500 random mutations of valid frames")
    func randomMutations() {
        var rng = SplitMix64(seed: 2_026)
        let seeds = Self.everyCase.filter { encoded($0).count < 400 }.map(encoded)
        var refused = 0
        for _ in 0..<500 {
            var bytes = seeds.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
                default: if bytes.count > 1 { bytes.remove(at: position) }
                }
            }
            if checkOutcome(bytes, maximumFrameLength: 32 << 20).threw { refused += 1 }
        }
        #expect(refused > 0)
    }
}
