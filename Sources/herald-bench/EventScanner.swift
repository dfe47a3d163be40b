// The two byte-level decoders of the benchmark subscriber: HTTP/1.1 chunked framing, and the
// SSE lines herald-bench needs (`event: init`, and `data: <index> <ns> …`). Both keep their
// state across reads, so any split of the bytes gives the same events.

/// Scans SSE lines for the benchmark's events.
struct EventScanner {
    enum Event {
        /// An `init` event (Herald's first event on a stream).
        case initial
        /// An event whose data starts with two decimal numbers: index and send time.
        case numbered(index: Int, sent: UInt64)
    }

    private enum Field { case start, other, event, data }
    private var field = Field.start
    /// Bytes of the current line's field name or of `"data: "`/`"event: "` matched so far.
    private var matched = 0
    private var isInit = false
    private var numbers: (UInt64, UInt64) = (0, 0)
    private var numberIndex = 0
    private var numberDigits = 0
    private var eventLine = 0

    private static let dataPrefix = Array("data: ".utf8)
    private static let eventPrefix = Array("event: ".utf8)
    private static let initName = Array("init".utf8)

    mutating func feed(_ bytes: UnsafeRawBufferPointer, found: (Event) -> Void) {
        for byte in bytes {
            if byte == 10 {
                endLine(found: found)
                continue
            }
            switch field {
            case .start:
                // The first byte says which field it can be: d(ata), e(vent), or anything else.
                if byte == Self.dataPrefix[0] {
                    field = .data
                    matched = 1
                } else if byte == Self.eventPrefix[0] {
                    field = .event
                    matched = 1
                } else if byte != 13 {
                    field = .other
                }
            case .other:
                break
            case .event:
                if matched < Self.eventPrefix.count {
                    if byte != Self.eventPrefix[matched] { field = .other }
                    matched += 1
                } else {
                    let at = matched - Self.eventPrefix.count
                    eventLine = (at < Self.initName.count && byte == Self.initName[at] && eventLine == at) ? at + 1 : -1
                    matched += 1
                }
            case .data:
                if matched < Self.dataPrefix.count {
                    if byte != Self.dataPrefix[matched] { field = .other }
                    matched += 1
                } else if numberIndex < 2 {
                    if byte >= 48 && byte <= 57 {
                        if numberIndex == 0 {
                            numbers.0 = numbers.0 &* 10 &+ UInt64(byte - 48)
                        } else {
                            numbers.1 = numbers.1 &* 10 &+ UInt64(byte - 48)
                        }
                        numberDigits += 1
                    } else if byte == 32 && numberDigits > 0 {
                        numberIndex += 1
                        numberDigits = 0
                    } else {
                        numberIndex = 3  // not a benchmark event
                    }
                }
            }
        }
    }

    private mutating func endLine(found: (Event) -> Void) {
        switch field {
        case .start:
            // A blank line ends the event.
            if isInit {
                found(.initial)
            } else if numberIndex == 2 || (numberIndex == 1 && numberDigits > 0) {
                found(.numbered(index: Int(numbers.0), sent: numbers.1))
            }
            isInit = false
            numbers = (0, 0)
            numberIndex = 0
            numberDigits = 0
        case .event:
            isInit = eventLine == Self.initName.count && matched == Self.eventPrefix.count + Self.initName.count
        case .other, .data:
            break
        }
        field = .start
        matched = 0
        eventLine = 0
    }
}

/// Decodes `Transfer-Encoding: chunked` and hands on the chunks' content.
struct ChunkDecoder {
    private enum State { case size, sizeExtension, sizeEnd, content, contentEnd, contentEndLF }
    private var state = State.size
    private var remaining = 0

    mutating func feed(_ bytes: UnsafeRawBufferPointer, content: (UnsafeRawBufferPointer) -> Void) {
        var at = 0
        while at < bytes.count {
            let byte = bytes[at]
            switch state {
            case .size:
                if let digit = Self.hexDigit(byte) {
                    remaining = remaining * 16 + digit
                } else if byte == 13 {
                    state = .sizeEnd
                } else {
                    state = .sizeExtension
                }
                at += 1
            case .sizeExtension:
                if byte == 13 { state = .sizeEnd }
                at += 1
            case .sizeEnd:
                // LF after the size line; a zero size ends the body (its trailer is ignored).
                state = remaining > 0 ? .content : .contentEnd
                at += 1
            case .content:
                let take = min(remaining, bytes.count - at)
                content(UnsafeRawBufferPointer(rebasing: bytes[at..<at + take]))
                remaining -= take
                at += take
                if remaining == 0 { state = .contentEnd }
            case .contentEnd:
                state = .contentEndLF  // CR
                at += 1
            case .contentEndLF:
                state = .size  // LF
                remaining = 0
                at += 1
            }
        }
    }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 97...102: Int(byte - 87)
        case 65...70: Int(byte - 55)
        default: nil
        }
    }
}
