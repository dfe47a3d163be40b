// The idempotency keys a hub on one machine remembers: for each key, the sequence of the event
// first published with it, for `--idempotency-window`. Bounded in count and in bytes (the
// oldest go first, counted); rebuilt after a restart from the journal's snapshot and records,
// which carry each key with the wall-clock time it was accepted.
import HeraldProtocol
import NIOCore

/// One remembered key.
struct IdempotencyEntry: Sendable, Equatable {
    var key: String
    /// The sequence of the event first published with the key.
    var sequence: UInt64
    /// When the hub accepted it, in milliseconds since 1970 (wall clock: it must survive a restart).
    var acceptedAt: UInt64
}

/// The keys of the last `--idempotency-window`, oldest first. A value without I/O.
struct IdempotencyWindow {
    /// How long a key is remembered, in milliseconds (0: keys are not remembered).
    let windowMilliseconds: UInt64
    /// Most keys remembered; beyond it the oldest are forgotten early.
    let maximumKeys: Int
    /// Most bytes remembered (each key's bytes plus `entryOverhead`); beyond it the oldest go early.
    let maximumBytes: Int
    /// What an entry costs beside its key's bytes (the table, the queue, the string), as counted.
    static let entryOverhead = 64

    private(set) var entries = CircularBuffer<IdempotencyEntry>()
    private var index: [String: (sequence: UInt64, acceptedAt: UInt64)] = [:]
    private(set) var bytes = 0
    /// Keys forgotten before their window ended, because of the count or byte bound.
    private(set) var evictedEarly: UInt64 = 0

    init(windowMilliseconds: UInt64, maximumKeys: Int, maximumBytes: Int) {
        self.windowMilliseconds = windowMilliseconds
        self.maximumKeys = max(1, maximumKeys)
        self.maximumBytes = max(1, maximumBytes)
    }

    /// Keys remembered now (some may have expired and wait for `expire`).
    var count: Int { index.count }

    /// The sequence first published with `key`, if it was accepted within the window before `now`.
    func sequence(for key: String, now: UInt64) -> UInt64? {
        guard windowMilliseconds > 0, let found = index[key], found.acceptedAt + windowMilliseconds > now else {
            return nil
        }
        return found.sequence
    }

    /// Remembers a key (a later entry for the same key replaces the earlier one).
    mutating func insert(_ entry: IdempotencyEntry) {
        guard windowMilliseconds > 0 else { return }
        index[entry.key] = (entry.sequence, entry.acceptedAt)
        entries.append(entry)
        bytes += entry.key.utf8.count + Self.entryOverhead
        while entries.count > maximumKeys || bytes > maximumBytes {
            removeOldest()
            evictedEarly += 1
        }
    }

    /// Forgets the keys whose window ended before `now`.
    mutating func expire(now: UInt64) {
        while let oldest = entries.first, oldest.acceptedAt + windowMilliseconds <= now { removeOldest() }
    }

    private mutating func removeOldest() {
        guard let oldest = entries.popFirst() else { return }
        bytes -= oldest.key.utf8.count + Self.entryOverhead
        if index[oldest.key]?.sequence == oldest.sequence { index[oldest.key] = nil }
    }

    /// Wall-clock milliseconds since 1970.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1000 + UInt64(time.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
    import Glibc
#endif
