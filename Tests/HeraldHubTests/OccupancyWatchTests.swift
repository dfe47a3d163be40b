// Occupancy transitions from counts over time (an injected clock), and the webhook's exact
// body and signature.
import Testing

@testable import HeraldHub

@Suite("Occupancy webhooks")
struct OccupancyWatchTests {
    @Test("occupied at the first subscriber only; vacated once the channel has been empty for the delay")
    func transitions() {
        var watch = OccupancyWatch(vacatedAfterMilliseconds: 5000)
        #expect(
            watch.update(channel: "rooms", subscribers: 1, now: 1000)
                == OccupancyNotice(kind: .occupied, channel: "rooms", subscribers: 1, timeMilliseconds: 1000))
        #expect(watch.update(channel: "rooms", subscribers: 3, now: 1100) == nil, "more subscribers: no transition")
        #expect(watch.update(channel: "rooms", subscribers: 0, now: 2000) == nil, "vacated only after the delay")
        #expect(watch.nextDue == 7000)
        #expect(watch.due(now: 6999) == [])
        #expect(
            watch.due(now: 7003)
                == [OccupancyNotice(kind: .vacated, channel: "rooms", subscribers: 0, timeMilliseconds: 7000)])
        #expect(watch.nextDue == nil)
        #expect(watch.update(channel: "rooms", subscribers: 1, now: 8000)?.kind == .occupied, "occupied again")
    }

    @Test("a reconnect inside the delay sends nothing at all")
    func reconnectInsideDelay() {
        var watch = OccupancyWatch(vacatedAfterMilliseconds: 5000)
        _ = watch.update(channel: "rooms", subscribers: 1, now: 0)
        #expect(watch.update(channel: "rooms", subscribers: 0, now: 100) == nil)
        #expect(watch.update(channel: "rooms", subscribers: 1, now: 4000) == nil)
        #expect(watch.nextDue == nil)
        #expect(watch.due(now: 60_000) == [])
        #expect(watch.occupied == ["rooms"])
    }

    @Test("whole totals (cluster mode): new channels occupied, missing ones start their delay, told occupancy is kept")
    func totals() {
        var watch = OccupancyWatch(vacatedAfterMilliseconds: 1000, occupied: ["old"])
        let notices = watch.apply(totals: ["b": 2, "a": 1, "old": 4], now: 10)
        #expect(notices.map(\.channel) == ["a", "b"], "'old' was told occupied before: not again")
        #expect(watch.apply(totals: ["a": 1], now: 20) == [])
        #expect(
            watch.due(now: 1020).map { "\($0.kind.rawValue) \($0.channel)" } == [
                "channel.vacated b", "channel.vacated old",
            ])
        #expect(watch.occupied == ["a"])
    }

    @Test("the body's exact bytes and its HMAC-SHA256 signature (checked with Python's hmac)")
    func bodyAndSignature() {
        let notice = OccupancyNotice(
            kind: .occupied, channel: "rooms", subscribers: 1, timeMilliseconds: 1_796_623_262_345)
        let body = WebhookBody.json(notice, id: "x-1")
        #expect(
            body
                == #"{"id":"x-1","type":"channel.occupied","channel":"rooms","subscribers":1,"time":"2026-12-07T06:01:02.345Z"}"#
        )
        #expect(
            WebhookBody.signature(of: body, secret: "webhook-secret-for-tests")
                == "sha256=a4800425a071698717661c041f1d643a42590edd8638c3aade0ea1aa52ba638b")
        #expect(WebhookBody.timestamp(5) == "1970-01-01T00:00:00.005Z")
    }

    @Test("settings: a missing or short secret and a URL that is not http(s) are refused in words")
    func settingsProblems() {
        #expect(WebhookSettings(urls: ["http://x/h"], secret: "").problem?.contains("HERALD_WEBHOOK_SECRET") == true)
        #expect(WebhookSettings(urls: ["http://x/h"], secret: "short").problem?.contains("at least 16") == true)
        #expect(WebhookSettings(urls: ["ftp://x/h"], secret: String(repeating: "s", count: 16)).problem != nil)
        #expect(
            WebhookSettings(urls: ["https://example.com/h"], secret: String(repeating: "s", count: 16)).problem == nil)
    }
}
