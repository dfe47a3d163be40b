// One admin connection: checks the peer's uid (SO_PEERCRED) first, then runs request lines as
// they arrive (pipelined: publishes of one connection share journal syncs) and writes the
// replies in request order. A line that is too long gets an error and closes this connection only.
import HeraldProtocol
import NIOCore
import SocketFiles

#if canImport(Glibc)
    import Glibc
#endif

/// Serves the admin line protocol on one connection, on the hub's event loop.
final class AdminSessionHandler: ChannelInboundHandler {
    typealias InboundIn = String
    typealias OutboundOut = ByteBuffer

    private let core: HubCore
    private let allowedUIDs: Set<uid_t>
    /// Completes when the previous request's reply is written, so replies keep request order.
    private var previous: EventLoopFuture<Bool>?
    /// Set once the peer's uid was checked and allowed: from then on lines run as they arrive.
    private var authorized = false
    /// Set when a `tail` line arrives: later lines are not run (a tail connection only listens).
    private var tailRequested = false
    /// Set by `tail`: from then on the connection receives events and its input is ignored.
    private var following = false
    /// Set by the first bad input: its error reply is on its way and the connection closes after it.
    private var closing = false

    init(core: HubCore, allowedUIDs: Set<uid_t>) {
        self.core = core
        self.allowedUIDs = allowedUIDs
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let allowed = allowedUIDs
        let logger = core.logger
        guard let provider = channel as? SocketOptionProvider else {
            previous = context.eventLoop.makeSucceededFuture(false)
            return
        }
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: .socket, name: .init(rawValue: SO_PEERCRED))
        previous = credentials.assumeIsolated().map { peer in
            guard allowed.contains(peer.uid) else {
                self.authorized = false
                logger.warning(
                    "admin connection refused",
                    metadata: ["admin.peer.uid": "\(peer.uid)", "admin.peer.pid": "\(peer.pid)"])
                self.write(
                    .failure("uid \(peer.uid) may not use this admin socket (see --admin-uid)"), context: context)
                context.close(promise: nil)
                return false
            }
            self.authorized = true
            return true
        }.recover { _ in false }.nonisolated()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !following, !tailRequested, !closing else { return }  // a tail connection only listens
        let line = unwrapInboundIn(data)
        let core = self.core
        let words = Result { try AdminLine.split(line) }
        if case .success(let words) = words, words.first == "tail" { tailRequested = true }
        // Run at once when the peer is known to be allowed, so that requests overlap; the
        // reply still waits for every earlier one.
        let early = authorized && !tailRequested ? AdminCommands.execute(words: words, core: core) : nil
        let start = previous ?? context.eventLoop.makeSucceededFuture(true)
        previous = start.assumeIsolated().flatMap { authorized in
            guard authorized, !self.following else { return core.loop.makeSucceededFuture(false) }
            let outcome = early ?? AdminCommands.execute(words: words, core: core)
            return outcome.assumeIsolated().map { outcome in
                switch outcome {
                case .reply(let reply):
                    self.write(reply, context: context)
                case .follow(let channel):
                    self.following = true
                    var buffer = context.channel.allocator.buffer(capacity: 4)
                    buffer.writeString("ok\n")
                    context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                    core.follow(channelName: channel, channel: context.channel)
                }
                return true
            }.nonisolated()
        }.nonisolated()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if following { core.unfollow(channel: context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // The line decoder reports every later read as another error: the first one counts.
        guard !closing else { return }
        closing = true
        core.logger.warning("closing admin connection after bad input", metadata: ["error": "\(error)"])
        // After the replies to the requests before the bad line, in order; then close.
        let start = previous ?? context.eventLoop.makeSucceededFuture(true)
        previous = start.assumeIsolated().map { _ in
            self.write(.failure("\(error)"), context: context)
            context.close(promise: nil)
            return false
        }.nonisolated()
    }

    private func write(_ reply: AdminReply, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeString(reply.text)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}
