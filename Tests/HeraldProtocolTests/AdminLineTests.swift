// The admin line protocol: splitting and quoting words, the line decoder, and reply text.
import HeraldProtocol
import NIOCore
import NIOTestUtils
import Testing

@Suite("Admin lines")
struct AdminLineTests {
    // MARK: Splitting

    static let splitTable: [(String, [String])] = [
        ("publish news hello", ["publish", "news", "hello"]),
        ("  publish   news\t\thello \t", ["publish", "news", "hello"]),
        ("", []),
        (" \t  ", []),
        (#""a b""#, ["a b"]),
        (#""\\""#, ["\\"]),
        (#""\"""#, ["\""]),
        (#""\n""#, ["\n"]),
        (#""\r""#, ["\r"]),
        (#""\t""#, ["\t"]),
        (#""\r\n""#, ["\r\n"]),
        (#""x\\y\"z\nw\rv\tu""#, ["x\\y\"z\nw\rv\tu"]),
        (#"'a \n "b" \'"#, [#"a \n "b" \"#]),
        (#"'it''s'"#, ["its"]),
        (#"a\ b"#, ["a b"]),
        (#"\"x"#, ["\"x"]),
        (#"\'x"#, ["'x"]),
        (#"a\\b"#, ["a\\b"]),
        (#"\n"#, ["n"]),
        (#"\ "#, [" "]),
        (#"a"b c"d"#, ["ab cd"]),
        (#"a'b c'd"#, ["ab cd"]),
        (#""a"'b'c"#, ["abc"]),
        (#""""#, [""]),
        ("''", [""]),
        (#"x "" y '' z"#, ["x", "", "y", "", "z"]),
        (#"publish news '{"a": [1, 2]}'"#, ["publish", "news", #"{"a": [1, 2]}"#]),
        (#"publish news "{\"a\": \"b\"}""#, ["publish", "news", #"{"a": "b"}"#]),
        ("\u{E9}t\u{E9} \u{1F389}", ["\u{E9}t\u{E9}", "\u{1F389}"]),
        ("a\u{A0}b", ["a\u{A0}b"]),
    ]

    @Test("splits lines into words as a shell would", arguments: splitTable)
    func splits(_ line: String, _ words: [String]) throws {
        #expect(try AdminLine.split(line) == words)
    }

    static let badLines: [(String, AdminLineError)] = [
        (#""abc"#, .unterminatedQuote),
        (#"'abc"#, .unterminatedQuote),
        (#"ok "abc"#, .unterminatedQuote),
        (#""a" 'b"#, .unterminatedQuote),
        (#"""#, .unterminatedQuote),
        ("'", .unterminatedQuote),
        (#""abc\"#, .unterminatedQuote),
        (#""abc\""#, .unterminatedQuote),
        (#""\x""#, .unknownEscape("x")),
        (#""\0""#, .unknownEscape("0")),
        (#""\'""#, .unknownEscape("'")),
        (#"a\"#, .danglingEscape),
        (#"\"#, .danglingEscape),
        (#""a" \"#, .danglingEscape),
    ]

    @Test("refuses unbalanced quotes and bad escapes with the exact error", arguments: badLines)
    func refuses(_ line: String, _ expected: AdminLineError) {
        #expect(throws: expected) { try AdminLine.split(line) }
    }

    static let errorDescriptions: [(AdminLineError, String)] = [
        (.unterminatedQuote, #"unterminated quote: close every " or ' you open"#),
        (.danglingEscape, "the line ends with a lone backslash"),
        (.unknownEscape("x"), #"unknown escape \x (inside double quotes: \\ \" \n \r \t)"#),
        (.tooLong(limit: 4096), "request line longer than 4096 bytes"),
    ]

    @Test("describes each refusal in words", arguments: errorDescriptions)
    func describes(_ error: AdminLineError, _ expected: String) {
        #expect(error.description == expected)
    }

    // MARK: Quoting

    static let quoteTable: [(String, String)] = [
        ("", #""""#),
        ("plain", #""plain""#),
        ("a b", #""a b""#),
        (#"say "hi""#, #""say \"hi\"""#),
        ("it's", #""it's""#),
        (#"C:\dir"#, #""C:\\dir""#),
        ("1\n2\r3\t4", #""1\n2\r3\t4""#),
        ("a\r\nb", #""a\r\nb""#),
        ("\u{E9}\u{1F389}", "\"\u{E9}\u{1F389}\""),
    ]

    @Test("quotes a word inside double quotes with C escapes", arguments: quoteTable)
    func quotes(_ word: String, _ quoted: String) {
        #expect(AdminLine.quote(word) == quoted)
    }

    static let trickyWords: [String] = [
        "", " ", "  ", "a b", "\t", "\n", "\r", "\r\n", "\n\r", "\r\r\n\n",
        "\"", "'", "\"'\"'", "\\", "\\\\", "\\\"", "\\n", "trailing\\", "'single' \"double\"",
        "\u{E9}", "e\u{301}", "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", "\u{1F1EB}\u{1F1F7}",
        "\u{65E5}\u{672C}\u{8A9E}",
        "\"\u{301}", "\\\u{301}", "a\\\u{301}b",
        "\0", "\u{7F}", "\u{2028}",
        #"{"a":"b\"c","d":[1,2,{"e":null}],"f":"\u00e9\n"}"#,
        "line one\nline two\r\nline three",
        "publish news hello",
    ]

    @Test("gives every quoted word back unchanged when split", arguments: trickyWords)
    func quoteRoundTrip(_ word: String) throws {
        #expect(try AdminLine.split(AdminLine.quote(word)) == [word])
    }

    @Test("gives a joined list of tricky words back unchanged when split")
    func joinRoundTrip() throws {
        let words = Self.trickyWords
        #expect(try AdminLine.split(AdminLine.join(words)) == words)
        #expect(try AdminLine.split(AdminLine.join(words.reversed())) == words.reversed())
        #expect(AdminLine.join([]) == "")
        #expect(try AdminLine.split(AdminLine.join([])) == [])
        #expect(AdminLine.join(["a", "b c", ""]) == #""a" "b c" """#)
    }

    @Test(
        "gives back words that start with a combining mark or end with a prepended character",
        arguments: ["\u{301}", "\u{301}x", "\u{20DD}", "x\u{600}"]
    )
    func quoteRoundTripGraphemes(_ word: String) throws {
        // Quoting works on code points: a combining mark at the start of a word must not fuse
        // with the opening quote, nor a Prepend character (U+0600) with the closing one.
        #expect(try AdminLine.split(AdminLine.quote(word)) == [word])
    }

    // MARK: Line decoder

    @Test("splits a byte stream on LF and CRLF, fed byte by byte, in chunks and all at once")
    func verifier() throws {
        let pairs: [(String, [String])] = [
            ("publish news hello\n", ["publish news hello"]),
            ("stats\r\n", ["stats"]),
            ("\n", [""]),
            ("\r\n", [""]),
            ("a\nb\r\nc\n", ["a", "b", "c"]),
            ("\u{E9}t\u{E9} \u{1F389}\n", ["\u{E9}t\u{E9} \u{1F389}"]),
            ("a\rb\n", ["a\rb"]),
            ("x\r\r\n", ["x\r"]),
            (String(repeating: "m", count: 64) + "\r\n", [String(repeating: "m", count: 64)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: pairs, decoderFactory: { AdminLineDecoder(maximumLength: 64) })
    }

    @Test("accepts a line of exactly the limit, with either line end")
    func lineAtLimit() throws {
        var decoder = AdminLineDecoder(maximumLength: 4)
        var buffer = ByteBuffer(string: "abcd\nabcd\r\n")
        #expect(try decoder.decode(buffer: &buffer) == "abcd")
        #expect(try decoder.decode(buffer: &buffer) == "abcd")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
    }

    @Test("refuses a line longer than the limit once its LF arrives")
    func tooLongWithLF() {
        var decoder = AdminLineDecoder(maximumLength: 4)
        var buffer = ByteBuffer(string: "abcde\n")
        #expect(throws: AdminLineError.tooLong(limit: 4)) { try decoder.decode(buffer: &buffer) }
        var crlf = ByteBuffer(string: "abcde\r\n")
        #expect(throws: AdminLineError.tooLong(limit: 4)) { try decoder.decode(buffer: &crlf) }
    }

    @Test("refuses a too-long line before any LF arrives, fed byte by byte")
    func tooLongWithoutLF() throws {
        var decoder = AdminLineDecoder(maximumLength: 4)
        var buffer = ByteBuffer()
        // Four bytes and a CR could still be a line of the limit; the sixth byte cannot.
        for byte in "abcd\r".utf8 {
            buffer.writeInteger(byte)
            #expect(try decoder.decode(buffer: &buffer) == nil)
        }
        buffer.writeString("x")
        #expect(throws: AdminLineError.tooLong(limit: 4)) { try decoder.decode(buffer: &buffer) }
    }

    @Test("refuses a flood of 100,000 bytes without a line end")
    func flood() {
        var decoder = AdminLineDecoder(maximumLength: 4096)
        var buffer = ByteBuffer(repeating: UInt8(ascii: "a"), count: 100_000)
        #expect(throws: AdminLineError.tooLong(limit: 4096)) { try decoder.decode(buffer: &buffer) }
    }

    @Test("gives the last line at the end of the stream even without its LF")
    func decodeLast() throws {
        var decoder = AdminLineDecoder(maximumLength: 16)
        var buffer = ByteBuffer(string: "first\r\nlast words")
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == "first")
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == "last words")
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
        #expect(buffer.readableBytes == 0)

        var empty = ByteBuffer()
        #expect(try decoder.decodeLast(buffer: &empty, seenEOF: true) == nil)
    }

    @Test("refuses a too-long last line at the end of the stream")
    func decodeLastTooLong() throws {
        var decoder = AdminLineDecoder(maximumLength: 4)
        var atLimit = ByteBuffer(string: "abcd")
        #expect(try decoder.decodeLast(buffer: &atLimit, seenEOF: true) == "abcd")
        var over = ByteBuffer(string: "abcde")
        #expect(throws: AdminLineError.tooLong(limit: 4)) { try decoder.decodeLast(buffer: &over, seenEOF: true) }
    }

    // MARK: Replies

    static let replies: [(AdminReply, String)] = [
        (.ok(), "ok\n\n"),
        (.ok([]), "ok\n\n"),
        (.ok(["news 3", "sport 0"]), "ok\nnews 3\nsport 0\n\n"),
        (.failure("no such channel: x"), "error: no such channel: x\n\n"),
        (.failure(""), "error: \n\n"),
        (AdminReply(error: "partial", lines: ["kept"]), "error: partial\nkept\n\n"),
        (.ok(["a\nb"]), "ok\na\\nb\n\n"),
        (.ok(["a\rb"]), "ok\na\\rb\n\n"),
        (.ok(["a\r\nb"]), "ok\na\\r\\nb\n\n"),
        (.ok(["\n"]), "ok\n\\n\n\n"),
        (.ok(["end\n"]), "ok\nend\\n\n\n"),
        (.ok(["\n\nx"]), "ok\n\\n\\nx\n\n"),
        (.ok([""]), "ok\n \n\n"),
        (.ok(["a", "", "b"]), "ok\na\n \nb\n\n"),
        (.failure("bad\nthing\r\n"), "error: bad\\nthing\\r\\n\n\n"),
        (.ok(["\u{E9} \u{1F389}"]), "ok\n\u{E9} \u{1F389}\n\n"),
    ]

    @Test("writes the status line, the body lines and one empty line", arguments: replies)
    func replyText(_ reply: AdminReply, _ text: String) {
        #expect(reply.text == text)
    }

    @Test("never lets a body line end the reply early", arguments: replies)
    func replyFraming(_ reply: AdminReply, _ text: String) {
        let bytes = Array(reply.text.utf8)
        #expect(!bytes.contains(UInt8(ascii: "\r")))
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // Status, one line per body line, the empty line, and the nothing after the last LF.
        #expect(lines.count == 1 + reply.lines.count + 2)
        #expect(lines.suffix(2).allSatisfy { $0.isEmpty })
        #expect(lines.dropLast(2).allSatisfy { !$0.isEmpty })
    }
}

@Suite("Admin replies")
struct AdminReplyParsingTests {
    @Test("reads ok and error replies back from the lines their text is made of")
    func roundTrip() {
        for reply in [AdminReply.ok(), .ok(["a", "b c"]), .failure("no such channel"), AdminReply(error: "x", lines: ["y"])] {
            let lines = reply.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(2).map(String.init)
            #expect(AdminReply(lines: lines) == reply, "\(reply)")
        }
    }

    @Test("refuses a reply whose first line is neither ok nor error, and an empty one")
    func refusesOthers() {
        #expect(AdminReply(lines: []) == nil)
        #expect(AdminReply(lines: ["okay"]) == nil)
        #expect(AdminReply(lines: ["error:no space"]) == nil)
    }
}
