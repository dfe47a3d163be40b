// Event ids and epochs: what parses, what prints, and that garbage always gives nil.
import HeraldProtocol
import Testing

@Suite("Event ids and epochs")
struct EventIDTests {
    static let roundTrips: [(String, UInt64)] = [
        ("a", 0),
        ("z", 1),
        ("k3j9x2mq0a", 1042),
        ("0123456789abcdef", UInt64.max),
        ("0", 9_007_199_254_740_993),
    ]

    @Test("prints as epoch-sequence and parses back to the same id", arguments: roundTrips)
    func roundTrip(_ epochText: String, _ sequence: UInt64) throws {
        let epoch = try #require(Epoch(epochText))
        let id = EventID(epoch: epoch, sequence: sequence)
        #expect(id.description == "\(epochText)-\(sequence)")
        let parsed = try #require(EventID(parsing: id.description))
        #expect(parsed == id)
        #expect(parsed.epoch.rawValue == epochText)
        #expect(parsed.sequence == sequence)
    }

    @Test("parses the documented example into its parts")
    func parsesExample() throws {
        let id = try #require(EventID(parsing: "k3j9x2mq0a-1042"))
        #expect(id.epoch.rawValue == "k3j9x2mq0a")
        #expect(id.epoch.description == "k3j9x2mq0a")
        #expect(id.sequence == 1042)
    }

    @Test("parses a substring as well as a string")
    func parsesSubstring() throws {
        let header = "Last-Event-ID: ab-12"
        let value = header[header.index(header.startIndex, offsetBy: 15)...]
        #expect(value == "ab-12")
        let id = try #require(EventID(parsing: value))
        #expect(id.description == "ab-12")
    }

    static let garbage: [String] = [
        "", "-", "abc", "abc-", "-5", "ABC-1", "Abc-1", "a-b", "a--1", "a-1x", "a- 1", "a-+1",
        "a-18446744073709551616",
        "a-99999999999999999999",
        String(repeating: "a", count: 17) + "-1",
        String(repeating: "a", count: 10_000),
        "a-" + String(repeating: "1", count: 9_998),
        "a--5", "a-\u{2212}5", "-a-1",
        "a-1-2", " a-1", "a-1 ", "a-1\n", "a-1\r\n", "a\0-1", "a-1\0",
        "a_b-1", "a.b-1", "\u{E9}-1",
        "a-\u{FF11}", "a-\u{0661}",
        "a-0x10", "a-1e3", "a-1.0",
    ]

    @Test("gives nil for anything that is not exactly epoch-decimal", arguments: garbage)
    func garbageIsNil(_ text: String) {
        #expect(EventID(parsing: text) == nil)
    }

    @Test("refuses ids longer than 40 bytes unread, even ones that would parse")
    func lengthLimit() throws {
        // Sequence digits with leading zeros still parse, which makes the limit observable.
        let forty = "0123456789abcdef-" + String(repeating: "0", count: 22) + "9"
        #expect(forty.utf8.count == 40)
        let id = try #require(EventID(parsing: forty))
        #expect(id.sequence == 9)
        #expect(EventID(parsing: "0" + forty) == nil)
        #expect(EventID(parsing: "a-" + String(repeating: "0", count: 38) + "9") == nil)
    }

    static let epochs: [(String, Bool)] = [
        ("0", true), ("z", true), ("0123456789abcdef", true), ("k3j9x2mq0a", true),
        ("", false), ("0123456789abcdefg", false), ("A", false), ("a-b", false), ("a b", false),
        ("\u{E9}", false), ("a\n", false), ("_", false),
    ]

    @Test("accepts epochs of 1 to 16 characters from 0-9 a-z only", arguments: epochs)
    func epochRule(_ text: String, _ valid: Bool) {
        let epoch = Epoch(text)
        #expect((epoch != nil) == valid)
        if let epoch { #expect(epoch.rawValue == text) }
    }

    @Test("makes random epochs of 10 characters from 0-9 a-z that differ between calls")
    func randomEpoch() throws {
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyz")
        let first = Epoch.random()
        let second = Epoch.random()
        for epoch in [first, second] {
            #expect(epoch.rawValue.count == 10)
            #expect(epoch.rawValue.utf8.count == 10)
            #expect(epoch.rawValue.allSatisfy { allowed.contains($0) })
            #expect(Epoch(epoch.rawValue) == epoch)
        }
        #expect(first != second)
    }

    @Test("uses every character of the epoch alphabet over many random epochs")
    func randomEpochAlphabet() {
        var seen = Set<Character>()
        for _ in 0..<200 { seen.formUnion(Epoch.random().rawValue) }
        #expect(seen == Set("0123456789abcdefghijklmnopqrstuvwxyz"))
    }
}
