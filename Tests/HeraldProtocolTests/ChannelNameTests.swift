// Channel names: which ones pass the one naming rule, and the exact error for each that does not.
import HeraldProtocol
import Testing

@Suite("Channel names")
struct ChannelNameTests {
    static let rule = "channel names are 1 to 64 characters from A-Z a-z 0-9 _ - ."

    static let accepted: [String] = [
        "a", "Z", "7", "_", "-", ".",
        String(repeating: "x", count: 64),
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "news.eu-west_2",
        "..",
    ]

    @Test("accepts names of 1 to 64 characters from every allowed class", arguments: accepted)
    func accepts(_ name: String) throws {
        let channel = try ChannelName(validating: name)
        #expect(channel.rawValue == name)
        #expect(channel.description == name)
    }

    static let refused: [(String, ChannelNameError)] = [
        ("", .empty),
        (String(repeating: "x", count: 65), .tooLong(65)),
        (String(repeating: "x", count: 1000), .tooLong(1000)),
        // Length is counted in bytes: 33 two-byte characters are 66 bytes.
        (String(repeating: "\u{E9}", count: 33), .tooLong(66)),
        ("a b", .invalidCharacter(" ")),
        ("a/b", .invalidCharacter("/")),
        ("50%", .invalidCharacter("%")),
        ("a:b", .invalidCharacter(":")),
        ("a\nb", .invalidCharacter("\n")),
        ("a\r\nb", .invalidCharacter("\r")),
        ("a\tb", .invalidCharacter("\t")),
        ("a\0b", .invalidCharacter("\0")),
        ("caf\u{E9}", .invalidCharacter("\u{E9}")),
        ("cafe\u{301}", .invalidCharacter("\u{301}")),
        ("x\u{1F389}", .invalidCharacter("\u{1F389}")),
        ("a+b", .invalidCharacter("+")),
        ("a*", .invalidCharacter("*")),
        // The first offending scalar is the one reported.
        ("ok/then space", .invalidCharacter("/")),
    ]

    @Test("refuses bad names with the exact reason", arguments: refused)
    func refuses(_ name: String, _ expected: ChannelNameError) {
        #expect(throws: expected) { try ChannelName(validating: name) }
    }

    static let descriptions: [(ChannelNameError, String)] = [
        (.empty, "invalid channel name: empty (\(rule))"),
        (.tooLong(65), "invalid channel name: 65 bytes long (\(rule))"),
        (.invalidCharacter("/"), "invalid channel name: '/' is not allowed (\(rule))"),
        (.invalidCharacter("\u{E9}"), "invalid channel name: '\u{E9}' is not allowed (\(rule))"),
        (.invalidCharacter(" "), "invalid channel name: U+0020 is not allowed (\(rule))"),
        (.invalidCharacter("\n"), "invalid channel name: U+000A is not allowed (\(rule))"),
        (.invalidCharacter("\0"), "invalid channel name: U+0000 is not allowed (\(rule))"),
        (.invalidCharacter("\u{7F}"), "invalid channel name: '\u{7F}' is not allowed (\(rule))"),
    ]

    @Test("describes each refusal and states the rule", arguments: descriptions)
    func describes(_ error: ChannelNameError, _ expected: String) {
        #expect(error.description == expected)
    }

    @Test("orders and hashes names by their text")
    func ordersByText() throws {
        let names = try ["b", "A", "a", "_", "0"].map { try ChannelName(validating: $0) }
        #expect(names.sorted().map(\.rawValue) == ["0", "A", "_", "a", "b"])
        #expect(Set(names + names).count == 5)
        #expect(try ChannelName(validating: "x") == ChannelName(validating: "x"))
        #expect(try ChannelName(validating: "x") != ChannelName(validating: "X"))
    }

    @Test("allows exactly the characters A-Z a-z 0-9 _ - . among all of ASCII")
    func asciiCharset() {
        var allowed = ""
        for value in UInt8(0)...UInt8(127) {
            let name = String(UnicodeScalar(value))
            if (try? ChannelName(validating: name)) != nil { allowed.append(name) }
        }
        #expect(allowed == "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
    }
}
