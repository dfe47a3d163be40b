// NDJSON publish batches: what a line may hold, how each field becomes a publish, and the exact
// refusal (with its line number) for every kind of bad line or batch.
import HeraldProtocol
import Testing

@Suite("Publish batches (NDJSON)")
struct PublishBatchTests {
    private func decode(_ text: String, maxEvents: Int = 10, maxDataBytes: Int = 100) -> Result<
        [PublishRequest], PublishBatch.Refusal
    > {
        PublishBatch.decode(text, maxEvents: maxEvents, maxDataBytes: maxDataBytes)
    }

    @Test("turns each line into a publish: string data as its text, other JSON compact, event and merge optional")
    func decodesLines() throws {
        let text = """
            {"channel":"a","data":"hello\\nworld"}
            {"channel":"b","data":{ "x" : [1, 2.50] },"merge":true,"event":"patch"}\r
            {"event":"n","data":null,"channel":"c","merge":false}

            """
        let requests = try decode(text).get()
        #expect(
            requests == [
                PublishRequest(channel: "a", name: "delta", data: "hello\nworld", merge: false),
                PublishRequest(channel: "b", name: "patch", data: #"{"x":[1,2.50]}"#, merge: true),
                PublishRequest(channel: "c", name: "n", data: "null", merge: false),
            ])
    }

    static let badLines: [(String, String)] = [
        ("", "empty line (one JSON object per line)"),
        ("[1]", "a line must be a JSON object"),
        ("{", "invalid JSON at byte"),
        (#"{"data":1}"#, "\"channel\" must be a string"),
        (#"{"channel":1,"data":1}"#, "\"channel\" must be a string"),
        (#"{"channel":"a"}"#, "\"data\" is missing"),
        (#"{"channel":"a","data":1,"event":2}"#, "\"event\" must be a string"),
        (#"{"channel":"a","data":1,"merge":"yes"}"#, "\"merge\" must be true or false"),
        (#"{"channel":"a","data":"{}","merge":true}"#, "\"merge\": true needs \"data\" to be a JSON object"),
        (#"{"channel":"a","data":[1],"merge":true}"#, "\"merge\": true needs \"data\" to be a JSON object"),
        (#"{"channel":"a","data":1,"extra":1}"#, "unknown field \"extra\""),
        (#"{"channel":"bad name","data":1}"#, "invalid channel name"),
        (#"{"channel":"a","data":1,"event":"init"}"#, "init is reserved"),
        (#"{"channel":"a","data":"\#(String(repeating: "x", count: 101))"}"#, "exceeds the limit of 100"),
    ]

    @Test("refuses a bad line with its number and what was wrong, whatever line it is", arguments: badLines)
    func refusesBadLine(line: String, message: String) {
        let good = #"{"channel":"a","data":1}"#
        let refusal = decode([good, good, line, good].joined(separator: "\n")).failure
        #expect(refusal?.line == 3)
        #expect(refusal?.description.hasPrefix("line 3: ") == true, "\(String(describing: refusal))")
        #expect(refusal?.message.contains(message) == true, "\(String(describing: refusal))")
    }

    @Test("refuses an empty batch and one with too many events, naming the limit")
    func refusesWholeBatch() {
        #expect(decode("").failure?.description == "the batch holds no events (one JSON object per line)")
        #expect(decode("\n").failure?.line == 1)
        let eleven = String(repeating: "{\"channel\":\"a\",\"data\":1}\n", count: 11)
        #expect(decode(eleven).failure?.description == "the batch holds 11 events (at most 10 per batch)")
        #expect((try? decode(eleven, maxEvents: 11).get())?.count == 11)
    }

    @Test("writes the ids answer as a JSON document, with the repeated lines when there are any")
    func idsDocument() {
        #expect(PublishBatch.idsDocument(["k3j:1", "k3j:2"]) == #"{"ids":["k3j:1","k3j:2"]}"#)
        #expect(PublishBatch.idsDocument([]) == #"{"ids":[]}"#)
        #expect(
            PublishBatch.idsDocument(["k3j:1", "k3j:2"], repeatedLines: [2]) == #"{"ids":["k3j:1","k3j:2"],"repeated":[2]}"#)
    }

    @Test("a line's key is its idempotency key; a bad key, a non-string key or one key on two lines is refused")
    func keys() {
        let batch = try? decode(#"{"channel":"a","data":1,"key":"k-1"}"# + "\n" + #"{"channel":"a","data":2}"#).get()
        #expect(batch?.map(\.key) == ["k-1", nil])
        #expect(
            decode(#"{"channel":"a","data":1,"key":"a b"}"#).failure?.description
                == "line 1: invalid idempotency key: 1 to 255 visible ASCII characters (no spaces)")
        #expect(
            decode(#"{"channel":"a","data":1,"key":7}"#).failure?.description
                == #"line 1: "key" must be a string (an idempotency key)"#)
        #expect(
            decode(#"{"channel":"a","data":1,"key":"k"}"# + "\n" + #"{"channel":"b","data":1,"key":"k"}"#).failure?
                .description == #"line 2: idempotency key "k" is already on line 1"#)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
