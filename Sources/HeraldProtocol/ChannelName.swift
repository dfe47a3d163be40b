// What a channel may be called: the one rule every entry point (HTTP, admin socket, hub link) checks.

/// A validated channel name: 1 to 64 characters from `A-Z a-z 0-9 _ - .`.
///
/// The charset keeps names safe in URLs, log lines, file names and SSE fields without escaping.
public struct ChannelName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The longest name accepted, in bytes.
    public static let maxLength = 64

    /// The name as text.
    public let rawValue: String

    /// Checks `name` against the channel name rules.
    /// - Throws: `ChannelNameError` saying what was wrong and what is allowed.
    public init(validating name: String) throws(ChannelNameError) {
        if name.isEmpty { throw .empty }
        if name.utf8.count > Self.maxLength { throw .tooLong(name.utf8.count) }
        for scalar in name.unicodeScalars where !Self.isAllowed(scalar) {
            throw .invalidCharacter(scalar)
        }
        self.rawValue = name
    }

    public var description: String { rawValue }

    public static func < (lhs: ChannelName, rhs: ChannelName) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-", ".": return true
        default: return false
        }
    }
}

/// Why a channel name was refused.
public enum ChannelNameError: Error, Equatable, CustomStringConvertible {
    case empty
    case tooLong(Int)
    case invalidCharacter(Unicode.Scalar)

    public var description: String {
        let rule = "channel names are 1 to \(ChannelName.maxLength) characters from A-Z a-z 0-9 _ - ."
        switch self {
        case .empty: return "invalid channel name: empty (\(rule))"
        case .tooLong(let count): return "invalid channel name: \(count) bytes long (\(rule))"
        case .invalidCharacter(let scalar):
            let hex = String(scalar.value, radix: 16, uppercase: true)
            let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            let shown = scalar.properties.isWhitespace || scalar.value < 0x20 ? code : "'\(scalar)'"
            return "invalid channel name: \(shown) is not allowed (\(rule))"
        }
    }
}
