// Subscriber tokens never reach a log: requests carrying `?token=` fail in each way a request
// can fail through nginx (the worker refuses the token, the worker is down, the worker does
// not answer in time), then every file in the run directory (nginx's access and error logs,
// the hub's and the workers' logs) is searched for the tokens.
import Foundation
import HeraldClient
import SocketFiles
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension LiveSuites {
    @Suite("Tokens in logs")
    struct TokenLogTests {
        /// One worker, so a stopped or killed worker is the only upstream; no watchdog, so a
        /// stopped worker stays stopped until the test resumes it.
        static let environment = PrivateChannelTests.environment.merging([
            "HERALD_WATCHDOG_SECONDS": "0"
        ]) { $1 }

        @Test(
            "a token in the query shows in no log when the worker refuses it, is down, or times out; the failures do show in the access log"
        )
        func tokensStayOutOfEveryLog() async throws {
            try await LiveStack.with(workers: 1, environment: Self.environment) { stack in
                var tokens: [String] = []

                // 1. Refused: a token signed with another key, on a stream and on a poll: 401.
                let forged = try await PrivateChannelTests.token(["private.a"], key: String(PrivateChannelTests.key.reversed()))
                tokens.append(forged)
                let refusedStream = try await PrivateChannelTests.get(stack, "/stream/private.a?token=\(forged)")
                #expect(refusedStream.status == 401)
                let refusedPoll = try await PrivateChannelTests.get(stack, "/poll/private.a?lastEventId=&token=\(forged)")
                #expect(refusedPoll.status == 401)

                // 2. Worker down: killed, a stream and a poll sent before deploy/run restarts it
                // (1 s later). The stream gets nginx's "retry" answer, the poll a 502.
                let pid = try #require(stack.pid(of: "worker-1"))
                let downToken = try await PrivateChannelTests.token(["private.a"])
                tokens.append(downToken)
                #expect(kill(pid, SIGKILL) == 0)
                let gone = try await stack.eventually(within: 2) { kill(pid, 0) != 0 }
                #expect(gone)
                let downStream = try await PrivateChannelTests.get(stack, "/stream/private.a?token=\(downToken)")
                #expect(downStream.status == 200 && downStream.body == "retry: 5000\n\n", "the stream reached a worker")
                let downPoll = try await PrivateChannelTests.get(stack, "/poll/private.a?lastEventId=&token=\(downToken)")
                #expect(downPoll.status == 502)

                // 3. Timeout: the restarted worker stopped (SIGSTOP): nginx connects (the kernel
                // queues the connection), sends the request, and after /poll's 35 s read timeout
                // answers 504.
                let socket = "\(stack.runDirectory)/worker-1.sock"
                let back = try await stack.eventually(within: 15) {
                    guard let new = stack.pid(of: "worker-1"), new != pid, kill(new, 0) == 0 else { return false }
                    return UnixListener.isServed(socket)
                }
                try #require(back, "deploy/run did not restart worker-1")
                let stopped = try #require(stack.pid(of: "worker-1"))
                // nginx skips a worker for 2 s after a failed connect (max_fails=1 fail_timeout=2s):
                // a stream that opens shows the worker is taken back.
                let opened = try await stack.eventually(within: 10) {
                    let probe = try await PrivateChannelTests.get(stack, "/stream/private.a")
                    return probe.status == 401
                }
                #expect(opened, "nginx did not take worker-1 back")
                let slowToken = try await PrivateChannelTests.token(["private.a"])
                tokens.append(slowToken)
                #expect(kill(stopped, SIGSTOP) == 0)
                let timedOut: HTTPResult
                do {
                    defer { kill(stopped, SIGCONT) }
                    timedOut = try await PrivateChannelTests.get(stack, "/poll/private.a?lastEventId=&token=\(slowToken)")
                }
                #expect(timedOut.status == 504)

                // The failures are visible to the operator: in the access log, by status and the
                // worker's socket, without the query.
                let accessLog = try String(contentsOfFile: "\(stack.runDirectory)/nginx-access.log", encoding: .utf8)
                #expect(accessLog.contains("\"GET /poll/private.a\" 502"), "no 502 line in the access log")
                #expect(accessLog.contains("\"GET /poll/private.a\" 504"), "no 504 line in the access log")
                #expect(accessLog.contains("\"GET /stream/private.a\" 401"))

                // No file in the run dir holds any of the tokens, nor the signature part alone.
                let files = try #require(FileManager.default.enumerator(atPath: stack.runDirectory))
                var searched = 0
                for case let name as String in files {
                    let path = "\(stack.runDirectory)/\(name)"
                    guard let data = FileManager.default.contents(atPath: path) else { continue }
                    searched += 1
                    let text = String(decoding: data, as: UTF8.self)
                    for token in tokens {
                        let signature = String(token.split(separator: ".").last ?? "")
                        #expect(!text.contains(token) && !text.contains(signature), "a token is in \(name)")
                    }
                }
                #expect(searched >= 4, "expected nginx's two logs, the hub's and the worker's log")
            }
        }
    }
}
