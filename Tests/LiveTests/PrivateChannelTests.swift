// Private channels through the real path: nginx, a hub and two workers started by deploy/run
// with HERALD_SUBSCRIBER_KEY and `--private-channels private.*`; tokens signed with jwt-kit.
import Foundation
import HeraldClient
import JWTKit
import Testing

extension LiveSuites {
    @Suite("Private channels")
    struct PrivateChannelTests {
        static let key = "live-test-subscriber-key-0123456789abcdef"
        static let environment = [
            "HERALD_SUBSCRIBER_KEY": key,
            "HERALD_WORKER_ARGS": "--private-channels private.*",
        ]

        /// The claims of a subscriber token.
        struct Claims: JWTPayload {
            var channels: [String]
            var exp: ExpirationClaim
            var sub: SubjectClaim

            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }

        static func token(_ channels: [String], key: String = key, expiresIn seconds: Double = 300) async throws
            -> String
        {
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: key), digestAlgorithm: .sha256)
            return try await keys.sign(
                Claims(
                    channels: channels, exp: ExpirationClaim(value: Date().addingTimeInterval(seconds)),
                    sub: "live-test"))
        }

        static func get(_ stack: LiveStack, _ path: String, headers: [(String, String)] = []) async throws
            -> HTTPResult
        {
            try await HTTPExchange.send(port: stack.port, method: .GET, path: path, headers: headers)
        }

        @Test("a stream or poll on a private channel needs a token that names it; public channels do not")
        func privateChannelsNeedATokenThroughNginx() async throws {
            try await LiveStack.with(environment: Self.environment) { stack in
                // No token: 401 from the worker, through nginx, with a challenge and one line of text.
                let missing = try await Self.get(stack, "/stream/private.a")
                #expect(missing.status == 401)
                #expect(missing.headers["www-authenticate"] == "Bearer")
                #expect(missing.body.hasPrefix("missing subscriber token: channel private.a is private"))
                #expect(missing.body.split(separator: "\n").count == 1)

                // A valid token in the query (EventSource cannot set headers): the stream opens.
                let token = try await Self.token(["private.a"])
                let stream = try await StreamProbe(port: stack.port, path: "/stream/private.a?token=\(token)")
                let head = try await stream.head()
                #expect(head.status == 200)
                #expect(head.headers["content-type"]?.hasPrefix("text/event-stream") == true)
                #expect(try await stream.nextEvent().type == "init")
                let published = try stack.heraldctl(["publish", "private.a", "for token holders"])
                #expect(published.status == 0)
                let event = try await stream.nextEvent()
                #expect(event.data == "for token holders")
                #expect(event.lastEventId == published.output.trimmingCharacters(in: .whitespacesAndNewlines))
                await stream.close()

                // The same token in the header works too.
                let viaHeader = try await StreamProbe(
                    port: stack.port, path: "/stream/private.a", headers: [("Authorization", "Bearer \(token)")])
                #expect(try await viaHeader.head().status == 200)
                #expect(try await viaHeader.nextEvent().type == "init")
                await viaHeader.close()

                // A token for another channel, with another key, or expired: 401, the token never echoed.
                let refusals = [
                    (try await Self.token(["private.b"]), "channel private.a is not in the subscriber token"),
                    (try await Self.token(["private.a"], key: String(Self.key.reversed())), "bad signature"),
                    (try await Self.token(["private.a"], expiresIn: -10), "subscriber token expired"),
                ]
                for (wrong, reason) in refusals {
                    let refused = try await Self.get(stack, "/stream/private.a?token=\(wrong)")
                    #expect(refused.status == 401)
                    #expect(refused.headers["www-authenticate"] == #"Bearer error="invalid_token""#)
                    #expect(refused.body.hasPrefix(reason), "\(refused.body)")
                    #expect(!refused.body.contains(wrong))
                }

                // Long polls follow the same rule.
                #expect(try await Self.get(stack, "/poll/private.a").status == 401)
                #expect(try await Self.get(stack, "/poll/private.a?token=\(refusals[0].0)").status == 401)
                let poll = try await Self.get(stack, "/poll/private.a?token=\(token)")
                #expect(poll.status == 200)
                #expect(poll.body.contains(#""event":"init""#))

                // A multi-channel stream needs every private channel covered, public ones need nothing.
                let partly = try await Self.get(
                    stack, "/stream?channel=rooms&channel=private.a&channel=private.b&token=\(token)")
                #expect(partly.status == 401)
                #expect(partly.body.hasPrefix("channel private.b is not in the subscriber token"))
                let open = try await StreamProbe(port: stack.port, path: "/stream/rooms")
                #expect(try await open.head().status == 200)
                #expect(try await open.nextEvent().type == "init")
                await open.close()
                let mixed = try await StreamProbe(
                    port: stack.port, path: "/stream?channel=rooms&channel=private.a&token=\(token)")
                #expect(try await mixed.head().status == 200)
                #expect(try await mixed.nextEvent().type.hasSuffix(":init"))
                await mixed.close()
            }
        }

        @Test("a worker with private channels but no key refuses to start and says why")
        func privateChannelsWithoutAKeyAreRefusedAtStartup() throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "\(LiveStack.binDirectory)/herald-worker")
            process.arguments = ["--private-channels", "private.*", "--socket", "/nonexistent/worker.sock"]
            var environment = ProcessInfo.processInfo.environment
            environment.removeValue(forKey: "HERALD_SUBSCRIBER_KEY")
            process.environment = environment
            let error = Pipe()
            process.standardError = error
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let message = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus != 0)
            #expect(message.contains("--private-channels needs HERALD_SUBSCRIBER_KEY"), "\(message)")

            let short = Process()
            short.executableURL = process.executableURL
            short.arguments = process.arguments
            environment["HERALD_SUBSCRIBER_KEY"] = "too-short"
            short.environment = environment
            let shortError = Pipe()
            short.standardError = shortError
            short.standardOutput = FileHandle.nullDevice
            try short.run()
            let shortMessage = String(decoding: shortError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            short.waitUntilExit()
            #expect(short.terminationStatus != 0)
            #expect(shortMessage.contains("HERALD_SUBSCRIBER_KEY is 9 bytes"), "\(shortMessage)")
            #expect(!shortMessage.contains("too-short"), "the key itself is never printed")
        }
    }
}
