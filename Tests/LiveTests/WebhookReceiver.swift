// A real HTTP server on a free loopback port that records every request it gets and answers
// each with the next status of a script (then 200): the occupancy webhooks' receiver.
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives webhooks over HTTP/1.1 on 127.0.0.1.
final class WebhookReceiver: Sendable {
    /// One request as it arrived.
    struct Received: Sendable {
        var path: String
        var headers: [String: String]
        var body: String
        var status: Int
        var at: Date
    }

    private struct Script {
        var statuses: [Int]
        var received: [Received] = []
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let script: NIOLockedValueBox<Script>
    private let server: NIOLockedValueBox<Channel?> = NIOLockedValueBox(nil)

    /// A receiver that answers its first requests with `statuses`, and 200 after them.
    init(statuses: [Int] = []) {
        script = NIOLockedValueBox(Script(statuses: statuses))
    }

    /// Starts listening; returns the port.
    func start() async throws -> Int {
        let receiver = self
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(RequestRecorder(receiver: receiver))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.withLockedValue { $0 = channel }
        return channel.localAddress!.port!
    }

    /// Every request so far, in arrival order.
    var received: [Received] { script.withLockedValue { $0.received } }

    /// Records a request and says which status it gets.
    fileprivate func record(path: String, headers: [String: String], body: String) -> Int {
        script.withLockedValue { script in
            let status = script.statuses.isEmpty ? 200 : script.statuses.removeFirst()
            script.received.append(Received(path: path, headers: headers, body: body, status: status, at: Date()))
            return status
        }
    }

    func stop() async {
        try? await server.withLockedValue { $0 }?.close()
        try? await group.shutdownGracefully()
    }
}

/// Collects one request's head and body, then answers it.
private final class RequestRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let receiver: WebhookReceiver
    private var head: HTTPRequestHead?
    private var body = ""

    init(receiver: WebhookReceiver) {
        self.receiver = receiver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ""
        case .body(var bytes):
            body += bytes.readString(length: bytes.readableBytes) ?? ""
        case .end:
            guard let head else { return }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let status = receiver.record(path: head.uri, headers: headers, body: body)
            var responseHeaders = HTTPHeaders()
            responseHeaders.add(name: "Content-Length", value: "0")
            context.write(
                wrapOutboundOut(
                    .head(
                        HTTPResponseHead(
                            version: head.version, status: .init(statusCode: status), headers: responseHeaders))),
                promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
