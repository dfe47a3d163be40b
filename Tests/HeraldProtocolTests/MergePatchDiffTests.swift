// The merge patch between two states: applying it gives the new state byte for byte, and
// where RFC 7386 cannot say it (a null member to keep, members reordered) there is none.
import HeraldProtocol
import Testing

@Suite struct MergePatchDiffTests {
    static let cases: [(String, String, String?)] = [
        (#"{"a":1,"b":2}"#, #"{"a":1,"b":3}"#, #"{"b":3}"#),
        (#"{"a":1,"b":2}"#, #"{"a":1}"#, #"{"b":null}"#),
        (#"{"a":1}"#, #"{"a":1,"c":{"d":[1,null]}}"#, #"{"c":{"d":[1,null]}}"#),
        (#"{"r":{"x":{"busy":false,"by":""}}}"#, #"{"r":{"x":{"busy":true,"by":"ana"}}}"#, #"{"r":{"x":{"busy":true,"by":"ana"}}}"#),
        (#"{"r":{"x":1,"y":2}}"#, #"{"r":{"x":1,"y":5}}"#, #"{"r":{"y":5}}"#),
        (#"{"a":1}"#, #"{"a":1}"#, "{}"),
        (#"{"a":{"b":1}}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"{"a":[1]}"#, #"{"a":{"b":1}}"#, #"{"a":{"b":1}}"#),
        (#"{}"#, #"42"#, "42"),
        (#"42"#, #"{"a":1}"#, #"{"a":1}"#),
        (#"{"a":1}"#, "null", "null"),
        // No merge patch keeps a null member: in a patch it removes the member.
        (#"{"a":1}"#, #"{"a":null}"#, nil),
        (#"{"a":1}"#, #"{"a":1,"b":{"c":null}}"#, nil),
        ("42", #"{"a":null}"#, nil),
        (#"{"a":{"b":1}}"#, #"{"a":{"b":1,"c":null}}"#, nil),
        // Members of an existing object in another order: a patch keeps the old order.
        (#"{"a":1,"b":2}"#, #"{"b":2,"a":1}"#, nil),
    ]

    @Test(arguments: cases)
    func patchBetweenStates(_ old: String, _ new: String, _ expected: String?) throws {
        let before = try JSONValue(parsing: old)
        let after = try JSONValue(parsing: new)
        let patch = JSONValue.mergePatch(from: before, to: after)
        #expect(patch?.serialized == expected)
        if let patch { #expect(before.merging(patch: patch).serialized == after.serialized) }
    }

    @Test func randomStatesRoundTrip() throws {
        var generator = SplitMix64(seed: 7)
        let leaves: [JSONValue] = [.number("1"), .number("2"), .string("x"), .bool(true), .array([.null]), .null]
        func document(_ depth: Int) -> JSONValue {
            var object = JSONObject()
            for key in ["a", "b", "c", "d"] where Int.random(in: 0..<3, using: &generator) > 0 {
                object[key] =
                    depth > 0 && Bool.random(using: &generator)
                    ? document(depth - 1) : leaves[Int.random(in: 0..<leaves.count, using: &generator)]
            }
            return .object(object)
        }
        var expressed = 0
        for _ in 0..<500 {
            let old = document(3)
            let new = document(3)
            guard let patch = JSONValue.mergePatch(from: old, to: new) else { continue }
            expressed += 1
            #expect(old.merging(patch: patch).serialized == new.serialized, "\(old.serialized) → \(new.serialized)")
        }
        #expect(expressed > 50, "only \(expressed) of 500 pairs had a patch")
    }
}
