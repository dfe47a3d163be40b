// The admin socket's line protocol: a request is one line of words (quoted as a shell would,
// with C-style escapes inside double quotes); a reply is `ok` or `error: …`, then body lines,
// then one empty line.
import NIOCore

/// A request line that could not be split into words.
public enum AdminLineError: Error, Equatable, CustomStringConvertible {
    case unterminatedQuote
    case danglingEscape
    case unknownEscape(Character)
    case tooLong(limit: Int)
    case invalidUTF8

    public var description: String {
        switch self {
        case .unterminatedQuote: return "unterminated quote: close every \" or ' you open"
        case .danglingEscape: return "the line ends with a lone backslash"
        case .unknownEscape(let character):
            return "unknown escape \\\(character) (inside double quotes: \\\\ \\\" \\n \\r \\t)"
        case .tooLong(let limit): return "request line longer than \(limit) bytes"
        case .invalidUTF8: return "request line is not valid UTF-8"
        }
    }
}

/// Splitting and quoting of admin request lines.
public enum AdminLine {
    /// Splits a request line into words. Words are separated by spaces or tabs; `"…"` quotes
    /// with the escapes `\\ \" \n \r \t`; `'…'` quotes literally; outside quotes `\` escapes the next character.
    public static func split(_ line: String) throws(AdminLineError) -> [String] {
        // Code points, not characters: a combining mark must not fuse with a quote.
        var words: [String] = []
        var current = String.UnicodeScalarView()
        var inWord = false
        var iterator = line.unicodeScalars.makeIterator()
        while let character = iterator.next() {
            switch character {
            case " ", "\t":
                if inWord {
                    words.append(String(current))
                    current = String.UnicodeScalarView()
                    inWord = false
                }
            case "\"":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "\"" {
                        closed = true
                        break
                    }
                    if next == "\\" {
                        guard let escaped = iterator.next() else { throw .unterminatedQuote }
                        switch escaped {
                        case "\\": current.append("\\")
                        case "\"": current.append("\"")
                        case "n": current.append("\n")
                        case "r": current.append("\r")
                        case "t": current.append("\t")
                        default: throw .unknownEscape(Character(escaped))
                        }
                    } else {
                        current.append(next)
                    }
                }
                if !closed { throw .unterminatedQuote }
            case "'":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "'" {
                        closed = true
                        break
                    }
                    current.append(next)
                }
                if !closed { throw .unterminatedQuote }
            case "\\":
                guard let escaped = iterator.next() else { throw .danglingEscape }
                inWord = true
                current.append(escaped)
            default:
                inWord = true
                current.append(character)
            }
        }
        if inWord { words.append(String(current)) }
        return words
    }

    /// Quotes one word so that `split` gives it back unchanged, whatever it holds.
    public static func quote(_ word: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in word.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            default: out.append(scalar)
            }
        }
        out.append("\"")
        return String(out)
    }

    /// A request line (without its line end) from words.
    public static func join(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}

/// Splits an admin byte stream into lines (LF or CRLF). A line longer than `maximumLength`,
/// or one that is not UTF-8, is an error: the server answers it and closes that connection
/// (never a silent U+FFFD in published data).
public struct AdminLineDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = String

    /// The longest line accepted, in bytes, without its line end.
    public let maximumLength: Int

    public init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> String? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maximumLength + 1 { throw AdminLineError.tooLong(limit: maximumLength) }
            return nil
        }
        var length = newline - view.startIndex
        let consumed = length + 1
        if length > 0, view[newline - 1] == UInt8(ascii: "\r") { length -= 1 }
        guard length <= maximumLength else { throw AdminLineError.tooLong(limit: maximumLength) }
        let line: String
        do {
            line = try buffer.getUTF8ValidatedString(at: buffer.readerIndex, length: length) ?? ""
        } catch {
            throw AdminLineError.invalidUTF8
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return line
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> String? {
        if let line = try decode(buffer: &buffer) { return line }
        // A last line without its LF still counts as a request.
        guard buffer.readableBytes > 0 else { return nil }
        guard buffer.readableBytes <= maximumLength else { throw AdminLineError.tooLong(limit: maximumLength) }
        var line: String
        do {
            line = try buffer.readUTF8ValidatedString(length: buffer.readableBytes) ?? ""
        } catch {
            throw AdminLineError.invalidUTF8
        }
        if line.unicodeScalars.last == "\r" { line.unicodeScalars.removeLast() }
        return line
    }
}

/// A reply on the admin socket: `ok` or `error: message`, then body lines, then an empty line.
public struct AdminReply: Sendable, Equatable {
    /// `nil` for success, else what went wrong.
    public var error: String?
    /// The body lines (none is empty: an empty line ends the reply).
    public var lines: [String]

    /// A successful reply with these body lines.
    public static func ok(_ lines: [String] = []) -> AdminReply { AdminReply(error: nil, lines: lines) }
    /// A failed reply.
    public static func failure(_ message: String) -> AdminReply { AdminReply(error: message, lines: []) }

    public init(error: String?, lines: [String]) {
        self.error = error
        self.lines = lines
    }

    /// Reads a reply from its lines, without the empty line that ends it: `ok` or
    /// `error: message`, then the body. Nil when the first line is neither (or there is none).
    /// The one parser of replies, for heraldctl, HeraldClient and the tests.
    public init?(lines: [String]) {
        guard let status = lines.first else { return nil }
        if status == "ok" {
            self.init(error: nil, lines: Array(lines.dropFirst()))
        } else if status.hasPrefix("error: ") {
            self.init(error: String(status.dropFirst(7)), lines: Array(lines.dropFirst()))
        } else {
            return nil
        }
    }

    /// The reply's text, ending with the empty line. Line breaks inside a line are escaped so
    /// that no body line can end the reply early.
    public var text: String {
        var out = error.map { "error: " + Self.singleLine($0) } ?? "ok"
        out += "\n"
        for line in lines { out += Self.singleLine(line).isEmpty ? " \n" : Self.singleLine(line) + "\n" }
        return out + "\n"
    }

    private static func singleLine(_ text: String) -> String {
        guard text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        return text.replacingNewlines()
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        var out = ""
        for character in self {
            switch character {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
