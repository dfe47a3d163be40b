// Bounded random input for everything Herald parses itself: admin lines, event ids, channel
// names, JSON and merge patches, and the admin line and hub frame decoders fed in random
// chunks. Seeded (SplitMix64, from HubFrameCodecTests.swift) and a few thousand inputs each, so
// the whole suite takes well under a second or two and a failure repeats exactly.
import HeraldProtocol
import NIOCore
import Testing

/// Random input aimed at the parsers' edge cases.
private struct Fuzz {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    mutating func uint64() -> UInt64 { rng.next() }

    mutating func bytes(_ count: ClosedRange<Int>) -> [UInt8] {
        (0..<int(count)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// One code point, weighted toward trouble: quotes, backslashes, CR, LF, tab, NUL, combining
    /// marks, a Prepend character, line separators, emoji, and now and then any scalar at all.
    mutating func scalar() -> Unicode.Scalar {
        switch int(0...9) {
        case 0...2: return Unicode.Scalar(UInt8(int(0x20...0x7E)))
        case 3: return pick(["\"", "'", "\\", " ", "\t"])
        case 4: return pick(["\n", "\r", "\0", "\u{7F}", "\u{1B}", "\u{08}", "\u{0C}"])
        case 5: return pick(["\u{301}", "\u{308}", "\u{20DD}", "\u{600}", "\u{200D}", "\u{FE0F}"])
        case 6: return pick(["\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFD}", "\u{85}", "\u{A0}"])
        case 7: return pick(["\u{E9}", "\u{DF}", "\u{4E2D}", "\u{1F389}", "\u{1F469}", "\u{10FFFF}"])
        default:
            while true {
                if let scalar = Unicode.Scalar(UInt32(int(0...0x10FFFF))) { return scalar }
            }
        }
    }

    mutating func text(_ length: ClosedRange<Int>) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<int(length) { scalars.append(scalar()) }
        return String(scalars)
    }

    /// A text of characters drawn from `alphabet` only.
    mutating func text(from alphabet: [Unicode.Scalar], _ length: ClosedRange<Int>) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<int(length) { scalars.append(pick(alphabet)) }
        return String(scalars)
    }

    /// `bytes` with a few random edits: bit flips, inserted or deleted bytes, a duplicated or
    /// dropped span, a cut end.
    mutating func mutate(_ bytes: [UInt8], rounds: ClosedRange<Int> = 1...4) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<int(rounds) {
            guard !bytes.isEmpty else {
                bytes.append(UInt8.random(in: 0...255, using: &rng))
                continue
            }
            let position = int(0...(bytes.count - 1))
            switch int(0...5) {
            case 0: bytes[position] ^= UInt8(1) << UInt8(int(0...7))
            case 1:
                bytes.insert(pick([0x00, 0x0A, 0x0D, 0x22, 0x27, 0x5C, 0x2D, 0x7B, 0x5B, 0xFF, 0xC3]), at: position)
            case 2: bytes.remove(at: position)
            case 3:
                let end = min(bytes.count, position + int(1...8))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            case 4: bytes.removeSubrange(position..<min(bytes.count, position + int(1...8)))
            default: bytes.removeSubrange(position...)
            }
        }
        return bytes
    }

    /// Splits `bytes` into random chunks: sometimes byte by byte, sometimes a few large pieces.
    mutating func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        let largest = pick([1, 2, 3, 7, 16, 64, 1_000])
        var out: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + int(1...largest))
            out.append(Array(bytes[index..<end]))
            index = end
        }
        return out
    }

    // MARK: JSON

    /// Valid JSON text (RFC 8259) with random whitespace, escapes and number forms.
    mutating func jsonText(depth: Int = 0, keys: [String]? = nil, object: Bool = false) -> String {
        let kind = object ? 5 : depth >= 4 ? int(0...3) : int(0...5)
        switch kind {
        case 0: return pick(["null", "true", "false"])
        case 1: return jsonNumber()
        case 2, 3: return jsonString(keys.map { pick($0) } ?? text(0...8))
        case 4:
            let items = (0..<int(0...4)).map { _ in ws() + jsonText(depth: depth + 1, keys: keys) + ws() }
            return "[" + ws() + items.joined(separator: ",") + "]"
        default:
            let members = (0..<int(0...4)).map { _ in
                let key = keys.map { pick($0) } ?? text(0...6)
                return ws() + jsonString(key) + ws() + ":" + ws() + jsonText(depth: depth + 1, keys: keys) + ws()
            }
            return "{" + ws() + members.joined(separator: ",") + "}"
        }
    }

    mutating func ws() -> String { chance(70) ? "" : pick([" ", "\n", "\t", "\r\n", "  "]) }

    mutating func jsonNumber() -> String {
        var out = chance(30) ? "-" : ""
        out +=
            chance(20) ? "0" : String(int(1...9)) + String((0..<int(0...12)).map { _ in Character(String(int(0...9))) })
        if chance(30) { out += "." + String((0..<int(1...6)).map { _ in Character(String(int(0...9))) }) }
        if chance(20) { out += pick(["e", "E"]) + pick(["", "+", "-"]) + String(int(0...400)) }
        return out
    }

    /// `text` as a JSON string literal, each character written plainly or escaped at random.
    mutating func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += pick(["\\n", "\\u000a", "\\u000A"])
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "/": out += pick(["/", "\\/"])
            default:
                if scalar.value < 0x20 || chance(10) {
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16, uppercase: chance(50))
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    // MARK: Hub frames

    mutating func hubEvent() -> HubEvent {
        HubEvent(sequence: uint64(), channel: text(0...6), name: text(0...5), data: text(0...20))
    }

    mutating func hubFrame() -> HubFrame {
        switch int(0...15) {
        case 0:
            return .hello(
                version: UInt16(int(0...0xFFFF)), workerID: text(0...8), epoch: text(0...10), lastSequence: uint64())
        case 1: return .welcome(epoch: text(0...10), sequence: uint64(), resnapshot: chance(50))
        case 2:
            return .subscribe(
                request: uint64(), channels: (0..<int(0...4)).map { _ in text(0...6) }, resumeAfter: uint64())
        case 3:
            return .subscribed(
                request: uint64(), sequence: uint64(), replay: (0..<int(0...3)).map { _ in hubEvent() },
                snapshots: (0..<int(0...3)).map { _ in ChannelSnapshot(channel: text(0...6), state: text(0...12)) })
        case 4: return .event(hubEvent())
        case 5:
            return .publish(
                request: uint64(),
                (0..<int(0...3)).map { _ in
                    PublishRequest(channel: text(0...6), name: text(0...5), data: text(0...20), merge: chance(50))
                })
        case 6:
            return .published(
                request: uint64(), chance(50) ? .accepted(sequence: uint64()) : .refused(text(0...20)))
        case 7: return .statsRequest(request: uint64())
        case 8: return .statsReply(request: uint64(), json: text(0...20))
        case 9: return .hubStatsRequest(request: uint64())
        case 10: return .hubStatsReply(request: uint64(), json: text(0...20))
        case 11:
            return .drain(
                retryMilliseconds: UInt32(truncatingIfNeeded: uint64()),
                jitterMilliseconds: UInt32(truncatingIfNeeded: uint64()))
        case 12: return .presenceRequest(request: uint64(), channel: text(0...6))
        case 13: return .presenceReply(request: uint64(), json: text(0...20))
        case 14: return .stateEvent(hubEvent())
        default: return .failure(message: text(0...20))
        }
    }
}

private func scalars(_ words: [String]) -> [[Unicode.Scalar]] { words.map { Array($0.unicodeScalars) } }

private func encodedFrame(_ frame: HubFrame) -> [UInt8] {
    var buffer = ByteBuffer()
    frame.encode(into: &buffer)
    return Array(buffer.readableBytesView)
}

/// Runs `chunks` through `decoder` as `ByteToMessageHandler` would (decode until it has
/// nothing, after every chunk; `decodeLast` at the end): what came out, and the error if any.
private func feed<Decoder: NIOSingleStepByteToMessageDecoder>(_ decoder: inout Decoder, _ chunks: [[UInt8]]) -> (
    out: [Decoder.InboundOut], error: (any Error)?
) {
    var buffer = ByteBuffer()
    var out: [Decoder.InboundOut] = []
    do {
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let item = try decoder.decode(buffer: &buffer) { out.append(item) }
        }
        while let item = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { out.append(item) }
    } catch {
        return (out, error)
    }
    return (out, nil)
}

/// The event id rule, written out independently of `EventID`: at most 40 bytes, an epoch of 1
/// to 16 bytes from `0-9 a-z`, the first `-`, then 1 or more decimal digits within UInt64.
private func eventIDRule(_ text: String) -> (epoch: String, sequence: UInt64)? {
    let bytes = Array(text.utf8)
    guard bytes.count <= 40, let dash = bytes.firstIndex(of: UInt8(ascii: "-")) else { return nil }
    let epoch = bytes[..<dash]
    let digits = bytes[(dash + 1)...]
    guard (1...16).contains(epoch.count),
        epoch.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }),
        !digits.isEmpty, digits.allSatisfy({ (0x30...0x39).contains($0) })
    else { return nil }
    var value: UInt64 = 0
    for digit in digits {
        let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - 0x30))
        if overflow1 || overflow2 { return nil }
        value = sum
    }
    return (String(decoding: epoch, as: UTF8.self), value)
}

/// `value` without null members in objects reached through objects: what merging it as a
/// patch into `{}` gives (arrays are replaced whole, so nulls inside them stay).
private func strippingNullMembers(_ value: JSONValue) -> JSONValue {
    guard case .object(let object) = value else { return value }
    var out = JSONObject()
    for (key, member) in object.members where member != .null { out[key] = strippingNullMembers(member) }
    return .object(out)
}

@Suite("Fuzzing: random and mutated input to what Herald parses itself")
struct FuzzTests {
    // MARK: Admin lines

    static let validAdminLines = [
        #"publish news "a \"quoted\" word" --event notice"#,
        #"state set rooms '{"Aurora":{"busy":true}}'"#,
        #"publish rooms "line one\nline two\r\n\ttab \\ backslash" --merge"#,
        "drain worker-1 --retry 3000 --jitter 100",
        #"tail "*""#,
        #"publish c x\ y\"z 'single \ quoted'"#,
    ]

    @Test("AdminLine.split refuses or splits 3,000 random and mutated lines, and its words survive join and split")
    func adminSplitNeverCrashes() {
        var fuzz = Fuzz(seed: 0xAD_0001)
        var split = 0
        var refused = 0
        for index in 0..<3_000 {
            let line: String
            switch index % 3 {
            case 0: line = String(decoding: fuzz.bytes(0...60), as: UTF8.self)
            case 1: line = fuzz.text(0...40)
            default:
                line = String(decoding: fuzz.mutate(Array(fuzz.pick(Self.validAdminLines).utf8)), as: UTF8.self)
            }
            do {
                let words = try AdminLine.split(line)
                split += 1
                // Whatever was accepted has one canonical spelling that gives the same words back.
                let again = try AdminLine.split(AdminLine.join(words))
                #expect(scalars(again) == scalars(words), "words of \(line.debugDescription) changed")
            } catch {
                refused += 1
            }
        }
        #expect(split > 500)
        #expect(refused > 100)
    }

    @Test("split(join(words)) gives back 2,000 random lists of unicode words exactly, and join makes one line")
    func adminJoinSplitRoundTrip() throws {
        var fuzz = Fuzz(seed: 0xAD_0002)
        for _ in 0..<2_000 {
            let words = (0..<fuzz.int(0...6)).map { _ in fuzz.text(0...12) }
            let line = AdminLine.join(words)
            #expect(!line.unicodeScalars.contains("\n") && !line.unicodeScalars.contains("\r"))
            let back = try AdminLine.split(line)
            #expect(scalars(back) == scalars(words), "\(words.map(\.debugDescription)) came back as \(back)")
        }
    }

    @Test("AdminLineDecoder in random chunks gives exactly the lines, then the first refusal, for 400 streams")
    func adminLineDecoderChunkings() {
        var fuzz = Fuzz(seed: 0xAD_0003)
        let limit = 48
        var refusals = 0
        for _ in 0..<400 {
            var bytes: [UInt8] = []
            var expected: [String] = []
            var expectedError: AdminLineError?
            let lineCount = fuzz.int(0...8)
            for index in 0..<lineCount {
                // Text without LF, sometimes ending in CR; now and then too long or not UTF-8.
                var content: [UInt8]
                switch fuzz.int(0...19) {
                case 0: content = Array(repeating: UInt8(ascii: "x"), count: fuzz.int((limit - 1)...(limit + 3)))
                case 1: content = fuzz.bytes(1...20).map { $0 == 0x0A ? 0xFF : $0 }
                default:
                    content = Array(fuzz.text(0...16).utf8).filter { $0 != 0x0A }
                    if fuzz.chance(10) { content.append(0x0D) }
                }
                let last = index == lineCount - 1
                let ending: [UInt8] = last && fuzz.chance(30) ? [] : fuzz.chance(50) ? [0x0A] : [0x0D, 0x0A]
                bytes += content + ending
                guard expectedError == nil else { continue }
                var line = content + (ending == [0x0D, 0x0A] ? [0x0D] : [])
                if ending.isEmpty {
                    // A last line without LF: judged on all its bytes, then one CR is dropped.
                    if line.isEmpty { continue }  // nothing after the last LF: no line
                    if line.count > limit {
                        expectedError = .tooLong(limit: limit)
                        continue
                    }
                    if line.last == 0x0D { line.removeLast() }
                } else {
                    if line.last == 0x0D { line.removeLast() }
                    if line.count > limit {
                        expectedError = .tooLong(limit: limit)
                        continue
                    }
                }
                guard let text = String(validating: line, as: UTF8.self) else {
                    expectedError = .invalidUTF8
                    continue
                }
                expected.append(text)
            }
            var decoder = AdminLineDecoder(maximumLength: limit)
            let (lines, error) = feed(&decoder, fuzz.chunks(bytes))
            #expect(scalars(lines) == scalars(expected))
            #expect(error as? AdminLineError == expectedError, "stream \(bytes)")
            if expectedError != nil { refusals += 1 }
        }
        #expect(refusals > 20)
    }

    // MARK: Event ids

    @Test("EventID(parsing:) accepts exactly the ids the rule allows among 4,000 random and mutated texts")
    func eventIDs() {
        var fuzz = Fuzz(seed: 0xE1_0001)
        let idAlphabet: [Unicode.Scalar] = Array("0123456789abcdefxyz-+ AZ.\u{301}\u{FF10}".unicodeScalars)
        var parsed = 0
        for index in 0..<4_000 {
            let text: String
            switch index % 4 {
            case 0: text = fuzz.text(from: idAlphabet, 0...24)
            case 1:
                let valid =
                    "\(fuzz.text(from: Array("0123456789abcdefghijklmnopqrstuvwxyz".unicodeScalars), 1...16))-\(fuzz.uint64() >> UInt64(fuzz.int(0...63)))"
                text = String(decoding: fuzz.mutate(Array(valid.utf8), rounds: 0...2), as: UTF8.self)
            case 2: text = String(decoding: fuzz.bytes(0...44), as: UTF8.self)
            default:
                // Around the edges: 40 bytes, UInt64.max and one more, leading zeros, 16- and 17-byte epochs.
                text = fuzz.pick([
                    "a-18446744073709551615", "a-18446744073709551616", "a-00000000000000000000000000000000000001",
                    "a-000000000000000000000000000000000000001", "0123456789abcdef-1", "0123456789abcdefg-1",
                    "\(String(repeating: "z", count: 16))-\(UInt64.max)",
                ])
            }
            let id = EventID(parsing: text)
            let rule = eventIDRule(text)
            #expect(id?.epoch.rawValue == rule?.epoch && id?.sequence == rule?.sequence, "\(text.debugDescription)")
            // The same through a Substring, as the worker sees query values.
            #expect(EventID(parsing: text[...]) == id)
            if let id {
                parsed += 1
                #expect(id.description == "\(id.epoch.rawValue)-\(id.sequence)")
                #expect(EventID(parsing: id.description) == id)
            }
        }
        #expect(parsed > 1_000)
    }

    // MARK: Channel names

    @Test("ChannelName accepts exactly the names the rule allows among 4,000 random texts, with the exact reason")
    func channelNames() {
        var fuzz = Fuzz(seed: 0xC4_0001)
        let allowed = Array("abcxyzABCXYZ0189_-.".unicodeScalars)
        let troublesome = Array(" /\\%:\0\n\t\u{E9}\u{301}\u{1F389}\u{FF21}+*".unicodeScalars)
        var accepted = 0
        for _ in 0..<4_000 {
            let length = fuzz.pick([0...3, 60...70, 0...70])
            var name = fuzz.text(from: allowed, length)
            if fuzz.chance(40), !name.isEmpty {
                var scalars = Array(name.unicodeScalars)
                scalars[fuzz.int(0...(scalars.count - 1))] = fuzz.chance(20) ? fuzz.scalar() : fuzz.pick(troublesome)
                name = String(String.UnicodeScalarView(scalars))
            }
            // The rule, independently: 1 to 64 bytes, every byte from A-Z a-z 0-9 _ - .
            let isAllowedByte: (UInt8) -> Bool = { byte in
                (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                    || byte == 0x5F || byte == 0x2D || byte == 0x2E
            }
            let ruleAccepts = (1...64).contains(name.utf8.count) && name.utf8.allSatisfy(isAllowedByte)
            do {
                let channel = try ChannelName(validating: name)
                #expect(ruleAccepts, "accepted \(name.debugDescription)")
                #expect(channel.rawValue == name)
                accepted += 1
            } catch {
                #expect(!ruleAccepts, "refused \(name.debugDescription): \(error)")
                let reason: ChannelNameError =
                    name.isEmpty
                    ? .empty
                    : name.utf8.count > 64
                        ? .tooLong(name.utf8.count)
                        : .invalidCharacter(
                            name.unicodeScalars.first { !($0.isASCII && isAllowedByte(UInt8($0.value))) }!)
                #expect(error == reason)
            }
        }
        #expect(accepted > 1_000)
    }

    // MARK: JSON

    @Test("every one of 1,500 random valid JSON texts parses, and re-serialises to text that parses to an equal value")
    func validJSONRoundTrips() throws {
        var fuzz = Fuzz(seed: 0x15_0001)
        for _ in 0..<1_500 {
            let text = fuzz.ws() + fuzz.jsonText() + fuzz.ws()
            let value = try JSONValue(parsing: text)
            let serialized = value.serialized
            let again = try JSONValue(parsing: serialized)
            #expect(again == value, "\(text.debugDescription)")
            #expect(again.serialized == serialized, "serialising is not stable for \(text.debugDescription)")
        }
    }

    @Test(
        "3,000 mutated and random JSON texts either parse and round-trip or throw an error with an offset inside the text"
    )
    func hostileJSON() {
        var fuzz = Fuzz(seed: 0x15_0002)
        var parsedCount = 0
        var refused = 0
        for index in 0..<3_000 {
            let bytes =
                index % 3 == 0 ? fuzz.bytes(0...40) : fuzz.mutate(Array(fuzz.jsonText().utf8), rounds: 1...3)
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let value = try JSONValue(parsing: text)
                parsedCount += 1
                #expect((try? JSONValue(parsing: value.serialized)) == value, "\(text.debugDescription)")
            } catch {
                refused += 1
                #expect(
                    (0...text.utf8.count).contains(error.offset), "offset \(error.offset) for \(text.debugDescription)")
            }
        }
        #expect(parsedCount > 300)
        #expect(refused > 1_000)
    }

    @Test(
        "10,000 levels of nesting throw an error instead of overflowing the stack",
        arguments: [
            String(repeating: "[", count: 10_000),
            String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000),
            String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000),
            String(repeating: #"[{"k":"#, count: 5_000),
            " " + String(repeating: "[ ", count: 10_000) + "null",
        ])
    func deepNesting(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test("merge patches of 2,000 random parsed documents obey RFC 7386: twice is once, {} changes no object")
    func mergePatchIdentities() throws {
        var fuzz = Fuzz(seed: 0x15_0003)
        let keys = ["a", "b", "c", "", "\u{E9}"]  // few names, so patches meet the members of targets
        var nonTrivial = 0
        for _ in 0..<2_000 {
            // Mostly objects, since that is where merging does more than replace.
            let target = try JSONValue(parsing: fuzz.jsonText(keys: keys, object: fuzz.chance(70)))
            let patch = try JSONValue(parsing: fuzz.jsonText(keys: keys, object: fuzz.chance(70)))
            let once = target.merging(patch: patch)
            #expect(once.merging(patch: patch) == once, "not idempotent: \(target.serialized) + \(patch.serialized)")
            let empty = JSONValue.object(JSONObject())
            if case .object = target {
                #expect(target.merging(patch: empty) == target)
            } else {
                #expect(target.merging(patch: empty) == empty)
            }
            if case .object(let patchObject) = patch {
                // Into nothing, a patch is itself without its null members.
                #expect(empty.merging(patch: patch) == strippingNullMembers(patch))
                #expect(JSONValue.null.merging(patch: patch) == strippingNullMembers(patch))
                guard case .object(let result) = once else {
                    Issue.record("an object patch gave a non-object")
                    continue
                }
                for (key, value) in patchObject.members {
                    if value == .null {
                        #expect(result[key] == nil, "member \(key) should be removed")
                    } else {
                        #expect(result[key] != nil, "member \(key) should be set")
                    }
                }
                if case .object(let targetObject) = target, targetObject.count > 0, patchObject.count > 0 {
                    nonTrivial += 1
                }
            } else {
                #expect(once == patch, "a non-object patch replaces the target whole")
            }
            #expect((try? JSONValue(parsing: once.serialized)) == once)
        }
        #expect(nonTrivial > 100)
    }

    // MARK: Hub frames

    @Test("HubFrameDecoder in random chunks gives 300 random frame streams back exactly, up to a malformed frame")
    func hubFrameDecoderChunkings() {
        var fuzz = Fuzz(seed: 0xF4_0001)
        for _ in 0..<300 {
            let frames = (0..<fuzz.int(0...6)).map { _ in fuzz.hubFrame() }
            var bytes = frames.flatMap(encodedFrame)
            var expectedError: HubFrameError?
            switch fuzz.int(0...4) {
            case 0:
                bytes += [0, 0, 0, 2, 0xEE, 0]
                expectedError = .unknownType(0xEE)
            case 1:
                bytes += [0xFF, 0xFF, 0xFF, 0xFF, 1]
                expectedError = .frameTooLarge(length: Int(UInt32.max), limit: 1 << 16)
            case 2:
                bytes += [0, 0, 0, 3, 7, 0, 0]  // a publish that ends inside its request number
                expectedError = .truncated(type: 7)
            default: break
            }
            if expectedError != nil { bytes += encodedFrame(fuzz.hubFrame()) }  // after the error: never decoded
            var decoder = HubFrameDecoder(maximumFrameLength: 1 << 16)
            let (decoded, error) = feed(&decoder, fuzz.chunks(bytes))
            #expect(decoded == frames)
            #expect(error as? HubFrameError == expectedError)
        }
    }
}
