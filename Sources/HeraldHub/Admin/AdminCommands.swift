// The admin command table: a handler for every command of HeraldProtocol's AdminCatalog (name,
// usage and summary live there, once, and generate `help`, as haproxy's cli.c does).
import HeraldMetrics
import HeraldProtocol
import NIOCore

/// What a command does with its connection: answer once, or keep it to follow events.
enum AdminOutcome: Sendable {
    case reply(AdminReply)
    /// `ok`, then one line per event of the channel (all channels when nil) until the client leaves.
    case follow(channel: String?)
}

/// One admin command: its description from the catalog, and what the hub does for it.
struct AdminCommand: Sendable {
    /// Name, usage and summary (HeraldProtocol's `AdminCatalog`).
    let spec: AdminCommandSpec
    /// Runs the command with the words after its name, on the hub's event loop.
    let run: @Sendable (_ arguments: [String], _ core: HubCore) throws -> EventLoopFuture<AdminOutcome>

    var name: String { spec.name }
    var usage: String { spec.usage }
}

/// Parsed `--flag value` and `--switch` options of an admin request.
struct AdminArguments {
    var positional: [String] = []
    var options: [String: String] = [:]
    var switches: Set<String> = []

    /// Splits `words`: `valued` options take the next word, `switches` stand alone.
    init(_ words: [String], valued: Set<String> = [], switches allowed: Set<String> = []) throws(AdminUsageError) {
        var index = 0
        while index < words.count {
            let word = words[index]
            if word.hasPrefix("--"), word.count > 2 {
                let name = String(word.dropFirst(2))
                if valued.contains(name) {
                    guard index + 1 < words.count else { throw AdminUsageError("--\(name) needs a value") }
                    options[name] = words[index + 1]
                    index += 2
                    continue
                }
                guard allowed.contains(name) else { throw AdminUsageError("unknown option --\(name)") }
                switches.insert(name)
            } else {
                positional.append(word)
            }
            index += 1
        }
    }

    /// Exactly `count` positional words, or a usage error.
    func expect(_ count: Int) throws(AdminUsageError) -> [String] {
        guard positional.count == count else {
            throw AdminUsageError("expected \(count) argument\(count == 1 ? "" : "s"), got \(positional.count)")
        }
        return positional
    }

    /// A whole number option within `range`, or `defaultValue` when absent.
    func number(_ name: String, default defaultValue: UInt32, in range: ClosedRange<UInt32>) throws(AdminUsageError)
        -> UInt32
    {
        guard let text = options[name] else { return defaultValue }
        guard let value = UInt32(text), range.contains(value) else {
            throw AdminUsageError("--\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

/// A request whose arguments do not fit the command.
struct AdminUsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

enum AdminCommands {
    /// Every command the admin socket knows, in the order `help` lists them.
    static let table: [AdminCommand] = [
        AdminCommand(
            spec: AdminCatalog.publish,
            run: { words, core in
                let arguments = try AdminArguments(words, valued: ["event", "key"], switches: ["merge"])
                let positional = try arguments.expect(2)
                let request = PublishRequest(
                    channel: positional[0], name: arguments.options["event"] ?? "delta", data: positional[1],
                    merge: arguments.switches.contains("merge"), key: arguments.options["key"])
                let epoch = core.epoch
                return core.publish(request).map { reply(for: $0, epoch: epoch) }
            }),
        AdminCommand(
            spec: AdminCatalog.publishBatch,
            run: { words, core in
                let positional = try AdminArguments(words).expect(1)
                let requests: [PublishRequest]
                switch PublishBatch.decode(
                    positional[0], maxEvents: core.configuration.maxBatchEvents,
                    maxDataBytes: core.configuration.maxEventBytes)
                {
                case .failure(let refusal): return core.loop.makeSucceededFuture(.reply(.failure(refusal.description)))
                case .success(let decoded): requests = decoded
                }
                let epoch = core.epoch
                return core.publish(requests).map { result in
                    guard case .accepted(_, let repeats) = result, let sequences = result.sequences(count: requests.count)
                    else { return reply(for: result, epoch: epoch) }
                    var lines = sequences.map { EventID(epoch: epoch, sequence: $0).description }
                    if !repeats.isEmpty { lines.append("repeated: " + repeats.map { "\($0.index + 1)" }.joined(separator: " ")) }
                    return .reply(.ok(lines))
                }
            }),
        AdminCommand(
            spec: AdminCatalog.state,
            run: { words, core in
                let arguments = try AdminArguments(words)
                switch arguments.positional.first {
                case "get":
                    let positional = try arguments.expect(2)
                    return core.loop.makeSucceededFuture(.reply(.ok([core.visibleState(of: positional[1])])))
                case "set":
                    let positional = try arguments.expect(3)
                    let epoch = core.epoch
                    return core.setState(channel: positional[1], json: positional[2]).map {
                        reply(for: $0, epoch: epoch)
                    }
                default:
                    throw AdminUsageError("state takes get or set")
                }
            }),
        AdminCommand(
            spec: AdminCatalog.channels,
            run: { words, core in
                let arguments = try AdminArguments(words, switches: ["json"])
                _ = try arguments.expect(0)
                let json = arguments.switches.contains("json")
                let summaries = core.channelsWithPresence()
                if json { return core.loop.makeSucceededFuture(.reply(.ok([WorkerStatsJSON.encode(summaries)]))) }
                let lines = summaries.map {
                    "\($0.name): \($0.subscribers) subscribers, last \($0.lastEventId), state \($0.stateBytes) bytes, history \($0.historyEvents) events"
                }
                return core.loop.makeSucceededFuture(.reply(.ok(lines.isEmpty ? ["(no channels)"] : lines)))
            }),
        AdminCommand(
            spec: AdminCatalog.workers,
            run: { words, core in
                let arguments = try AdminArguments(words, switches: ["json"])
                _ = try arguments.expect(0)
                return core.gatherStats().map { stats in
                    if arguments.switches.contains("json") {
                        return .reply(.ok([WorkerStatsJSON.encode(stats.workers)]))
                    }
                    let lines = stats.workers.map {
                        "\($0.id): pid \($0.pid), streams \($0.streams), up \(Int($0.uptimeSeconds)) s, hub link \($0.hubLink)"
                    }
                    return .reply(.ok(lines.isEmpty ? ["(no workers)"] : lines))
                }
            }),
        AdminCommand(
            spec: AdminCatalog.tail,
            run: { words, core in
                let positional = try AdminArguments(words).expect(1)
                if positional[0] == "*" { return core.loop.makeSucceededFuture(.follow(channel: nil)) }
                do {
                    _ = try ChannelName(validating: positional[0])
                } catch {
                    return core.loop.makeSucceededFuture(.reply(.failure("\(error)")))
                }
                return core.loop.makeSucceededFuture(.follow(channel: positional[0]))
            }),
        AdminCommand(
            spec: AdminCatalog.drain,
            run: { words, core in
                let arguments = try AdminArguments(words, valued: ["retry", "jitter"])
                guard arguments.positional.count <= 1 else {
                    throw AdminUsageError("drain takes at most one worker id")
                }
                let retry = try arguments.number("retry", default: 2000, in: 0...600_000)
                let jitter = try arguments.number("jitter", default: 5000, in: 0...600_000)
                let worker = arguments.positional.first
                let told = core.drain(workerID: worker, retryMilliseconds: retry, jitterMilliseconds: jitter)
                if told.isEmpty {
                    return core.loop.makeSucceededFuture(
                        .reply(.failure(worker.map { "no connected worker \($0)" } ?? "no connected workers")))
                }
                return core.loop.makeSucceededFuture(.reply(.ok(told.map { "draining \($0)" })))
            }),
        AdminCommand(
            spec: AdminCatalog.stats,
            run: { words, core in
                let arguments = try AdminArguments(words, switches: ["json"])
                _ = try arguments.expect(0)
                return core.gatherStats().map { stats in
                    .reply(
                        arguments.switches.contains("json") ? .ok([WorkerStatsJSON.encode(stats)]) : .ok(stats.lines))
                }
            }),
        AdminCommand(
            spec: AdminCatalog.metrics,
            run: { words, core in
                _ = try AdminArguments(words).expect(0)
                return core.gatherStats().map { stats in
                    let text = PrometheusExposition.render(hub: stats, workers: stats.workers)
                    return .reply(.ok(text.split(separator: "\n").map(String.init)))
                }
            }),
        AdminCommand(
            spec: AdminCatalog.help,
            run: { _, core in core.loop.makeSucceededFuture(.reply(.ok(helpLines))) }),
    ]

    /// `help`'s text, from the catalog.
    static let helpLines: [String] = AdminCatalog.helpLines

    /// The reply to a publish or state change: the event id (and `repeated` when its key named
    /// an earlier event, whose id it is), or the refusal.
    static func reply(for result: PublishResult, epoch: Epoch) -> AdminOutcome {
        switch result {
        case .accepted(let sequence, let repeats):
            guard let first = repeats.first else {
                return .reply(.ok([EventID(epoch: epoch, sequence: sequence).description]))
            }
            return .reply(.ok([EventID(epoch: epoch, sequence: first.sequence).description, "repeated"]))
        case .refused(let reason), .unavailable(let reason), .uncertain(let reason): return .reply(.failure(reason))
        }
    }

    /// Runs one request line.
    static func execute(line: String, core: HubCore) -> EventLoopFuture<AdminOutcome> {
        execute(words: Result { try AdminLine.split(line) }, core: core)
    }

    /// Runs one request line, already split into words (or the reason it could not be).
    static func execute(words split: Result<[String], any Error>, core: HubCore) -> EventLoopFuture<AdminOutcome> {
        let words: [String]
        switch split {
        case .success(let value): words = value
        case .failure(let error): return core.loop.makeSucceededFuture(.reply(.failure("\(error)")))
        }
        guard let name = words.first else {
            return core.loop.makeSucceededFuture(.reply(.failure("empty request; try help")))
        }
        guard let command = table.first(where: { $0.name == name }) else {
            return core.loop.makeSucceededFuture(.reply(.failure("unknown command \(AdminLine.quote(name)); try help")))
        }
        let usage = "usage: \(command.name) \(command.usage)"
        do {
            return try command.run(Array(words.dropFirst()), core)
        } catch let error as AdminUsageError {
            return core.loop.makeSucceededFuture(.reply(.failure("\(error.message) (\(usage))")))
        } catch {
            return core.loop.makeSucceededFuture(.reply(.failure("\(error)")))
        }
    }
}

extension HubStats {
    /// The figures as `key: value` lines for people.
    var lines: [String] {
        var lines = [
            "epoch: \(epoch)", "sequence: \(sequence)", "channels: \(channels)", "events published: \(eventsPublished)",
            "tail followers dropped: \(tailFollowersDropped)",
            "idempotency keys: \(idempotencyKeys), repeats answered \(idempotentRepeats), forgotten early \(idempotencyKeysEvictedEarly)",
            "uptime: \(Int(uptimeSeconds)) s", "workers: \(workers.count)", "streams: \(streams)",
        ]
        if let webhooks {
            lines.append(
                "webhooks: \(webhooks.sending ? "sending" : "idle (another hub sends them)"), delivered \(webhooks.delivered), failed attempts \(webhooks.failedAttempts), dropped \(webhooks.dropped), queued \(webhooks.queued)"
            )
        }
        if let cluster {
            let link =
                cluster.connected
                ? "connected"
                : "DISCONNECTED for \(Int(cluster.disconnectedSeconds ?? 0)) s, reconnecting"
            lines.append("cluster: \(cluster.database), \(link)")
            lines.append(
                "cluster log: read through \(cluster.lastSequenceRead), head \(cluster.headSequence), pruned through \(cluster.prunedThrough), publishes waiting \(cluster.publishQueue), reconnects \(cluster.reconnects)"
            )
            if let error = cluster.lastError { lines.append("cluster last error: \(error)") }
        }
        for worker in workers {
            let perChannel = worker.streamsByChannel.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.append(
                "worker \(worker.id): pid \(worker.pid), streams \(worker.streams)"
                    + (perChannel.isEmpty ? "" : " (\(perChannel.joined(separator: ", ")))")
                    + ", events sent \(worker.eventsSent), bytes sent \(worker.bytesSent), hub link \(worker.hubLink)")
        }
        return lines
    }
}
