// The publish token's startup rule: long enough to resist guessing, and nothing an
// `Authorization: Bearer` header cannot carry intact.
import Testing

@testable import HeraldWorker

@Suite struct PublishTokenRuleTests {
    @Test func acceptsTokensOfTheMinimumLengthAndLonger() {
        let minimum = String(repeating: "a", count: WorkerConfiguration.minimumPublishTokenLength)
        #expect(WorkerConfiguration.publishTokenProblem(minimum) == nil)
        // What `head -c 32 /dev/urandom | base64` prints (44 characters, with + / =).
        #expect(WorkerConfiguration.publishTokenProblem("q8Zk1m+o0b/9uKxv3Yw2QpTgHnRcS7aLfE5dJ6iWsVU=") == nil)
    }

    @Test func refusesAShortTokenSayingHowLongItIsAndHowToMakeOne() throws {
        let problem = try #require(WorkerConfiguration.publishTokenProblem("secret"))
        #expect(problem.contains("6 characters long, fewer than the 16 required"))
        #expect(problem.contains("head -c 32 /dev/urandom | base64"))
        let fifteen = String(repeating: "x", count: 15)
        #expect(WorkerConfiguration.publishTokenProblem(fifteen)?.contains("15 characters") == true)
    }

    @Test(arguments: ["a-long-enough-token-with a space", "a-long-enough-token-0123456789\n", "\ta-long-enough-token-0123456789"])
    func refusesWhitespaceAndControlCharacters(token: String) throws {
        let problem = try #require(WorkerConfiguration.publishTokenProblem(token))
        #expect(problem.contains("space or a control character"))
    }
}
