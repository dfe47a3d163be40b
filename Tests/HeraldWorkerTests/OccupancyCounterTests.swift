// The worker's occupancy counter: counts over loops, one queued report for a burst of changes.
import HeraldProtocol
import NIOConcurrencyHelpers
import Testing

@testable import HeraldWorker

@Suite("Occupancy counter")
struct OccupancyCounterTests {
    @Test("a burst of changes queues one report, which carries each changed channel once, zero included")
    func oneReportPerBurst() {
        let counter = OccupancyCounter()
        let queued = NIOLockedValueBox(0)
        counter.onChange { queued.withLockedValue { $0 += 1 } }
        counter.add(["news"], by: 1)
        counter.add(["news", "sport"], by: 1)
        counter.add(["sport"], by: -1)
        #expect(queued.withLockedValue { $0 } == 1)
        #expect(
            counter.takeChanges() == [
                ChannelCount(channel: "news", subscribers: 2), ChannelCount(channel: "sport", subscribers: 0),
            ])
        #expect(counter.takeChanges() == [], "nothing changed since")
        counter.add(["news"], by: -1)
        #expect(queued.withLockedValue { $0 } == 2, "the next change queues a new report")
        #expect(counter.takeAll() == [ChannelCount(channel: "news", subscribers: 1)], "every channel with streams")
        #expect(counter.takeChanges() == [])
    }
}
