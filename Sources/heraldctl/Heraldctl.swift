// `heraldctl`: the operator's command line for a hub's admin socket.
import ArgumentParser
import Foundation
import HeraldProtocol

@main
struct Heraldctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heraldctl",
        abstract: "Publish to and inspect a Herald hub through its admin socket.",
        subcommands: [
            Publish.self, State.self, Channels.self, Workers.self, Stats.self, Tail.self, Drain.self, Raw.self,
        ])
}

/// Where the admin socket is: `--socket`, else `HERALD_ADMIN_SOCKET`, else the default.
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "The hub's admin socket (default: $HERALD_ADMIN_SOCKET or /run/herald/admin.sock).")
    var socket: String?

    var path: String {
        socket ?? ProcessInfo.processInfo.environment["HERALD_ADMIN_SOCKET"] ?? "/run/herald/admin.sock"
    }

    /// Sends `words`, prints the reply's lines, and fails with the hub's message on an error reply.
    func run(_ words: [String]) throws {
        let reply: AdminReply
        do {
            let client = try AdminClient(path: path)
            defer { client.close() }
            reply = try client.request(words)
        } catch {
            throw HubRefusal(message: error.description)
        }
        for line in reply.lines { print(line) }
        if let error = reply.error { throw HubRefusal(message: error) }
    }
}

/// An error the hub (or the connection to it) reported; printed as `heraldctl: error: …`.
struct HubRefusal: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// `--json` for the listings.
struct JSONFlag: ParsableArguments {
    @Flag(help: "One line of JSON instead of text.") var json = false
    var words: [String] { json ? ["--json"] : [] }
}

extension Heraldctl {
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: AdminCatalog.publish.sentence,
            discussion: """
                With --batch FILE (- for standard input), FILE holds one event per line in NDJSON:
                {"channel":"c","data":…,"event":"name","merge":true} (event and merge optional; a
                string data is sent as its text, any other JSON value as its compact JSON). The
                batch is checked whole: a bad line is named and nothing is published; otherwise
                the events get consecutive ids and one journal sync.
                """)

        @OptionGroup var connection: SocketOption
        @Argument(help: "The channel.") var channel: String?
        @Argument(help: "The event data (any text; JSON by convention).") var data: String?
        @Option(help: "The SSE event type (default: delta).") var event: String?
        @Flag(help: "Apply DATA (a JSON object) to the channel's state as a JSON merge patch (RFC 7386).") var merge =
            false
        @Option(help: "Publish the NDJSON events of this file (- for standard input) as one batch.") var batch: String?
        @Option(
            help:
                "An idempotency key (1-255 visible ASCII characters): publishing again with the same key within the hub's --idempotency-window prints the first event's id and 'repeated', and publishes nothing."
        ) var key: String?

        func validate() throws {
            if batch != nil {
                guard channel == nil, data == nil, event == nil, !merge, key == nil else {
                    throw ValidationError(
                        "--batch takes no CHANNEL, DATA, --event, --merge or --key (they are in each line)")
                }
            } else if channel == nil || data == nil {
                throw ValidationError("publish needs CHANNEL and DATA, or --batch FILE")
            }
        }

        func run() throws {
            if let batch {
                let bytes: Data
                if batch == "-" {
                    bytes = FileHandle.standardInput.readDataToEndOfFile()
                } else {
                    guard let contents = FileManager.default.contents(atPath: batch) else {
                        throw ValidationError("cannot read \(batch)")
                    }
                    bytes = contents
                }
                guard let text = String(data: bytes, encoding: .utf8) else {
                    throw ValidationError("\(batch) is not UTF-8 text")
                }
                try connection.run(["publish-batch", text])
                return
            }
            var words = ["publish", channel!, data!]
            if let event { words += ["--event", event] }
            if merge { words.append("--merge") }
            if let key { words += ["--key", key] }
            try connection.run(words)
        }
    }

    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: AdminCatalog.state.sentence, subcommands: [Get.self, Set.self])

        struct Get: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the state of CHANNEL (JSON).")
            @OptionGroup var connection: SocketOption
            @Argument(help: "The channel.") var channel: String
            func run() throws { try connection.run(["state", "get", channel]) }
        }

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Replace the state of CHANNEL with JSON; connected clients get a fresh init. Prints the event id.")
            @OptionGroup var connection: SocketOption
            @Argument(help: "The channel.") var channel: String
            @Argument(help: "The new state, a JSON document.") var json: String
            func run() throws { try connection.run(["state", "set", channel, json]) }
        }
    }

    struct Channels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: AdminCatalog.channels.sentence)
        @OptionGroup var connection: SocketOption
        @OptionGroup var format: JSONFlag
        func run() throws { try connection.run(["channels"] + format.words) }
    }

    struct Workers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: AdminCatalog.workers.sentence)
        @OptionGroup var connection: SocketOption
        @OptionGroup var format: JSONFlag
        func run() throws { try connection.run(["workers"] + format.words) }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: AdminCatalog.stats.sentence)
        @OptionGroup var connection: SocketOption
        @OptionGroup var format: JSONFlag
        func run() throws { try connection.run(["stats"] + format.words) }
    }

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: AdminCatalog.tail.sentence)
        @OptionGroup var connection: SocketOption
        @Argument(help: "The channel, or '*'.") var channel: String

        func run() throws {
            let client: AdminClient
            do {
                client = try AdminClient(path: connection.path)
                try client.send(["tail", channel])
            } catch {
                throw HubRefusal(message: error.description)
            }
            defer { client.close() }
            var lines = client.lines()
            guard let status = lines.next() else { throw HubRefusal(message: "the hub closed the connection") }
            guard status == "ok" else {
                throw HubRefusal(message: String(status.dropFirst(status.hasPrefix("error: ") ? 7 : 0)))
            }
            // One write per line, unbuffered, so a pipe sees each event as it happens.
            while let line = lines.next() { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        }
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: AdminCatalog.drain.sentence)
        @OptionGroup var connection: SocketOption
        @Argument(help: "The worker id (default: all workers).") var worker: String?
        @Option(help: "Reconnection time sent to the clients, in milliseconds.") var retry: Int?
        @Option(help: "Up to this many milliseconds are added to each client's retry.") var jitter: Int?

        func run() throws {
            var words = ["drain"]
            if let worker { words.append(worker) }
            if let retry { words += ["--retry", String(retry)] }
            if let jitter { words += ["--jitter", String(jitter)] }
            try connection.run(words)
        }
    }

    struct Raw: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "raw", abstract: "Send any admin command (try: heraldctl raw help).")

        @OptionGroup var connection: SocketOption
        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var words: [String] = []

        func run() throws {
            try connection.run(words.isEmpty ? ["help"] : words)
        }
    }
}
