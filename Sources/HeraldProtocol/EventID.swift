// The SSE `id` of every Herald event: the hub's epoch and the global sequence number.

/// The identity of one history of events. It changes only when history is lost (a new data
/// directory), so an id from another history is recognised instead of misread.
///
/// On the wire: 1 to 16 characters from `0-9 a-z`.
public struct Epoch: Hashable, Sendable, CustomStringConvertible {
    /// The epoch as text.
    public let rawValue: String

    /// Accepts `text` if it is 1 to 16 characters from `0-9 a-z`.
    public init?(_ text: some StringProtocol) {
        guard (1...16).contains(text.utf8.count),
            text.utf8.allSatisfy({
                ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
            })
        else { return nil }
        self.rawValue = String(text)
    }

    /// A new random epoch of 10 characters.
    public static func random() -> Epoch {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return Epoch(String((0..<10).map { _ in alphabet.randomElement(using: &generator)! }))!
    }

    public var description: String { rawValue }
}

/// An event id as it appears in the SSE `id` field and in `Last-Event-ID`: `<epoch>-<sequence>`,
/// for example `k3j9x2mq0a-1042`.
public struct EventID: Hashable, Sendable, CustomStringConvertible {
    /// The history the sequence number belongs to.
    public let epoch: Epoch
    /// The global sequence number: strictly increasing, the first event is 1.
    public let sequence: UInt64

    public init(epoch: Epoch, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }

    /// Parses an id; anything that is not exactly `<epoch>-<decimal sequence>` gives `nil`,
    /// so a garbage `Last-Event-ID` is treated as absent. Over-long input is refused unread.
    public init?(parsing text: some StringProtocol) {
        guard text.utf8.count <= 40, let dash = text.firstIndex(of: "-"),
            let epoch = Epoch(text[text.startIndex..<dash])
        else { return nil }
        let digits = text[text.index(after: dash)...]
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let sequence = UInt64(digits)
        else { return nil }
        self.init(epoch: epoch, sequence: sequence)
    }

    public var description: String { "\(epoch.rawValue)-\(sequence)" }
}
