// A connection to a hub's admin socket on SwiftNIO: requests in order, one reply each.
import HeraldProtocol
import NIOCore
import NIOPosix

/// An open admin connection. Requests may come from any task; replies keep request order.
public final class AdminConnection: Sendable {
    private let channel: Channel
    private let handler: NIOLoopBound<AdminReplyCollector>

    private init(channel: Channel, handler: NIOLoopBound<AdminReplyCollector>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to the admin socket at `path`.
    public static func connect(path: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
        -> AdminConnection
    {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(AdminLineDecoder(maximumLength: 64 << 20)))
                    try channel.pipeline.syncOperations.addHandler(AdminReplyCollector())
                }
            }
            .connect(unixDomainSocketPath: path).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: AdminReplyCollector.self),
                eventLoop: channel.eventLoop)
        }.get()
        return AdminConnection(channel: channel, handler: handler)
    }

    /// Sends one request and waits for its reply.
    public func request(_ words: [String]) async throws -> AdminReply {
        let channel = self.channel
        let handler = self.handler
        let line = AdminLine.join(words) + "\n"
        return try await channel.eventLoop.flatSubmit {
            // On the loop, isActive agrees with channelInactive: a request on a connection that
            // already closed must fail now, as nothing would ever fail its promise later.
            guard channel.isActive else { return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            let promise = channel.eventLoop.makePromise(of: AdminReply.self)
            handler.value.waiting.append(promise)
            channel.writeAndFlush(ByteBuffer(string: line)).whenFailure { error in
                channel.close(promise: nil)  // channelInactive then fails every waiting request
                _ = error
            }
            return promise.futureResult
        }.get()
    }

    /// Publishes and returns the event id, or throws the hub's refusal.
    public func publish(channel: String, data: String, event: String? = nil, merge: Bool = false) async throws -> String
    {
        var words = ["publish", channel, data]
        if let event { words += ["--event", event] }
        if merge { words.append("--merge") }
        let reply = try await request(words)
        if let error = reply.error { throw AdminRefusal(message: error) }
        guard let id = reply.lines.first else { throw AdminRefusal(message: "the hub sent no event id") }
        return id
    }

    public func close() async {
        try? await channel.close()
    }
}

/// The hub refused a request; `message` is its words.
public struct AdminRefusal: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Collects reply lines until the empty line and completes the oldest waiting request.
final class AdminReplyCollector: ChannelInboundHandler {
    typealias InboundIn = String

    var waiting: [EventLoopPromise<AdminReply>] = []
    private var lines: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        guard line.isEmpty else {
            lines.append(line)
            return
        }
        // A status line that is neither `ok` nor `error: …` is answered as an error, in its words.
        let reply =
            AdminReply(lines: lines)
            ?? .failure("unexpected reply from the hub: \(lines.first ?? "")")
        lines.removeAll()
        if !waiting.isEmpty { waiting.removeFirst().succeed(reply) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for promise in waiting { promise.fail(ChannelError.ioOnClosedChannel) }
        waiting.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        for promise in waiting { promise.fail(error) }
        waiting.removeAll()
        context.close(promise: nil)
    }
}
