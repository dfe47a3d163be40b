// Every outcome of an HTTP publish, as the relay answers it: ids for a single publish and a
// batch, 400 for a refusal, 503 (with Retry-After) only when the event is certainly not
// published, 504 when it may or may not be.
import HeraldProtocol
import Testing

@testable import HeraldWorker

@Suite("Publish answers")
struct PublishAnswerTests {
    let epoch = Epoch("k3j9x2mq0a")!

    @Test("an accepted publish is answered 200 with its id; a batch with every id in order")
    func accepted() {
        let single = PublishRelay.answer(.success(.accepted(sequence: 7)), epoch: epoch, count: 1, batch: false)
        #expect(single == HTTPResponse(status: 200, headers: ["Content-Type: text/plain; charset=utf-8"], body: "k3j9x2mq0a-7\n"))
        let batch = PublishRelay.answer(.success(.accepted(sequence: 7)), epoch: epoch, count: 3, batch: true)
        #expect(batch.status == 200)
        #expect(batch.headers == ["Content-Type: application/json"])
        #expect(batch.body == #"{"ids":["k3j9x2mq0a-7","k3j9x2mq0a-8","k3j9x2mq0a-9"]}"# + "\n")
    }

    @Test("a repeat (a known idempotency key) is 200 with the first event's id and Idempotent-Replayed; a batch names its repeated lines")
    func repeated() {
        let single = PublishRelay.answer(
            .success(.accepted(sequence: 0, repeats: [PublishRepeat(index: 0, sequence: 4)])), epoch: epoch, count: 1,
            batch: false)
        #expect(
            single
                == HTTPResponse(
                    status: 200, headers: ["Content-Type: text/plain; charset=utf-8", "Idempotent-Replayed: true"],
                    body: "k3j9x2mq0a-4\n"))
        let batch = PublishRelay.answer(
            .success(.accepted(sequence: 9, repeats: [PublishRepeat(index: 1, sequence: 4)])), epoch: epoch, count: 3,
            batch: true)
        #expect(batch.status == 200)
        #expect(batch.headers == ["Content-Type: application/json", "Idempotent-Replayed: true"])
        #expect(batch.body == #"{"ids":["k3j9x2mq0a-9","k3j9x2mq0a-4","k3j9x2mq0a-10"],"repeated":[2]}"# + "\n")
    }

    @Test("a refusal is the publisher's mistake: 400 with the hub's words")
    func refused() {
        let answer = PublishRelay.answer(.success(.refused("line 2: no")), epoch: epoch, count: 2, batch: true)
        #expect(answer == .text(400, "line 2: no"))
    }

    @Test("certainly not published: 503 with Retry-After, saying so")
    func notPublished() {
        let full = PublishRelay.answer(.success(.unavailable("journal full")), epoch: epoch, count: 1, batch: false)
        #expect(full == .text(503, "journal full (not published)", headers: ["Retry-After: 1"]))
        let notSent = PublishRelay.answer(
            .failure(HubUnavailableError(description: "the hub is not connected")), epoch: epoch, count: 1,
            batch: false)
        #expect(notSent.status == 503)
        #expect(notSent.headers.contains("Retry-After: 1"))
    }

    @Test("sent and not answered, or a failed commit: 504, never 503")
    func uncertain() {
        let timedOut = PublishRelay.answer(
            .failure(HubUnavailableError(description: "the hub did not answer within 5 s", sent: true)),
            epoch: epoch, count: 1, batch: false)
        #expect(timedOut == .text(504, "the hub did not answer within 5 s"))
        let commit = PublishRelay.answer(.success(.uncertain("commit failed")), epoch: epoch, count: 1, batch: false)
        #expect(commit == .text(504, "commit failed"))
    }
}
