// --cors-origin reaches every answer a worker writes: an event stream's head, a long poll's
// answer (which once always said `*`) and short answers; streams and polls are marked
// `no-cache, no-transform` so that no proxy compresses or holds them, short answers `no-store`.
import Foundation
import HeraldClient
import Testing

extension LiveSuites {
    @Suite("CORS and caching headers")
    struct CORSLiveTests {
        static let origin = "https://app.example.org"

        @Test("the configured CORS origin on streams, polls and short answers, with their caching rules")
        func configuredOriginEverywhere() async throws {
            let environment = ["HERALD_WORKER_ARGS": "--cors-origin \(Self.origin)"]
            try await LiveStack.with(workers: 1, environment: environment) { stack in
                let stream = try await StreamProbe(port: stack.port, path: "/stream/cors")
                let head = try await stream.head()
                #expect(head.status == 200)
                #expect(head.headers["access-control-allow-origin"] == Self.origin)
                #expect(head.headers["cache-control"] == "no-cache, no-transform")
                await stream.close()

                // A poll without an id is answered at once, with an init.
                let poll = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/poll/cors")
                #expect(poll.status == 200)
                #expect(poll.body.contains("\"event\":\"init\""))
                #expect(poll.headers["access-control-allow-origin"] == Self.origin, "poll: \(poll.headers)")
                #expect(poll.headers["cache-control"] == "no-cache, no-transform")

                let missing = try await HTTPExchange.send(port: stack.port, method: .GET, path: "/nothing-here")
                #expect(missing.status == 404)
                #expect(missing.headers["access-control-allow-origin"] == Self.origin)
                #expect(missing.headers["cache-control"] == "no-store")
            }
        }
    }
}
