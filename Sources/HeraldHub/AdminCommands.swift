// The admin command table: every command's name, usage and summary in one place, which also
// generates `help` (as haproxy's cli.c does).
import HeraldProtocol
import NIOCore

/// One admin command.
struct AdminCommand: Sendable {
    /// The first word of the request line.
    let name: String
    /// The arguments, as `help` shows them.
    let usage: String
    /// One line on what it does.
    let summary: String
    /// Runs the command with the words after its name, on the hub's event loop.
    let run: @Sendable (_ arguments: [String], _ core: HubCore) -> EventLoopFuture<AdminReply>
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
            name: "publish", usage: "CHANNEL DATA [--event NAME]",
            summary: "publish DATA on CHANNEL (event type NAME, default delta); replies with the event id",
            run: { words, core in
                core.loop.makeCompletedFuture {
                    let arguments = try AdminArguments(words, valued: ["event"])
                    guard arguments.positional.count == 2 else {
                        throw AdminUsageError("publish takes CHANNEL and DATA")
                    }
                    let request = PublishRequest(
                        channel: arguments.positional[0], name: arguments.options["event"] ?? "delta",
                        data: arguments.positional[1])
                    switch core.publish(request) {
                    case .accepted(let sequence):
                        return .ok([EventID(epoch: core.epoch, sequence: sequence).description])
                    case .refused(let reason):
                        return .failure(reason)
                    }
                }
            }),
        AdminCommand(
            name: "stats", usage: "[--json]",
            summary: "the hub's figures and every connected worker's (streams, events, bytes, hub link)",
            run: { words, core in
                do {
                    let arguments = try AdminArguments(words, switches: ["json"])
                    guard arguments.positional.isEmpty else { throw AdminUsageError("stats takes no arguments") }
                    return core.gatherStats().map { (stats: HubStats) -> AdminReply in
                        arguments.switches.contains("json") ? .ok([WorkerStatsJSON.encode(stats)]) : .ok(stats.lines)
                    }
                } catch {
                    return core.loop.makeFailedFuture(error)
                }
            }),
        AdminCommand(
            name: "help", usage: "", summary: "list the commands",
            run: { _, core in core.loop.makeSucceededFuture(.ok(helpLines)) }),
    ]

    /// `help`'s text, generated from the table.
    static let helpLines: [String] = table.map { command in
        let head = command.usage.isEmpty ? command.name : "\(command.name) \(command.usage)"
        return "\(head)  —  \(command.summary)"
    }

    /// Runs one request line and gives the reply.
    static func execute(line: String, core: HubCore) -> EventLoopFuture<AdminReply> {
        let words: [String]
        do {
            words = try AdminLine.split(line)
        } catch {
            return core.loop.makeSucceededFuture(.failure(error.description))
        }
        guard let name = words.first else { return core.loop.makeSucceededFuture(.failure("empty request; try help")) }
        guard let command = table.first(where: { $0.name == name }) else {
            return core.loop.makeSucceededFuture(.failure("unknown command \(AdminLine.quote(name)); try help"))
        }
        return command.run(Array(words.dropFirst()), core).flatMapErrorThrowing { error in
            if let usage = error as? AdminUsageError {
                return .failure("\(usage.message) (usage: \(command.name) \(command.usage))")
            }
            return .failure("\(error)")
        }
    }
}

extension HubStats {
    /// The figures as `key: value` lines for people.
    var lines: [String] {
        var lines = [
            "epoch: \(epoch)", "sequence: \(sequence)", "channels: \(channels)", "events published: \(eventsPublished)",
            "uptime: \(Int(uptimeSeconds)) s", "workers: \(workers.count)", "streams: \(streams)",
        ]
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
