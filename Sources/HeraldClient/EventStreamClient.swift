// An EventSource-like client on SwiftNIO: one HTTP/1.1 GET, the response head, then every SSE
// item as it arrives. Used by the live tests and the benchmark.
import NIOCore
import NIOHTTP1
import NIOPosix
import SSE

/// What an event stream delivers, in order.
public enum EventStreamPart: Sendable, Equatable {
    /// The response status and headers (names lowercased).
    case head(status: Int, headers: [String: String])
    /// An SSE item: event, comment or retry.
    case item(SSEParser.Item)
}

/// One open event stream.
public final class EventStreamConnection: Sendable {
    private let channel: Channel
    /// The parts of the response as they arrive; finishes when the server ends the stream.
    public let parts: AsyncThrowingStream<EventStreamPart, Error>

    private init(channel: Channel, parts: AsyncThrowingStream<EventStreamPart, Error>) {
        self.channel = channel
        self.parts = parts
    }

    /// Connects to `host:port` and sends `GET path` with `headers`.
    public static func open(
        host: String = "127.0.0.1", port: Int, path: String, headers: [(String, String)] = [],
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> EventStreamConnection {
        let (parts, continuation) = AsyncThrowingStream<EventStreamPart, Error>.makeStream()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(EventStreamHandler(continuation: continuation))
                }
            }
            .connect(host: host, port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return EventStreamConnection(channel: channel, parts: parts)
    }

    /// Closes the connection, as a browser tab that goes away does.
    public func close() async {
        try? await channel.close()
    }
}

/// Feeds the response body to an `SSEParser` and yields what it finds.
final class EventStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let continuation: AsyncThrowingStream<EventStreamPart, Error>.Continuation
    private var parser = SSEParser()

    init(continuation: AsyncThrowingStream<EventStreamPart, Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            continuation.yield(.head(status: Int(head.status.code), headers: headers))
        case .body(let buffer):
            for item in parser.feed(buffer.readableBytesView) { continuation.yield(.item(item)) }
        case .end:
            continuation.finish()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}
