// Channel state JSON: exact round trips, string escapes both ways, refused texts with their
// offsets, the nesting limit, object equality, and every test case of RFC 7386 Appendix A.
import HeraldProtocol
import Testing

/// Parses `text`, recording an issue (and giving `null`) if it is refused.
private func parsed(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> JSONValue {
    do {
        return try JSONValue(parsing: text)
    } catch {
        Issue.record("\(text) was refused: \(error)", sourceLocation: sourceLocation)
        return .null
    }
}

@Suite("JSON value")
struct JSONValueTests {
    // MARK: Round trips

    static let roundTrips: [(String, String)] = [
        ("{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}"),
        (" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }\r\n", "{\"a\":[1,2],\"b\":{}}"),
        ("[]", "[]"),
        ("{}", "{}"),
        ("[[],[{}],{\"x\":[]}]", "[[],[{}],{\"x\":[]}]"),
        ("true", "true"),
        ("false", "false"),
        ("null", "null"),
        ("[true,false,null]", "[true,false,null]"),
        ("0", "0"),
        ("1.10", "1.10"),
        ("-0", "-0"),
        ("-0.0", "-0.0"),
        ("1e400", "1e400"),
        ("12345678901234567890", "12345678901234567890"),
        ("-1.5E-7", "-1.5E-7"),
        ("2e+3", "2e+3"),
        ("  7  ", "7"),
        ("\"\"", "\"\""),
        ("\"hello\"", "\"hello\""),
        ("\"\\/\"", "\"/\""),
        ("\"\\u0041\"", "\"A\""),
        ("{\"z\":{\"y\":1,\"x\":2},\"a\":0}", "{\"z\":{\"y\":1,\"x\":2},\"a\":0}"),
        // A repeated name keeps the first position and the last value.
        ("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}"),
    ]

    @Test("serialises parsed text compactly, keeping member order and number text", arguments: roundTrips)
    func roundTrip(_ input: String, _ compact: String) {
        #expect(parsed(input).serialized == compact)
    }

    @Test("keeps a number's text exactly as written")
    func numberText() {
        #expect(parsed("1.10") == .number("1.10"))
        #expect(parsed("-0") == .number("-0"))
        #expect(parsed("1e400") == .number("1e400"))
        #expect(parsed("12345678901234567890") == .number("12345678901234567890"))
        #expect(parsed("[1.10,-0]") == .array([.number("1.10"), .number("-0")]))
    }

    @Test("builds the documented cases for each kind of value")
    func valueCases() {
        var object = JSONObject()
        object["s"] = .string("x")
        object["n"] = .null
        object["a"] = .array([.bool(true), .bool(false)])
        #expect(parsed("{\"s\":\"x\",\"n\":null,\"a\":[true,false]}") == .object(object))
    }

    // MARK: Escapes

    static let parsedEscapes: [(String, String)] = [
        ("\"\\u00e9\"", "\u{E9}"),
        ("\"\\u00E9\"", "\u{E9}"),
        ("\"\\ud83d\\ude00\"", "\u{1F600}"),
        ("\"\\uD83D\\uDE00\"", "\u{1F600}"),
        ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\u{08}\u{0C}\n\r\t"),
        ("\"\\u0000\"", "\u{0}"),
        ("\"\\u2028\"", "\u{2028}"),
        ("\"a\\nb\\u0041c\"", "a\nbAc"),
        ("\"\\n\u{E9}\\t\u{1F600}x\"", "\n\u{E9}\t\u{1F600}x"),  // escapes between raw UTF-8
        ("\"\u{E9}\u{1F600}\"", "\u{E9}\u{1F600}"),  // raw UTF-8 passes through
        ("\"\u{7F}\"", "\u{7F}"),  // DEL is not a control character for JSON
    ]

    @Test("decodes string escapes, including surrogate pairs", arguments: parsedEscapes)
    func decodesEscapes(_ input: String, _ text: String) {
        #expect(parsed(input) == .string(text))
    }

    static let serializedEscapes: [(String, String)] = [
        ("\"", "\"\\\"\""),
        ("\\", "\"\\\\\""),
        ("/", "\"/\""),
        ("\n\r\t\u{08}\u{0C}", "\"\\n\\r\\t\\b\\f\""),
        ("\u{0}", "\"\\u0000\""),
        ("\u{1}", "\"\\u0001\""),
        ("\u{1F}", "\"\\u001f\""),
        ("\u{0B}", "\"\\u000b\""),
        ("\u{7F}", "\"\u{7F}\""),
        ("\u{2028}", "\"\\u2028\""),
        ("\u{2029}", "\"\\u2029\""),
        ("\u{E9}", "\"\u{E9}\""),
        ("\u{1F600}", "\"\u{1F600}\""),
        ("a\u{1}b", "\"a\\u0001b\""),
    ]

    @Test("escapes quotes, backslashes, control characters and U+2028/U+2029", arguments: serializedEscapes)
    func serialisesEscapes(_ text: String, _ literal: String) {
        #expect(JSONValue.string(text).serialized == literal)
        #expect(JSONValue.quoted(text) == literal)
        #expect(parsed(literal) == .string(text))
    }

    @Test("escapes member names like strings")
    func escapesMemberNames() {
        var object = JSONObject()
        object["a\"\u{1}"] = .number("1")
        #expect(JSONValue.object(object).serialized == "{\"a\\\"\\u0001\":1}")
    }

    // MARK: Refusals

    static let refusals: [(String, Int, String)] = [
        ("", 0, "unexpected end of text"),
        ("   ", 3, "unexpected end of text"),
        ("[1,]", 3, "unexpected character"),
        ("{\"a\":1,}", 7, "expected a member name"),
        ("'a'", 0, "unexpected character"),
        ("{'a':1}", 1, "expected a member name"),
        ("01", 1, "unexpected text after the value"),
        ("-01", 2, "unexpected text after the value"),
        (".5", 0, "unexpected character"),
        ("1.", 2, "expected a digit after '.'"),
        ("1.e3", 2, "expected a digit after '.'"),
        ("+1", 0, "unexpected character"),
        ("-", 1, "expected a digit"),
        ("-a", 1, "expected a digit"),
        ("1e", 2, "expected a digit in the exponent"),
        ("1e+", 3, "expected a digit in the exponent"),
        ("NaN", 0, "unexpected character"),
        ("Infinity", 0, "unexpected character"),
        ("tru", 0, "expected true"),
        ("nul", 0, "expected null"),
        ("fals", 0, "expected false"),
        ("\"abc", 4, "unterminated string"),
        ("\"", 1, "unterminated string"),
        ("\"\\", 2, "unterminated escape"),
        ("\"\\x\"", 3, "unknown escape"),
        ("\"\\u12\"", 3, "expected four hex digits"),
        ("\"\\u12G4\"", 5, "expected four hex digits"),
        ("\"\\ud800\"", 7, "lone high surrogate"),
        ("\"\\ud83dx\"", 7, "lone high surrogate"),
        ("\"\\udc00\"", 7, "lone low surrogate"),
        ("\"\\ude00\\ud83d\"", 7, "lone low surrogate"),
        ("\"\\ud800\\u0041\"", 13, "invalid low surrogate"),
        ("\"\\ud800\\ud800\"", 13, "invalid low surrogate"),
        ("\"a\u{1}b\"", 2, "control character in a string (escape it)"),
        ("\"a\nb\"", 2, "control character in a string (escape it)"),
        ("\"\u{0}\"", 1, "control character in a string (escape it)"),
        ("{} x", 3, "unexpected text after the value"),
        ("1 2", 2, "unexpected text after the value"),
        ("[1 2]", 3, "expected ',' or ']'"),
        ("[1", 2, "unexpected end of text in an array"),
        ("[", 1, "unexpected end of text"),
        ("{\"a\" 1}", 5, "expected ':'"),
        ("{\"a\":}", 5, "unexpected character"),
        ("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"),
        ("{\"a\":1", 6, "unexpected end of text in an object"),
        ("{1:2}", 1, "expected a member name"),
    ]

    @Test("refuses text that is not exactly one JSON value, saying where", arguments: refusals)
    func refuses(_ input: String, _ offset: Int, _ message: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: input) }
        #expect(error?.offset == offset)
        #expect(error?.message == message)
    }

    @Test("describes a refusal with its byte offset")
    func refusalDescription() {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "[1,]") }
        #expect(error?.description == "invalid JSON at byte 3: unexpected character")
    }

    // MARK: Nesting

    @Test("accepts nesting of exactly 256 levels")
    func deepestAccepted() throws {
        let text = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        let value = try JSONValue(parsing: text)
        #expect(value.serialized == text)
    }

    @Test("refuses arrays nested 257 levels deep with an error, not a crash")
    func arraysTooDeep() {
        let text = String(repeating: "[", count: 257) + String(repeating: "]", count: 257)
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.offset == 256)
        #expect(error?.message == "nested more than 256 levels")
    }

    @Test("refuses objects nested 257 levels deep")
    func objectsTooDeep() {
        let text = String(repeating: "{\"a\":", count: 257) + "1" + String(repeating: "}", count: 257)
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.offset == 256 * 5)
        #expect(error?.message == "nested more than 256 levels")
    }

    @Test("refuses a hundred thousand open brackets without exhausting the stack")
    func hugeNesting() {
        let text = String(repeating: "[", count: 100_000)
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.offset == 256)
    }

    @Test("counts depth, not total brackets: many siblings at a shallow depth are fine")
    func siblingsDoNotCountAsDepth() throws {
        let text = "[" + Array(repeating: "[[1]]", count: 1000).joined(separator: ",") + "]"
        let value = try JSONValue(parsing: text)
        #expect(value.serialized == text)
    }

    // MARK: Objects

    @Test("compares objects regardless of member order")
    func objectEqualityIgnoresOrder() {
        #expect(parsed("{\"a\":1,\"b\":2}") == parsed("{\"b\":2,\"a\":1}"))
        #expect(parsed("{\"a\":{\"x\":1,\"y\":2}}") == parsed("{\"a\":{\"y\":2,\"x\":1}}"))
        #expect(parsed("{\"a\":1,\"b\":2}") != parsed("{\"a\":1}"))
        #expect(parsed("{\"a\":1}") != parsed("{\"a\":2}"))
        #expect(parsed("[1,2]") != parsed("[2,1]"))
    }

    @Test("keeps member order: new names go last, replaced ones stay, removed ones go")
    func objectOrder() {
        var object = JSONObject()
        object["b"] = .number("1")
        object["a"] = .number("2")
        object["c"] = .number("3")
        object["b"] = .number("4")
        #expect(object.members.map(\.key) == ["b", "a", "c"])
        #expect(object.count == 3)
        object["a"] = nil
        object["zz"] = nil
        #expect(object.members.map(\.key) == ["b", "c"])
        #expect(object.count == 2)
        object["a"] = .null
        #expect(JSONValue.object(object).serialized == "{\"b\":4,\"c\":3,\"a\":null}")
        #expect(object["a"] == .null)
        #expect(object["missing"] == nil)
    }

    // MARK: Merge patch

    /// RFC 7386, Appendix A, every row: original, patch, result.
    static let rfc7386AppendixA: [(String, String, String)] = [
        ("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"),
        ("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"),
        ("{\"a\":\"b\"}", "{\"a\":null}", "{}"),
        ("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"),
        ("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"),
        ("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"),
        ("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"),
        ("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"),
        ("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"),
        ("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"),
        ("{\"a\":\"foo\"}", "null", "null"),
        ("{\"a\":\"foo\"}", "\"bar\"", "\"bar\""),
        ("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"),
        ("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"),
        ("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"),
    ]

    @Test("applies every merge patch test case of RFC 7386 Appendix A", arguments: rfc7386AppendixA)
    func mergePatchAppendixA(_ target: String, _ patch: String, _ result: String) {
        let merged = parsed(target).merging(patch: parsed(patch))
        #expect(merged == parsed(result))
        #expect(merged.serialized == result)
    }

    @Test("applies the RFC 7386 section 3 example, keeping member order")
    func mergePatchSectionThree() {
        let target = parsed(
            """
            {"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},\
            "tags":["example","sample"],"content":"This will be unchanged"}
            """)
        let patch = parsed(
            """
            {"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}
            """)
        #expect(
            target.merging(patch: patch).serialized
                == """
                {"title":"Hello!","author":{"givenName":"John"},"tags":["example"],\
                "content":"This will be unchanged","phoneNumber":"+01-123-456-7890"}
                """)
    }

    @Test("keeps the target's member order: replaced members stay, new ones go last")
    func mergeKeepsOrder() {
        let merged = parsed("{\"a\":1,\"b\":2}").merging(patch: parsed("{\"a\":null,\"c\":3,\"b\":4}"))
        #expect(merged.serialized == "{\"b\":4,\"c\":3}")
    }

    @Test("replaces a scalar target with an object patch, dropping nulls at every level")
    func mergeOntoScalar() {
        #expect(
            parsed("5").merging(patch: parsed("{\"a\":null,\"b\":{\"c\":null,\"d\":1}}")).serialized
                == "{\"b\":{\"d\":1}}")
        #expect(parsed("null").merging(patch: parsed("{}")).serialized == "{}")
    }

    @Test("an empty object patch changes nothing")
    func emptyPatch() {
        let target = parsed("{\"b\":[1,2],\"a\":{\"x\":1.10}}")
        #expect(target.merging(patch: parsed("{}")).serialized == "{\"b\":[1,2],\"a\":{\"x\":1.10}}")
    }
}
