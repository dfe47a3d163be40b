// The closed loop's shared ledger: which event index each publisher sends next and when it is
// due, what the server acknowledged, how long each acknowledgement took, and what went wrong.
// One instance lives on the publishers' event loop; every publisher of a run shares it.
import HeraldClient
import Histogram
import NIOCore

/// The figures and schedule of one publishing run, owned by the publishers' event loop.
final class PublishTally {
    /// When no new request may start (CLOCK_MONOTONIC ns).
    let deadline: UInt64
    /// Indices handed out at most: the run is bounded by count as well as by time.
    let maxEvents: Int
    /// Nanoseconds between due times of consecutive events, or 0 for a closed loop (send as soon
    /// as the previous answer is in).
    let interval: UInt64
    /// When index 0 is due.
    let start: UInt64

    /// Indices handed out so far (the next one is `claimed`).
    private(set) var claimed = 0
    private(set) var acknowledged = 0
    /// One bit per acknowledged index.
    private(set) var acknowledgedIndices: [UInt64]
    /// From the first attempt's send to the acknowledgement, in microseconds.
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    /// Answers other than 2xx, by status.
    var refusals: [Int: Int] = [:]
    /// Connections that failed or closed with a request unanswered, and answers that did not parse.
    var transportErrors = 0
    /// Requests sent again with the same idempotency key.
    var retries = 0
    /// Requests answered (any status).
    var answers = 0
    /// When the last acknowledgement came in.
    private(set) var lastAcknowledgement: UInt64

    init(seconds: Double, maxEvents: Int, rate: Int?) {
        start = monotonicNanoseconds()
        deadline = start + UInt64(seconds * 1e9)
        self.maxEvents = maxEvents
        interval = rate.map { 1_000_000_000 / UInt64(max(1, $0)) } ?? 0
        acknowledgedIndices = [UInt64](repeating: 0, count: (maxEvents + 63) / 64)
        lastAcknowledgement = start
    }

    /// Up to `count` consecutive indices for one request and when the last of them is due, or
    /// nil once the run is over (past the deadline or out of indices).
    func claim(_ count: Int, now: UInt64) -> (first: Int, count: Int, due: UInt64)? {
        guard now < deadline, claimed < maxEvents else { return nil }
        let first = claimed
        let taken = min(count, maxEvents - claimed)
        claimed += taken
        return (first, taken, start &+ UInt64(first + taken - 1) &* interval)
    }

    /// Records that `count` indices from `first`, first sent at `sent`, were acknowledged at `now`.
    func acknowledge(first: Int, count: Int, sent: UInt64, now: UInt64) {
        for index in first..<first + count {
            acknowledgedIndices[index / 64] |= UInt64(1) << UInt64(index % 64)
        }
        acknowledged += count
        _ = latency.record(now >= sent ? (now - sent) / 1000 : 0, count: UInt64(count))
        lastAcknowledgement = now
    }
}

/// The data of one benchmark event: `<index> <monotonic ns at first send> <padding>`, as the
/// subscribers' EventScanner reads it.
struct EventData {
    /// `padding` bytes of `x`.
    let padding: [UInt8]

    init(paddingBytes: Int) {
        padding = [UInt8](repeating: UInt8(ascii: "x"), count: paddingBytes)
    }

    /// Bytes that `write` adds for `index` sent at `sent`.
    func count(index: Int, sent: UInt64) -> Int {
        Self.digits(UInt64(index)) + 1 + Self.digits(sent) + 1 + padding.count
    }

    func write(index: Int, sent: UInt64, to buffer: inout ByteBuffer) {
        Self.writeDecimal(UInt64(index), to: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        Self.writeDecimal(sent, to: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeBytes(padding)
    }

    static func digits(_ value: UInt64) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }

    /// Writes `value` in decimal without building a String.
    static func writeDecimal(_ value: UInt64, to buffer: inout ByteBuffer) {
        let count = digits(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            var rest = value
            for at in stride(from: count - 1, through: 0, by: -1) {
                bytes[at] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            return count
        }
    }
}
