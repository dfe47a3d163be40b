// `heraldctl`: the operator's command line for a hub's admin socket.
import ArgumentParser
import Foundation
import HeraldProtocol

@main
struct Heraldctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heraldctl",
        abstract: "Publish to and inspect a Herald hub through its admin socket.",
        subcommands: [Publish.self, Stats.self, Raw.self])
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
        do {
            let client = try AdminClient(path: path)
            defer { client.close() }
            let reply = try client.request(words)
            for line in reply.lines { print(line) }
            if let error = reply.error { throw HubRefusal(message: error) }
        } catch let error as AdminClientError {
            throw HubRefusal(message: error.description)
        }
    }
}

/// An error the hub (or the connection to it) reported; printed as `heraldctl: error: …`.
struct HubRefusal: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension Heraldctl {
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish DATA on CHANNEL; prints the new event's id.")

        @OptionGroup var connection: SocketOption
        @Argument(help: "The channel.") var channel: String
        @Argument(help: "The event data (any text; JSON by convention).") var data: String
        @Option(help: "The SSE event type (default: delta).") var event: String?

        func run() throws {
            var words = ["publish", channel, data]
            if let event { words += ["--event", event] }
            try connection.run(words)
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The hub's figures and every connected worker's.")

        @OptionGroup var connection: SocketOption
        @Flag(help: "One line of JSON instead of text.") var json = false

        func run() throws {
            try connection.run(json ? ["stats", "--json"] : ["stats"])
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
