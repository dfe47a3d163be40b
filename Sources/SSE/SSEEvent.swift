// One Server-Sent Event as a server sends it, with the field rules of WHATWG HTML
// ("Server-sent events", §9.2): what may stand in `id` and `event`, and what may not.

/// An event to send on a `text/event-stream`.
///
/// `id` and `event` are validated when the event is made: neither may contain CR, LF or NUL,
/// because such a value could end the field early and inject other fields or whole events.
/// `data` may contain anything; the encoder splits it into several `data:` lines.
public struct SSEEvent: Sendable, Equatable {
    /// The `id` field, or `nil` to send none (the browser keeps its previous last event id).
    public let id: String?
    /// The `event` field (the event type), or `nil` for the default type `message`.
    public let event: String?
    /// The payload. CR, LF and CRLF inside it become line breaks of several `data:` lines.
    public let data: String

    /// Makes an event, refusing an `id` or `event` that could inject fields.
    /// - Throws: `SSEFieldError` naming the field and the character that is not allowed.
    public init(id: String? = nil, event: String? = nil, data: String) throws(SSEFieldError) {
        if let id { try SSEFieldError.check(id, field: .id) }
        if let event { try SSEFieldError.check(event, field: .event) }
        self.id = id
        self.event = event
        self.data = data
    }
}

/// A field value that cannot be sent because it would break the stream's framing.
public struct SSEFieldError: Error, Equatable, CustomStringConvertible {
    /// The field whose value was refused.
    public enum Field: String, Sendable { case id, event }
    /// The field whose value was refused.
    public let field: Field
    /// The character that is not allowed (CR, LF or NUL).
    public let character: Unicode.Scalar

    /// An error for `field` holding `character`.
    public init(field: Field, character: Unicode.Scalar) {
        self.field = field
        self.character = character
    }

    public var description: String {
        let name: String
        switch character {
        case "\r": name = "CR"
        case "\n": name = "LF"
        default: name = "NUL"
        }
        return "the SSE \(field.rawValue) must not contain \(name) (CR, LF and NUL are not allowed)"
    }

    /// Throws if `value` holds CR, LF or NUL.
    static func check(_ value: String, field: Field) throws(SSEFieldError) {
        for scalar in value.unicodeScalars where scalar == "\r" || scalar == "\n" || scalar == "\0" {
            throw SSEFieldError(field: field, character: scalar)
        }
    }
}
