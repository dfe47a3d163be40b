// The event-loop side of one stream's connection to nginx: nothing is read from it but its end.
// EOF or an error (ECONNRESET then channelInactive) both mean the client left: nginx does not
// send FCGI_ABORT_REQUEST, it closes the connection.
import NIOCore

/// Watches one stream's connection and unregisters it when it closes.
final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let id: UInt64
    private let registry: StreamRegistry

    init(id: UInt64, registry: StreamRegistry) {
        self.id = id
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // nginx sends nothing after STDIN; bytes a raw client pipelines (say an
        // FCGI_ABORT_REQUEST) are ignored: the close that follows is what ends the stream.
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        registry.writabilityChanged(id, writable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.remove(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        registry.remove(id)
        context.close(promise: nil)
    }
}
