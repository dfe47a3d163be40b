// The byte layout of hub link frames: a 4-byte big-endian length, a 1-byte type, the fields.
// Integers are big-endian, strings are a 4-byte length and UTF-8, lists a 4-byte count.
import NIOCore

/// A hub link frame that could not be decoded. The connection that sent it is closed.
public enum HubFrameError: Error, Equatable, CustomStringConvertible {
    case frameTooLarge(length: Int, limit: Int)
    case unknownType(UInt8)
    case truncated(type: UInt8)
    case trailingBytes(type: UInt8, count: Int)
    case invalidUTF8(type: UInt8)
    case invalidFlag(type: UInt8, value: UInt8)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit): return "hub frame of \(length) bytes exceeds the limit of \(limit)"
        case .unknownType(let type): return "unknown hub frame type \(type)"
        case .truncated(let type): return "hub frame of type \(type) ends before its fields do"
        case .trailingBytes(let type, let count): return "hub frame of type \(type) has \(count) bytes after its fields"
        case .invalidUTF8(let type): return "hub frame of type \(type) holds text that is not UTF-8"
        case .invalidFlag(let type, let value):
            return "hub frame of type \(type) has flag byte \(value), which its layout does not define"
        }
    }
}

extension HubFrame {
    enum Kind: UInt8 {
        case hello = 1, welcome, subscribe, subscribed, event, publish, published, statsRequest, statsReply, failure
        case drain, hubStatsRequest, hubStatsReply, presenceRequest, presenceReply, stateEvent, occupancy
    }

    /// Appends the whole frame, length prefix included.
    public func encode(into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        switch self {
        case .hello(let version, let workerID, let epoch, let lastSequence):
            buffer.writeInteger(Kind.hello.rawValue)
            buffer.writeInteger(version)
            buffer.writeLengthPrefixedString(workerID)
            buffer.writeLengthPrefixedString(epoch)
            buffer.writeInteger(lastSequence)
        case .welcome(let epoch, let sequence, let resnapshot):
            buffer.writeInteger(Kind.welcome.rawValue)
            buffer.writeLengthPrefixedString(epoch)
            buffer.writeInteger(sequence)
            buffer.writeInteger(UInt8(resnapshot ? 1 : 0))
        case .subscribe(let request, let channels, let resumeAfter):
            buffer.writeInteger(Kind.subscribe.rawValue)
            buffer.writeInteger(request)
            buffer.writeInteger(UInt32(channels.count))
            for channel in channels { buffer.writeLengthPrefixedString(channel) }
            buffer.writeInteger(resumeAfter)
        case .subscribed(let request, let sequence, let replay, let snapshots):
            buffer.writeInteger(Kind.subscribed.rawValue)
            buffer.writeInteger(request)
            buffer.writeInteger(sequence)
            buffer.writeInteger(UInt32(replay.count))
            for event in replay { buffer.writeHubEvent(event) }
            buffer.writeInteger(UInt32(snapshots.count))
            for snapshot in snapshots {
                buffer.writeLengthPrefixedString(snapshot.channel)
                buffer.writeLengthPrefixedString(snapshot.state)
            }
        case .event(let event):
            buffer.writeInteger(Kind.event.rawValue)
            buffer.writeHubEvent(event)
        case .stateEvent(let event):
            buffer.writeInteger(Kind.stateEvent.rawValue)
            buffer.writeHubEvent(event)
        case .publish(let request, let events):
            buffer.writeInteger(Kind.publish.rawValue)
            buffer.writeInteger(request)
            buffer.writeInteger(UInt32(events.count))
            for publish in events {
                buffer.writeLengthPrefixedString(publish.channel)
                buffer.writeLengthPrefixedString(publish.name)
                buffer.writeLengthPrefixedString(publish.data)
                // Bit 0: a merge patch; bit 1: an idempotency key follows; bit 2: a state replacement.
                buffer.writeInteger(
                    UInt8(publish.merge ? 1 : 0) | UInt8(publish.key == nil ? 0 : 2) | UInt8(publish.replace ? 4 : 0))
                if let key = publish.key { buffer.writeLengthPrefixedString(key) }
            }
        case .published(let request, let result):
            buffer.writeInteger(Kind.published.rawValue)
            buffer.writeInteger(request)
            switch result {
            case .accepted(let sequence, let repeats) where repeats.isEmpty:
                buffer.writeInteger(UInt8(0))
                buffer.writeInteger(sequence)
            case .accepted(let sequence, let repeats):
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(sequence)
                buffer.writeInteger(UInt32(repeats.count))
                for item in repeats {
                    buffer.writeInteger(UInt32(item.index))
                    buffer.writeInteger(item.sequence)
                }
            case .refused(let message):
                buffer.writeInteger(UInt8(1))
                buffer.writeLengthPrefixedString(message)
            case .unavailable(let message):
                buffer.writeInteger(UInt8(2))
                buffer.writeLengthPrefixedString(message)
            case .uncertain(let message):
                buffer.writeInteger(UInt8(3))
                buffer.writeLengthPrefixedString(message)
            }
        case .statsRequest(let request):
            buffer.writeInteger(Kind.statsRequest.rawValue)
            buffer.writeInteger(request)
        case .statsReply(let request, let json):
            buffer.writeInteger(Kind.statsReply.rawValue)
            buffer.writeInteger(request)
            buffer.writeLengthPrefixedString(json)
        case .failure(let message):
            buffer.writeInteger(Kind.failure.rawValue)
            buffer.writeLengthPrefixedString(message)
        case .hubStatsRequest(let request):
            buffer.writeInteger(Kind.hubStatsRequest.rawValue)
            buffer.writeInteger(request)
        case .hubStatsReply(let request, let json):
            buffer.writeInteger(Kind.hubStatsReply.rawValue)
            buffer.writeInteger(request)
            buffer.writeLengthPrefixedString(json)
        case .presenceRequest(let request, let channel):
            buffer.writeInteger(Kind.presenceRequest.rawValue)
            buffer.writeInteger(request)
            buffer.writeLengthPrefixedString(channel)
        case .presenceReply(let request, let json):
            buffer.writeInteger(Kind.presenceReply.rawValue)
            buffer.writeInteger(request)
            buffer.writeLengthPrefixedString(json)
        case .occupancy(let counts):
            buffer.writeInteger(Kind.occupancy.rawValue)
            buffer.writeInteger(UInt32(counts.count))
            for count in counts {
                buffer.writeLengthPrefixedString(count.channel)
                buffer.writeInteger(UInt32(clamping: max(0, count.subscribers)))
            }
        case .drain(let retry, let jitter):
            buffer.writeInteger(Kind.drain.rawValue)
            buffer.writeInteger(retry)
            buffer.writeInteger(jitter)
        }
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }

    /// Decodes one frame body (type byte and fields, without the length prefix), which must
    /// be consumed exactly.
    public static func decode(body: inout ByteBuffer) throws(HubFrameError) -> HubFrame {
        guard let rawType = body.readInteger(as: UInt8.self) else { throw .truncated(type: 0) }
        guard let kind = Kind(rawValue: rawType) else { throw .unknownType(rawType) }
        var reader = FieldReader(buffer: body, type: rawType)
        let frame: HubFrame
        switch kind {
        case .hello:
            frame = .hello(
                version: try reader.integer(), workerID: try reader.string(), epoch: try reader.string(),
                lastSequence: try reader.integer())
        case .welcome:
            frame = .welcome(epoch: try reader.string(), sequence: try reader.integer(), resnapshot: try reader.flag())
        case .subscribe:
            let request: UInt64 = try reader.integer()
            let count = try reader.count()
            var channels: [String] = []
            for _ in 0..<count { channels.append(try reader.string()) }
            frame = .subscribe(request: request, channels: channels, resumeAfter: try reader.integer())
        case .subscribed:
            let request: UInt64 = try reader.integer()
            let sequence: UInt64 = try reader.integer()
            let replayCount = try reader.count()
            var replay: [HubEvent] = []
            for _ in 0..<replayCount { replay.append(try reader.event()) }
            let snapshotCount = try reader.count()
            var snapshots: [ChannelSnapshot] = []
            for _ in 0..<snapshotCount {
                snapshots.append(ChannelSnapshot(channel: try reader.string(), state: try reader.string()))
            }
            frame = .subscribed(request: request, sequence: sequence, replay: replay, snapshots: snapshots)
        case .event:
            frame = .event(try reader.event())
        case .stateEvent:
            frame = .stateEvent(try reader.event())
        case .publish:
            let request: UInt64 = try reader.integer()
            let count = try reader.count()
            var events: [PublishRequest] = []
            for _ in 0..<count {
                let channel = try reader.string()
                let name = try reader.string()
                let data = try reader.string()
                let flags: UInt8 = try reader.integer()
                // A replacement is never also a merge patch.
                guard flags <= 7, flags & 5 != 5 else { throw .invalidFlag(type: rawType, value: flags) }
                let key = flags & 2 != 0 ? try reader.string() : nil
                var request = PublishRequest(channel: channel, name: name, data: data, merge: flags & 1 != 0, key: key)
                request.replace = flags & 4 != 0
                events.append(request)
            }
            frame = .publish(request: request, events)
        case .published:
            let request: UInt64 = try reader.integer()
            let outcome: UInt8 = try reader.integer()
            switch outcome {
            case 0: frame = .published(request: request, .accepted(sequence: try reader.integer()))
            case 1: frame = .published(request: request, .refused(try reader.string()))
            case 2: frame = .published(request: request, .unavailable(try reader.string()))
            case 3: frame = .published(request: request, .uncertain(try reader.string()))
            case 4:
                let sequence: UInt64 = try reader.integer()
                let count = try reader.count()
                var repeats: [PublishRepeat] = []
                for _ in 0..<count {
                    let index: UInt32 = try reader.integer()
                    repeats.append(PublishRepeat(index: Int(index), sequence: try reader.integer()))
                }
                frame = .published(request: request, .accepted(sequence: sequence, repeats: repeats))
            default: throw .invalidFlag(type: rawType, value: outcome)
            }
        case .statsRequest:
            frame = .statsRequest(request: try reader.integer())
        case .statsReply:
            frame = .statsReply(request: try reader.integer(), json: try reader.string())
        case .failure:
            frame = .failure(message: try reader.string())
        case .hubStatsRequest:
            frame = .hubStatsRequest(request: try reader.integer())
        case .hubStatsReply:
            frame = .hubStatsReply(request: try reader.integer(), json: try reader.string())
        case .presenceRequest:
            frame = .presenceRequest(request: try reader.integer(), channel: try reader.string())
        case .presenceReply:
            frame = .presenceReply(request: try reader.integer(), json: try reader.string())
        case .occupancy:
            let count = try reader.count()
            var counts: [ChannelCount] = []
            for _ in 0..<count {
                let channel = try reader.string()
                let subscribers: UInt32 = try reader.integer()
                counts.append(ChannelCount(channel: channel, subscribers: Int(subscribers)))
            }
            frame = .occupancy(counts)
        case .drain:
            frame = .drain(retryMilliseconds: try reader.integer(), jitterMilliseconds: try reader.integer())
        }
        if reader.buffer.readableBytes != 0 {
            throw .trailingBytes(type: rawType, count: reader.buffer.readableBytes)
        }
        body = reader.buffer
        return frame
    }
}

/// Reads the fields of one frame body (or journal record), turning every short read into
/// `HubFrameError.truncated`.
public struct FieldReader {
    /// What is left to read.
    public var buffer: ByteBuffer
    /// The frame or record type, for error messages.
    public let type: UInt8

    public init(buffer: ByteBuffer, type: UInt8) {
        self.buffer = buffer
        self.type = type
    }

    public mutating func integer<T: FixedWidthInteger>() throws(HubFrameError) -> T {
        guard let value = buffer.readInteger(as: T.self) else { throw .truncated(type: type) }
        return value
    }

    /// A one-byte flag: 0 or 1, anything else is malformed.
    public mutating func flag() throws(HubFrameError) -> Bool {
        let value: UInt8 = try integer()
        guard value <= 1 else { throw .invalidFlag(type: type, value: value) }
        return value == 1
    }

    public mutating func count() throws(HubFrameError) -> Int {
        let count: UInt32 = try integer()
        // Every listed item takes at least four bytes: a count larger than that is a lie.
        guard Int(count) <= buffer.readableBytes / 4 else { throw .truncated(type: type) }
        return Int(count)
    }

    public mutating func string() throws(HubFrameError) -> String {
        let length: UInt32 = try integer()
        guard let bytes = buffer.readSlice(length: Int(length)) else { throw .truncated(type: type) }
        guard let text = try? bytes.getUTF8ValidatedString(at: bytes.readerIndex, length: bytes.readableBytes) else {
            throw .invalidUTF8(type: type)
        }
        return text
    }

    public mutating func event() throws(HubFrameError) -> HubEvent {
        HubEvent(sequence: try integer(), channel: try string(), name: try string(), data: try string())
    }
}

extension ByteBuffer {
    /// Writes a string as the hub link does: 4-byte big-endian length, then UTF-8.
    public mutating func writeLengthPrefixedString(_ text: String) {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0))
        let written = writeString(text)
        setInteger(UInt32(written), at: lengthIndex)
    }

    /// Writes an event's fields as the hub link does.
    public mutating func writeHubEvent(_ event: HubEvent) {
        writeInteger(event.sequence)
        writeLengthPrefixedString(event.channel)
        writeLengthPrefixedString(event.name)
        writeLengthPrefixedString(event.data)
    }
}

/// Splits a hub link byte stream into frames. Waits for the whole frame before consuming
/// anything; a frame longer than `maximumFrameLength` is an error that closes the link.
public struct HubFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = HubFrame

    /// The largest frame body accepted, in bytes.
    public let maximumFrameLength: Int

    public init(maximumFrameLength: Int = 32 << 20) {
        self.maximumFrameLength = maximumFrameLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> HubFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= maximumFrameLength else {
            throw HubFrameError.frameTooLarge(length: Int(length), limit: maximumFrameLength)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var body = buffer.readSlice(length: Int(length))!
        return try HubFrame.decode(body: &body)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> HubFrame? {
        try decode(buffer: &buffer)
    }
}

/// Writes `HubFrame`s onto a channel.
public final class HubFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = HubFrame
    public init() {}
    public func encode(data: HubFrame, out: inout ByteBuffer) {
        data.encode(into: &out)
    }
}
