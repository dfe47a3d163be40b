// The byte layout of the journal: records (`length | crc32 | kind | event`, and for an event
// with an idempotency key `kind | 0x10 | event | key | accepted-at ms`), reservations
// (`length | crc32 | 4 | through | boot id`) and the snapshot (`HERALDS1 | length | crc32 |
// body`). Event fields use the hub link's layout.
import HeraldProtocol
import NIOCore

/// A journal file that cannot be read back; the message says which and where.
struct JournalError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The state written at one sequence, so that older segments can be deleted.
struct JournalSnapshot: Sendable {
    struct Channel: Sendable {
        var name: String
        var state: String
        var visibleSequence: UInt64
        var lastDropped: UInt64
    }

    var epoch: String
    var sequence: UInt64
    var lastDropped: UInt64
    var channels: [Channel]
    var history: [HubEvent]
    /// Resume ids up to this sequence are unknown (numbers lost to a power loss); 0 if none.
    var lostThrough: UInt64 = 0
    /// The idempotency keys remembered at the snapshot, oldest first.
    var keys: [IdempotencyEntry] = []
}

/// A durable promise that no sequence up to `through` is ever given out again: written and
/// synced before any event numbered beyond the previous reservation becomes visible.
struct JournalReservation: Sendable, Equatable {
    var through: UInt64
    /// The kernel that wrote it (see `JournalFileSystem.bootID`).
    var bootID: String
}

/// One record of a journal segment.
enum JournalEntry: Sendable, Equatable {
    case event(JournalRecord)
    case reservation(JournalReservation)
}

enum JournalCodec {
    static let snapshotMagic = Array("HERALDS1".utf8)
    /// Records larger than this are corruption, not data (events are at most a few MiB).
    static let maximumRecordLength = 64 << 20

    /// The kind byte of a reservation record (event records use `RecordKind`).
    static let reservationKind: UInt8 = 4
    /// Set in an event record's kind byte when its idempotency key and acceptance time follow the event.
    static let keyedFlag: UInt8 = 0x10

    /// Appends one record.
    static func encode(_ record: JournalRecord, into buffer: inout ByteBuffer) {
        var body = ByteBufferAllocator().buffer(capacity: record.event.data.utf8.count + 64)
        body.writeInteger(record.kind.rawValue | (record.key == nil ? 0 : keyedFlag))
        body.writeHubEvent(record.event)
        if let key = record.key {
            body.writeLengthPrefixedString(key)
            body.writeInteger(record.acceptedAt)
        }
        appendFramed(&body, into: &buffer)
    }

    /// Appends one reservation record.
    static func encode(_ reservation: JournalReservation, into buffer: inout ByteBuffer) {
        var body = ByteBufferAllocator().buffer(capacity: 64)
        body.writeInteger(reservationKind)
        body.writeInteger(reservation.through)
        body.writeLengthPrefixedString(reservation.bootID)
        appendFramed(&body, into: &buffer)
    }

    private static func appendFramed(_ body: inout ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(body.readableBytes))
        buffer.writeInteger(CRC32.checksum(body.readableBytesView))
        buffer.writeBuffer(&body)
    }

    /// Reads the next record. `nil` when the buffer ends cleanly or with a torn (partial or
    /// corrupt) record, with `torn` telling which.
    static func decodeRecord(from buffer: inout ByteBuffer) -> (record: JournalRecord?, torn: Bool) {
        let (entry, torn) = decodeEntry(from: &buffer)
        switch entry {
        case .event(let record): return (record, false)
        case .reservation: return (nil, true)
        case nil: return (nil, torn)
        }
    }

    /// Reads the next entry (event or reservation), as `decodeRecord` does.
    static func decodeEntry(from buffer: inout ByteBuffer) -> (entry: JournalEntry?, torn: Bool) {
        guard buffer.readableBytes > 0 else { return (nil, false) }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let checksum = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self),
            Int(length) <= maximumRecordLength,
            let body = buffer.getSlice(at: buffer.readerIndex + 8, length: Int(length)),
            CRC32.checksum(body.readableBytesView) == checksum
        else { return (nil, true) }
        var reader = FieldReader(buffer: body, type: 0)
        guard let rawKind: UInt8 = try? reader.integer() else { return (nil, true) }
        let entry: JournalEntry
        if rawKind == reservationKind {
            guard let through: UInt64 = try? reader.integer(), let bootID = try? reader.string() else {
                return (nil, true)
            }
            entry = .reservation(JournalReservation(through: through, bootID: bootID))
        } else {
            guard let kind = RecordKind(rawValue: rawKind & ~keyedFlag), let event = try? reader.event() else {
                return (nil, true)
            }
            var record = JournalRecord(kind: kind, event: event)
            if rawKind & keyedFlag != 0 {
                guard let key = try? reader.string(), let acceptedAt: UInt64 = try? reader.integer() else {
                    return (nil, true)
                }
                record.key = key
                record.acceptedAt = acceptedAt
            }
            entry = .event(record)
        }
        guard reader.buffer.readableBytes == 0 else { return (nil, true) }
        buffer.moveReaderIndex(forwardBy: 8 + Int(length))
        return (entry, false)
    }

    static func encode(_ snapshot: JournalSnapshot) -> ByteBuffer {
        var body = ByteBufferAllocator().buffer(capacity: 4096)
        body.writeLengthPrefixedString(snapshot.epoch)
        body.writeInteger(snapshot.sequence)
        body.writeInteger(snapshot.lastDropped)
        body.writeInteger(UInt32(snapshot.channels.count))
        for channel in snapshot.channels {
            body.writeLengthPrefixedString(channel.name)
            body.writeLengthPrefixedString(channel.state)
            body.writeInteger(channel.visibleSequence)
            body.writeInteger(channel.lastDropped)
        }
        body.writeInteger(UInt32(snapshot.history.count))
        for event in snapshot.history { body.writeHubEvent(event) }
        body.writeInteger(snapshot.lostThrough)
        body.writeInteger(UInt32(snapshot.keys.count))
        for entry in snapshot.keys {
            body.writeLengthPrefixedString(entry.key)
            body.writeInteger(entry.sequence)
            body.writeInteger(entry.acceptedAt)
        }
        var out = ByteBufferAllocator().buffer(capacity: body.readableBytes + 24)
        out.writeBytes(snapshotMagic)
        out.writeInteger(UInt64(body.readableBytes))
        out.writeInteger(CRC32.checksum(body.readableBytesView))
        out.writeBuffer(&body)
        return out
    }

    static func decodeSnapshot(_ buffer: ByteBuffer) throws(JournalError) -> JournalSnapshot {
        var buffer = buffer
        guard buffer.readBytes(length: snapshotMagic.count) == snapshotMagic,
            let length = buffer.readInteger(as: UInt64.self), let checksum = buffer.readInteger(as: UInt32.self),
            length == UInt64(buffer.readableBytes), CRC32.checksum(buffer.readableBytesView) == checksum
        else { throw JournalError("the snapshot is damaged (bad header, length or checksum)") }
        var reader = FieldReader(buffer: buffer, type: 0)
        do {
            var snapshot = JournalSnapshot(
                epoch: try reader.string(), sequence: try reader.integer(), lastDropped: try reader.integer(),
                channels: [],
                history: [])
            let channelCount = try reader.count()
            for _ in 0..<channelCount {
                snapshot.channels.append(
                    .init(
                        name: try reader.string(), state: try reader.string(), visibleSequence: try reader.integer(),
                        lastDropped: try reader.integer()))
            }
            let historyCount = try reader.count()
            for _ in 0..<historyCount { snapshot.history.append(try reader.event()) }
            // Written since reservations exist; older snapshots end before it.
            if reader.buffer.readableBytes >= 8 { snapshot.lostThrough = try reader.integer() }
            // Written since idempotency keys exist; older snapshots end before it.
            if reader.buffer.readableBytes >= 4 {
                let keyCount = try reader.count()
                for _ in 0..<keyCount {
                    snapshot.keys.append(
                        IdempotencyEntry(key: try reader.string(), sequence: try reader.integer(), acceptedAt: try reader.integer()))
                }
            }
            return snapshot
        } catch {
            throw JournalError("the snapshot is damaged: \(error)")
        }
    }
}

/// CRC-32 (IEEE 802.3), as zlib computes it.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
