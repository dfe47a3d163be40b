// The keep-alive publishers' response decoder: splits the bytes of one HTTP/1.1 connection
// into complete responses (status, body if wanted, whether the server closes), whatever way
// the reads cut them. Content-Length, chunked and read-until-close bodies.

/// Splits a keep-alive HTTP/1.1 response stream into responses. A value type fed raw bytes; it
/// never hands on a partial response.
struct HTTPResponseScanner {
    struct Response: Equatable {
        var status: Int
        /// The body (decoded from chunks), when the scanner keeps bodies.
        var body: [UInt8]
        /// The server said `Connection: close` (or spoke HTTP/1.0 without keep-alive).
        var closes: Bool
    }

    enum Failure: Error, Equatable {
        /// The status line or a header could not be read.
        case malformedHead
        /// More than 16 KiB of head.
        case headTooLong
        /// A chunk size that is not hexadecimal.
        case malformedChunk
        /// The connection ended inside a response.
        case truncated
    }

    private enum State: Equatable {
        case head
        case fixed(remaining: Int)
        case chunkSize(size: Int, digits: Int)
        case chunkExtension(size: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailer(lineLength: Int)
        case untilClose
    }

    /// Keep bodies (a batch's ids); without, bodies are skipped.
    let keepsBody: Bool
    private var state = State.head
    private var head: [UInt8] = []
    private var response = Response(status: 0, body: [], closes: false)

    init(keepsBody: Bool) {
        self.keepsBody = keepsBody
    }

    /// Feeds bytes; calls `found` for every response completed by them, in order.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, found: (Response) -> Void) throws(Failure) {
        var at = 0
        while at < bytes.count {
            switch state {
            case .head:
                let byte = bytes[at]
                at += 1
                head.append(byte)
                if byte == 10, head.count >= 2,
                    head[head.count - 2] == 10
                        || (head.count >= 4 && head[head.count - 2] == 13 && head[head.count - 3] == 10)
                {
                    try startBody(found: found)
                } else if head.count > 16_384 {
                    throw .headTooLong
                }
            case .fixed(let remaining):
                let take = min(remaining, bytes.count - at)
                keep(bytes, at, take)
                at += take
                if remaining == take { complete(found: found) } else { state = .fixed(remaining: remaining - take) }
            case .chunkSize(let size, let digits):
                let byte = bytes[at]
                at += 1
                if let digit = Self.hexDigit(byte), digits < 15 {
                    state = .chunkSize(size: size * 16 + digit, digits: digits + 1)
                } else if byte == 10 && digits > 0 {
                    state = size == 0 ? .trailer(lineLength: 0) : .chunkData(remaining: size)
                } else if (byte == 13 || byte == 59 || byte == 32 || byte == 9) && digits > 0 {
                    state = .chunkExtension(size: size)
                } else {
                    throw .malformedChunk
                }
            case .chunkExtension(let size):
                let byte = bytes[at]
                at += 1
                if byte == 10 { state = size == 0 ? .trailer(lineLength: 0) : .chunkData(remaining: size) }
            case .chunkData(let remaining):
                let take = min(remaining, bytes.count - at)
                keep(bytes, at, take)
                at += take
                state = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                let byte = bytes[at]
                at += 1
                if byte == 10 {
                    state = .chunkSize(size: 0, digits: 0)
                } else if byte != 13 {
                    throw .malformedChunk
                }
            case .trailer(let lineLength):
                let byte = bytes[at]
                at += 1
                if byte == 10 {
                    if lineLength == 0 { complete(found: found) } else { state = .trailer(lineLength: 0) }
                } else if byte != 13 {
                    state = .trailer(lineLength: lineLength + 1)
                }
            case .untilClose:
                keep(bytes, at, bytes.count - at)
                at = bytes.count
            }
        }
    }

    /// The connection ended: completes a response whose body runs until the close; throws if
    /// the close cut a response short. Returns whether a response was cut or completed.
    mutating func finish(found: (Response) -> Void) throws(Failure) {
        switch state {
        case .untilClose:
            response.closes = true
            complete(found: found)
        case .head where head.isEmpty:
            break
        default:
            throw .truncated
        }
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ count: Int) {
        if keepsBody && count > 0 { response.body.append(contentsOf: bytes[at..<at + count]) }
    }

    private mutating func complete(found: (Response) -> Void) {
        found(response)
        response.body.removeAll(keepingCapacity: true)
        response.closes = false
        head.removeAll(keepingCapacity: true)
        state = .head
    }

    /// Reads the status and the headers that frame the body, then picks the body's framing.
    private mutating func startBody(found: (Response) -> Void) throws(Failure) {
        // "HTTP/1.x SSS ..."
        guard head.count >= 12, head.starts(with: Self.httpPrefix), head[6] == UInt8(ascii: "."),
            let status = Self.threeDigits(head[9..<12])
        else { throw .malformedHead }
        let http10 = head[7] == UInt8(ascii: "0")
        var length: Int?
        var chunked = false
        var close = http10
        var lineStart = head.firstIndex(of: 10).map { $0 + 1 } ?? head.count
        while lineStart < head.count {
            var lineEnd = head[lineStart...].firstIndex(of: 10) ?? head.count
            let next = lineEnd + 1
            if lineEnd > lineStart && head[lineEnd - 1] == 13 { lineEnd -= 1 }
            let line = head[lineStart..<lineEnd]
            if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                let name = line[lineStart..<colon]
                let value = Self.trimmed(line[(colon + 1)...])
                if Self.equalsLowercased(name, "content-length") {
                    guard let number = Self.decimal(value) else { throw .malformedHead }
                    length = number
                } else if Self.equalsLowercased(name, "transfer-encoding") {
                    chunked = Self.containsLowercased(value, "chunked")
                } else if Self.equalsLowercased(name, "connection") {
                    if Self.containsLowercased(value, "close") { close = true }
                    if Self.containsLowercased(value, "keep-alive") { close = false }
                }
            } else if !line.isEmpty {
                throw .malformedHead
            }
            lineStart = next
        }
        response.status = status
        response.closes = close
        if (100..<200).contains(status) {
            // An interim answer (100 Continue): the real one follows.
            head.removeAll(keepingCapacity: true)
            return
        }
        if status == 204 || status == 304 {
            complete(found: found)
        } else if chunked {
            state = .chunkSize(size: 0, digits: 0)
        } else if let length {
            if length == 0 { complete(found: found) } else { state = .fixed(remaining: length) }
        } else {
            state = .untilClose
        }
    }

    private static let httpPrefix = Array("HTTP/1".utf8)

    private static func threeDigits(_ bytes: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in bytes {
            guard (48...57).contains(byte) else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    private static func decimal(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count < 16 else { return nil }
        var value = 0
        for byte in bytes {
            guard (48...57).contains(byte) else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == 32 || first == 9 { slice = slice.dropFirst() }
        while let last = slice.last, last == 32 || last == 9 { slice = slice.dropLast() }
        return slice
    }

    private static func lower(_ byte: UInt8) -> UInt8 { (65...90).contains(byte) ? byte + 32 : byte }

    private static func equalsLowercased(_ bytes: ArraySlice<UInt8>, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { expected in zip(bytes, expected).allSatisfy { lower($0) == $1 } }
    }

    private static func containsLowercased(_ bytes: ArraySlice<UInt8>, _ word: StaticString) -> Bool {
        let lowered = bytes.map(lower)
        return word.withUTF8Buffer { expected in lowered.firstRange(of: Array(expected)) != nil }
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
