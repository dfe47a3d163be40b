// The other direction of JSON merge patch (RFC 7386): the patch that turns one document into
// another, so that a state replacement reaches connected clients as a small delta.

extension JSONValue {
    /// The merge patch that turns `old` into `new` exactly (member order included: applying it
    /// with ``merging(patch:)`` gives a document that serializes as `new` does), or nil when no
    /// merge patch can say it: a `null` member inside an object of `new` (in a patch, `null`
    /// removes a member), or members of an existing object reordered.
    public static func mergePatch(from old: JSONValue, to new: JSONValue) -> JSONValue? {
        guard let patch = diff(old, new), old.merging(patch: patch).serialized == new.serialized else { return nil }
        return patch
    }

    private static func diff(_ old: JSONValue, _ new: JSONValue) -> JSONValue? {
        guard case .object(let target) = new else {
            // A non-object patch replaces the whole document, null included.
            return new
        }
        guard case .object(let source) = old else {
            // The new object as the patch, merged into nothing: its null members would vanish.
            return new.hasNullMember ? nil : new
        }
        var patch = JSONObject()
        for (key, _) in source.members where target[key] == nil { patch[key] = .null }
        for (key, value) in target.members {
            let before = source[key]
            if let before, before.serialized == value.serialized { continue }
            if case .null = value { return nil }
            if let before, case .object = before, case .object = value {
                guard let inner = diff(before, value) else { return nil }
                patch[key] = inner
            } else {
                if value.hasNullMember { return nil }
                patch[key] = value
            }
        }
        return .object(patch)
    }

    /// Whether an object in this value (itself, or nested in objects) has a `null` member.
    /// Nulls inside arrays do not count: a patch replaces an array whole.
    private var hasNullMember: Bool {
        guard case .object(let object) = self else { return false }
        return object.members.contains { member in
            if case .null = member.value { return true }
            return member.value.hasNullMember
        }
    }
}
