// Journal bytes: the exact layout of a record, round trips, torn records at every truncation
// point and after any flipped byte, the length sanity bound, snapshots, and CRC-32 itself.
import HeraldProtocol
import NIOCore
import Testing

@testable import HeraldHub

/// Big-endian bytes of `value` in `width` bytes, by hand so the tables do not trust the codec.
func bigEndian(_ value: UInt64, _ width: Int) -> [UInt8] {
    (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

/// A length-prefixed string field as the hub link lays it out.
func lengthPrefixed(_ text: String) -> [UInt8] {
    bigEndian(UInt64(text.utf8.count), 4) + Array(text.utf8)
}

/// The bytes of `record` as the codec writes them.
func recordBytes(_ record: JournalRecord) -> [UInt8] {
    var buffer = ByteBuffer()
    JournalCodec.encode(record, into: &buffer)
    return Array(buffer.readableBytesView)
}

/// Every record in `bytes`, then whether it ended torn and where the reader stopped.
private func decodeAll(_ bytes: [UInt8]) -> (records: [JournalRecord], torn: Bool, readerIndex: Int) {
    var buffer = ByteBuffer(bytes: bytes)
    var records: [JournalRecord] = []
    while true {
        let (record, torn) = JournalCodec.decodeRecord(from: &buffer)
        guard let record else { return (records, torn, buffer.readerIndex) }
        records.append(record)
    }
}

private let sampleRecord = JournalRecord(kind: .merge, event: hubEvent(258, "c", name: "delta", data: "{}"))

/// `sampleRecord`, byte by byte.
private let sampleBytes: [UInt8] = [
    0, 0, 0, 29,  // body length: kind + event
    0xB8, 0x8F, 0x6E, 0x22,  // CRC-32 of the body (zlib.crc32)
    2,  // kind: merge
    0, 0, 0, 0, 0, 0, 1, 2,  // sequence 258
    0, 0, 0, 1, 0x63,  // "c"
    0, 0, 0, 5, 0x64, 0x65, 0x6C, 0x74, 0x61,  // "delta"
    0, 0, 0, 2, 0x7B, 0x7D,  // "{}"
]

/// A frame with a correct length and checksum around `body`.
private func framed(_ body: [UInt8]) -> [UInt8] {
    bigEndian(UInt64(body.count), 4) + bigEndian(UInt64(CRC32.checksum(body)), 4) + body
}

private func snapshotFields(_ snapshot: JournalSnapshot) -> String {
    let channels = snapshot.channels.map { "\($0.name)=\($0.state)@\($0.visibleSequence)/\($0.lastDropped)" }
    return "\(snapshot.epoch) \(snapshot.sequence) \(snapshot.lastDropped) \(channels) \(snapshot.history)"
}

@Suite("Journal codec")
struct JournalCodecTests {
    @Test("computes CRC-32 as zlib does")
    func crc32() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum([0]) == 0xD202_EF8D)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
    }

    @Test("writes a record as length, CRC-32 of the body, kind, and the event as the hub link lays it out")
    func recordLayout() {
        #expect(recordBytes(sampleRecord) == sampleBytes)
        #expect(
            sampleBytes
                == framed(
                    [2] + bigEndian(258, 8) + lengthPrefixed("c") + lengthPrefixed("delta") + lengthPrefixed("{}")))
    }

    static let records: [JournalRecord] = [
        sampleRecord,
        JournalRecord(kind: .message, event: hubEvent(1, "a", name: "booked", data: "")),
        JournalRecord(kind: .set, event: hubEvent(UInt64.max, "room-1.x_Y", name: "init", data: "{\"a\":[1,2]}")),
        JournalRecord(
            kind: .message, event: hubEvent(7, "a", name: "delta", data: "line1\nline2\r\n\u{E9}\u{1F600}\0")),
        JournalRecord(kind: .message, event: hubEvent(8, "a", data: String(repeating: "x", count: 70_000))),
    ]

    @Test("reads back each record it writes and consumes exactly its bytes", arguments: records)
    func roundTrip(_ record: JournalRecord) {
        let bytes = recordBytes(record)
        var buffer = ByteBuffer(bytes: bytes + [0xAA])
        let (decoded, torn) = JournalCodec.decodeRecord(from: &buffer)
        #expect(decoded == record)
        #expect(!torn)
        #expect(buffer.readerIndex == bytes.count)
    }

    @Test("reads several records in order and then ends cleanly")
    func severalRecords() {
        let result = decodeAll(Self.records.flatMap(recordBytes))
        #expect(result.records == Self.records)
        #expect(!result.torn)
    }

    @Test("an empty buffer ends cleanly, not torn")
    func emptyIsClean() {
        var buffer = ByteBuffer()
        let (record, torn) = JournalCodec.decodeRecord(from: &buffer)
        #expect(record == nil)
        #expect(!torn)
    }

    @Test("calls every truncation of a valid record torn, without consuming anything")
    func everyTruncationIsTorn() {
        let first = recordBytes(JournalRecord(kind: .message, event: hubEvent(1, "a", data: "x")))
        for length in 1..<sampleBytes.count {
            let result = decodeAll(first + Array(sampleBytes.prefix(length)))
            #expect(result.records.count == 1, "length \(length)")
            #expect(result.torn, "length \(length)")
            #expect(result.readerIndex == first.count, "length \(length)")
        }
    }

    @Test("calls a record with any one byte flipped torn")
    func everyFlippedByteIsTorn() {
        for position in sampleBytes.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var damaged = sampleBytes
                damaged[position] ^= mask
                let result = decodeAll(damaged)
                #expect(result.records.isEmpty, "byte \(position) ^ \(mask)")
                #expect(result.torn, "byte \(position) ^ \(mask)")
                #expect(result.readerIndex == 0)
            }
        }
    }

    static let oversizeLengths: [UInt64] = [(64 << 20) + 1, 0x7FFF_FFFF, 0xFFFF_FFFF]

    @Test("calls a length over 64 MiB torn instead of reading or allocating it", arguments: oversizeLengths)
    func oversizeLengthIsTorn(_ length: UInt64) {
        let result = decodeAll(bigEndian(length, 4) + [0, 0, 0, 0] + Array(repeating: 0, count: 64))
        #expect(result.records.isEmpty)
        #expect(result.torn)
    }

    @Test("calls a length of 64 MiB with too few bytes behind it torn")
    func maximumLengthShortIsTorn() {
        let result = decodeAll(bigEndian(64 << 20, 4) + [0, 0, 0, 0, 1])
        #expect(result.torn)
    }

    static let badBodies: [[UInt8]] = [
        [],  // no kind
        [2],  // no event
        [9] + bigEndian(1, 8) + lengthPrefixed("c") + lengthPrefixed("n") + lengthPrefixed("d"),  // unknown kind
        [0] + bigEndian(1, 8) + lengthPrefixed("c") + lengthPrefixed("n") + lengthPrefixed("d"),  // kind 0
        [1] + bigEndian(1, 8) + lengthPrefixed("c") + lengthPrefixed("n") + lengthPrefixed("d") + [0],  // trailing
        [1] + bigEndian(1, 8) + lengthPrefixed("c") + lengthPrefixed("n") + bigEndian(5, 4) + [0x61],  // short string
        [1] + bigEndian(1, 8) + lengthPrefixed("c") + lengthPrefixed("n") + bigEndian(1, 4) + [0xFF],  // not UTF-8
    ]

    @Test("calls a record torn when its checksum matches but its body is not a record", arguments: badBodies)
    func badBodyIsTorn(_ body: [UInt8]) {
        let result = decodeAll(framed(body))
        #expect(result.records.isEmpty)
        #expect(result.torn)
        #expect(result.readerIndex == 0)
    }

    // MARK: Snapshots

    static let snapshot = JournalSnapshot(
        epoch: "k3j9x2mq0a", sequence: 42, lastDropped: 30,
        channels: [
            .init(name: "rooms", state: "{\"a\":1}", visibleSequence: 41, lastDropped: 30),
            .init(name: "b", state: "7", visibleSequence: 0, lastDropped: 0),
        ],
        history: [hubEvent(31, "rooms", data: "{\"a\":1}"), hubEvent(42, "b", name: "init", data: "7")])

    @Test("a snapshot keeps its idempotency keys (key, sequence, accepted-at) in order; an older snapshot without them reads as none")
    func snapshotKeys() throws {
        var snapshot = JournalSnapshot(epoch: "e", sequence: 9, lastDropped: 0, channels: [], history: [])
        snapshot.keys = [
            IdempotencyEntry(key: "order-1", sequence: 3, acceptedAt: 1_700_000_000_000),
            IdempotencyEntry(key: "order-2", sequence: 9, acceptedAt: 1_700_000_000_500),
        ]
        let bytes = JournalCodec.encode(snapshot)
        let keys =
            bigEndian(2, 4) + lengthPrefixed("order-1") + bigEndian(3, 8) + bigEndian(1_700_000_000_000, 8)
            + lengthPrefixed("order-2") + bigEndian(9, 8) + bigEndian(1_700_000_000_500, 8)
        #expect(Array(bytes.readableBytesView).suffix(keys.count) == keys[...])
        #expect(try JournalCodec.decodeSnapshot(bytes).keys == snapshot.keys)
        // The layout before keys: the body ends after lost-through.
        let old = lengthPrefixed("e") + bigEndian(9, 8) + [UInt8](repeating: 0, count: 24)
        let oldBytes = ByteBuffer(
            bytes: Array("HERALDS1".utf8) + bigEndian(UInt64(old.count), 8) + bigEndian(UInt64(CRC32.checksum(old)), 4)
                + old)
        let decoded = try JournalCodec.decodeSnapshot(oldBytes)
        #expect(decoded.keys.isEmpty)
        #expect(decoded.sequence == 9)
    }

    @Test("an event with an idempotency key is written with kind | 0x10, then its key and accept time, and read back")
    func keyedRecord() {
        let record = JournalRecord(
            kind: .merge, event: HubEvent(sequence: 5, channel: "c", name: "delta", data: "{}"), key: "k-1",
            acceptedAt: 42)
        var buffer = ByteBuffer()
        JournalCodec.encode(record, into: &buffer)
        let body =
            [0x12] + bigEndian(5, 8) + lengthPrefixed("c") + lengthPrefixed("delta") + lengthPrefixed("{}")
            + lengthPrefixed("k-1") + bigEndian(42, 8)
        #expect(
            Array(buffer.readableBytesView)
                == bigEndian(UInt64(body.count), 4) + bigEndian(UInt64(CRC32.checksum(body)), 4) + body)
        let (decoded, torn) = JournalCodec.decodeRecord(from: &buffer)
        #expect(decoded == record)
        #expect(!torn)
    }

    @Test("reads back the snapshot it writes")
    func snapshotRoundTrip() throws {
        let decoded = try JournalCodec.decodeSnapshot(JournalCodec.encode(Self.snapshot))
        #expect(snapshotFields(decoded) == snapshotFields(Self.snapshot))
        #expect(decoded.history == Self.snapshot.history)
        #expect(decoded.channels.map(\.name) == ["rooms", "b"])
    }

    @Test("reads back an empty snapshot (sequence, last dropped, no channels, no history, lost through, no keys)")
    func emptySnapshotRoundTrip() throws {
        let empty = JournalSnapshot(epoch: "e", sequence: 0, lastDropped: 0, channels: [], history: [])
        let bytes = JournalCodec.encode(empty)
        let body = lengthPrefixed("e") + [UInt8](repeating: 0, count: 36)
        #expect(
            Array(bytes.readableBytesView)
                == Array("HERALDS1".utf8) + bigEndian(41, 8) + bigEndian(UInt64(CRC32.checksum(body)), 4) + body)
        let decoded = try JournalCodec.decodeSnapshot(bytes)
        #expect(snapshotFields(decoded) == snapshotFields(empty))
    }

    @Test("reads a snapshot written before reservations (no lost-through field) as lost through 0")
    func oldSnapshotWithoutLostThrough() throws {
        let body = lengthPrefixed("e") + [UInt8](repeating: 0, count: 24)
        let bytes = Array("HERALDS1".utf8) + bigEndian(29, 8) + bigEndian(UInt64(CRC32.checksum(body)), 4) + body
        #expect(try JournalCodec.decodeSnapshot(ByteBuffer(bytes: bytes)).lostThrough == 0)
    }

    @Test("a reservation record is length, crc32, kind 4, through and the boot id")
    func reservationRecord() {
        var buffer = ByteBuffer()
        JournalCodec.encode(JournalReservation(through: 1000, bootID: "b"), into: &buffer)
        let body: [UInt8] = [4] + bigEndian(1000, 8) + lengthPrefixed("b")
        #expect(
            Array(buffer.readableBytesView)
                == bigEndian(UInt64(body.count), 4) + bigEndian(UInt64(CRC32.checksum(body)), 4) + body)
        #expect(JournalCodec.decodeEntry(from: &buffer).entry == .reservation(JournalReservation(through: 1000, bootID: "b")))
    }

    @Test("writes a snapshot as magic, body length, CRC-32 of the body, body")
    func snapshotLayout() {
        let bytes = Array(JournalCodec.encode(Self.snapshot).readableBytesView)
        let body = Array(bytes.dropFirst(20))
        #expect(Array(bytes.prefix(8)) == Array("HERALDS1".utf8))
        #expect(Array(bytes[8..<16]) == bigEndian(UInt64(body.count), 8))
        #expect(Array(bytes[16..<20]) == bigEndian(UInt64(CRC32.checksum(body)), 4))
        #expect(Array(body.prefix(14)) == lengthPrefixed("k3j9x2mq0a"))
    }

    @Test("refuses a damaged snapshot: any truncation, any flipped byte, a wrong magic")
    func damagedSnapshot() {
        let bytes = Array(JournalCodec.encode(Self.snapshot).readableBytesView)
        let message = "the snapshot is damaged (bad header, length or checksum)"
        for length in 0..<bytes.count {
            let error = #expect(throws: JournalError.self) {
                try JournalCodec.decodeSnapshot(ByteBuffer(bytes: bytes.prefix(length)))
            }
            #expect(error?.description == message, "length \(length)")
        }
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x20
            let error = #expect(throws: JournalError.self) {
                try JournalCodec.decodeSnapshot(ByteBuffer(bytes: damaged))
            }
            #expect(error?.description == message, "byte \(position)")
        }
        let error = #expect(throws: JournalError.self) {
            try JournalCodec.decodeSnapshot(ByteBuffer(bytes: bytes + [0]))
        }
        #expect(error?.description == message)
    }

    @Test("refuses a snapshot whose checksum matches but whose body is cut short")
    func snapshotBodyCutShort() {
        let body = lengthPrefixed("ep") + bigEndian(1, 8)  // no lastDropped, no counts
        let bytes =
            Array("HERALDS1".utf8) + bigEndian(UInt64(body.count), 8) + bigEndian(UInt64(CRC32.checksum(body)), 4)
            + body
        let error = #expect(throws: JournalError.self) { try JournalCodec.decodeSnapshot(ByteBuffer(bytes: bytes)) }
        #expect(error?.description.hasPrefix("the snapshot is damaged: ") == true)
    }
}
