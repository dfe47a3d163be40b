// One short HTTP/1.1 request and its whole response, on SwiftNIO (publish, preflight, status).
import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete HTTP response.
public struct HTTPResult: Sendable {
    /// The status code.
    public var status: Int
    /// The headers, names lowercased.
    public var headers: [String: String]
    /// The body as text.
    public var body: String
}

/// Sends single HTTP requests.
public enum HTTPExchange {
    /// Sends `method path` with `headers` and `body` to `host:port` and returns the response.
    public static func send(
        host: String = "127.0.0.1", port: Int, method: HTTPMethod, path: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPResult {
        let promise = group.next().makePromise(of: HTTPResult.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: host, port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)") }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }
}

/// Collects one response.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPResult>
    private var result = HTTPResult(status: 0, headers: [:], body: "")

    init(promise: EventLoopPromise<HTTPResult>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            result.status = Int(head.status.code)
            for (name, value) in head.headers { result.headers[name.lowercased()] = value }
        case .body(let buffer):
            result.body += String(buffer: buffer)
        case .end:
            promise.succeed(result)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.inputClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
