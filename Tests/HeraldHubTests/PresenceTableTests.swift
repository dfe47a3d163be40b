// The hub's presence table: per-worker counts, their sums, and the changes of the sums.
import Testing

@testable import HeraldHub

@Suite("Presence table")
struct PresenceTableTests {
    final class Worker {}

    @Test("sums the workers' counts; a change reports the total before and after")
    func sums() {
        var table = PresenceTable()
        let workers = (Worker(), Worker())  // alive, so that their identifiers differ
        let a = ObjectIdentifier(workers.0), b = ObjectIdentifier(workers.1)
        #expect(table.update(worker: a, counts: [("news", 2)]) == [.init(channel: "news", before: 0, after: 2)])
        #expect(
            table.update(worker: b, counts: [("news", 1), ("sport", 1)])
                == [.init(channel: "news", before: 2, after: 3), .init(channel: "sport", before: 0, after: 1)])
        #expect(table.update(worker: b, counts: [("news", 1)]) == [], "a repeated count is no change")
        #expect(table.totals == ["news": 3, "sport": 1])
        #expect(table.update(worker: a, counts: [("news", 0)]) == [.init(channel: "news", before: 3, after: 1)])
        #expect(table.subscribers(of: "news") == 1)
        #expect(table.subscribers(of: "none") == 0)
        withExtendedLifetime(workers) {}
    }

    @Test("a worker that leaves takes its streams with it; channels at zero are gone")
    func workerLeaves() {
        var table = PresenceTable()
        let workers = (Worker(), Worker())  // alive, so that their identifiers differ
        let a = ObjectIdentifier(workers.0), b = ObjectIdentifier(workers.1)
        _ = table.update(worker: a, counts: [("news", 2), ("sport", 1)])
        _ = table.update(worker: b, counts: [("news", 1)])
        #expect(
            table.remove(worker: a)
                == [.init(channel: "news", before: 3, after: 1), .init(channel: "sport", before: 1, after: 0)])
        #expect(table.totals == ["news": 1])
        #expect(table.remove(worker: a) == [], "twice is nothing")
        _ = table.update(worker: b, counts: [("news", 0)])
        #expect(table.totals.isEmpty)
        withExtendedLifetime(workers) {}
    }
}
