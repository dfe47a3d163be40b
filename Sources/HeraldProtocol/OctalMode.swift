// Socket permission bits as operators write them: octal, like chmod.

/// Parses `0660`, `660` or `0o660` into permission bits; `nil` for anything else or above 0777.
public func parseOctalMode(_ text: String) -> UInt32? {
    var digits = Substring(text)
    if digits.hasPrefix("0o") { digits = digits.dropFirst(2) }
    guard !digits.isEmpty, digits.count <= 4, let value = UInt32(digits, radix: 8), value <= 0o777 else { return nil }
    return value
}
