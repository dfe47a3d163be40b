// The admin commands as the hub and heraldctl both know them: name, usage and summary, in the
// order `help` lists them. The hub binds a handler to each (HeraldHub's AdminCommands), and
// heraldctl takes its subcommands' summaries from here, so the words are written once.

/// One admin command's description.
public struct AdminCommandSpec: Sendable, Equatable {
    /// The first word of the request line.
    public let name: String
    /// The arguments, as `help` shows them.
    public let usage: String
    /// One line on what it does.
    public let summary: String

    /// `help`'s line for the command.
    public var helpLine: String {
        let head = usage.isEmpty ? name : "\(name) \(usage)"
        return "\(head)  —  \(summary)"
    }

    /// The summary as a sentence (capitalised, with a full stop), for heraldctl's help.
    public var sentence: String {
        guard let first = summary.first else { return summary }
        return first.uppercased() + summary.dropFirst() + "."
    }
}

/// Every admin command.
public enum AdminCatalog {
    public static let publish = AdminCommandSpec(
        name: "publish", usage: "CHANNEL DATA [--event NAME] [--merge] [--key KEY]",
        summary:
            "publish DATA on CHANNEL (event type NAME, default delta); --merge applies DATA to the state as a JSON merge patch; --key KEY is an idempotency key (a repeat is not published again); replies with the event id, and the line `repeated` for a repeat"
    )
    public static let publishBatch = AdminCommandSpec(
        name: "publish-batch", usage: "NDJSON",
        summary:
            "publish every line of NDJSON ({\"channel\":…,\"data\":…,\"event\":…,\"merge\":…,\"key\":…} each) as one batch, whole or not at all; replies with the ids in order, then `repeated: N …` naming the lines whose keys were known (not published again)"
    )
    public static let state = AdminCommandSpec(
        name: "state", usage: "get CHANNEL | set CHANNEL JSON",
        summary: "print a channel's state, or replace it (connected clients get it as a fresh init)")
    public static let channels = AdminCommandSpec(
        name: "channels", usage: "[--json]", summary: "every channel with events or subscribers: subscribers over all workers, last event id, state size, events in history")
    public static let workers = AdminCommandSpec(
        name: "workers", usage: "[--json]", summary: "the connected workers: id, pid, streams, hub link")
    public static let tail = AdminCommandSpec(
        name: "tail", usage: "CHANNEL|*",
        summary: "follow the events of CHANNEL (or * for all) live, one JSON line each, until you disconnect")
    public static let drain = AdminCommandSpec(
        name: "drain", usage: "[WORKER] [--retry MS] [--jitter MS]",
        summary:
            "end the streams of WORKER (or of all workers) with retry MS plus up to MS of jitter, so clients reconnect spread out"
    )
    public static let stats = AdminCommandSpec(
        name: "stats", usage: "[--json]",
        summary: "the hub's figures and every connected worker's (streams, events, bytes, hub link)")
    public static let metrics = AdminCommandSpec(
        name: "metrics", usage: "",
        summary: "the hub's and every worker's figures in the Prometheus text format (as GET /metrics serves them)")
    public static let help = AdminCommandSpec(name: "help", usage: "", summary: "list the commands")

    /// Every command, in the order `help` lists them.
    public static let all: [AdminCommandSpec] = [
        publish, publishBatch, state, channels, workers, tail, drain, stats, metrics, help,
    ]

    /// `help`'s text.
    public static var helpLines: [String] { all.map(\.helpLine) }
}
