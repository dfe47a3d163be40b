// What one subscriber process reports to the coordinating herald-bench when it is done: its
// counts, its latency histogram (merged by the coordinator) and how busy it was.
import Histogram

struct SubscriberShare: Codable {
    /// Subscribers this process opened.
    var subscribers: Int
    /// Seconds until all of them were streaming.
    var connectSeconds: Double
    var delivered: Int
    var duplicates: Int
    /// Events of another subscriber's channel (many-channel runs).
    var misrouted = 0
    /// Streams that ended before the run did (should be 0).
    var ended: Int
    /// Latency in microseconds.
    var latency: Histogram<UInt64>
    /// CPU seconds this process used from the start of publishing to the end of its drain.
    var cpuSeconds: Double
    /// Wall seconds of that same interval.
    var wallSeconds: Double

    /// Share of one core this process kept busy while events flowed (1 = one full core). Near 1,
    /// its event loop, not the server, may be what limits the figures.
    var busy: Double { wallSeconds > 0 ? cpuSeconds / wallSeconds : 0 }
}

/// The lines coordinator and subscriber processes exchange over stdin and stdout.
enum FleetLine {
    /// Subscriber → coordinator: all streams are up; the figure is the connect time.
    static let ready = "ready"
    /// Subscriber → coordinator: connecting failed; the rest of the line says why.
    static let failed = "failed"
    /// Coordinator → subscriber: publishing starts now.
    static let go = "go"
    /// Coordinator → subscriber: publishing is over, followed by the number of events
    /// acknowledged; drain, report and exit.
    static let published = "published"
}
