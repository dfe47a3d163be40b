// The hub's end of one worker's link: hello first, then subscriptions, publishes and stats
// answers. A malformed frame closes this one link and is logged; other workers carry on.
import HeraldProtocol
import Logging
import NIOCore

/// Handles the frames of one worker connection on the hub's event loop.
final class WorkerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = HubFrame
    typealias OutboundOut = ByteBuffer

    private let core: HubCore
    private var workerID: String?

    init(core: HubCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard workerID != nil else {
            guard case .hello(let version, let id, let epoch, let lastSequence) = frame else {
                refuse(context: context, "the first frame on the hub link must be hello")
                return
            }
            guard version == HubFrame.protocolVersion else {
                refuse(
                    context: context,
                    "hub link version \(version) is not supported (this hub speaks \(HubFrame.protocolVersion))")
                return
            }
            workerID = id
            core.workerJoined(WorkerSession(id: id, channel: context.channel), epoch: epoch, lastSequence: lastSequence)
            return
        }
        switch frame {
        case .subscribe(let request, let channels, let resumeAfter):
            if let caughtUp = core.waitBeforeSubscribe(resumeAfter: resumeAfter) {
                // Cluster mode, an id from another hub that this one has not read yet.
                let core = self.core
                let channel = context.channel
                caughtUp.assumeIsolated().whenComplete { _ in
                    var buffer = channel.allocator.buffer(capacity: 64)
                    core.subscribe(request: request, channelNames: channels, resumeAfter: resumeAfter)
                        .encode(into: &buffer)
                    channel.writeAndFlush(buffer, promise: nil)
                }
                return
            }
            send(core.subscribe(request: request, channelNames: channels, resumeAfter: resumeAfter), context: context)
        case .publish(let request, let publish):
            let channel = context.channel
            let core = self.core
            core.publish(publish).assumeIsolated().whenSuccess { result in
                // Many acknowledgements complete together (one journal sync): one flush for all.
                var buffer = channel.allocator.buffer(capacity: 32)
                HubFrame.published(request: request, result).encode(into: &buffer)
                core.flushes.write(buffer, to: channel)
            }
        case .statsReply(let request, let json):
            core.statsArrived(request: request, from: context.channel, json: json)
        case .hubStatsRequest(let request):
            let channel = context.channel
            core.gatherStats().whenSuccess { stats in
                var buffer = channel.allocator.buffer(capacity: 256)
                HubFrame.hubStatsReply(request: request, json: WorkerStatsJSON.encode(stats)).encode(into: &buffer)
                channel.writeAndFlush(buffer, promise: nil)
            }
        case .presenceRequest(let request, let channel):
            let json = WorkerStatsJSON.encode(core.presence(of: channel))
            send(.presenceReply(request: request, json: json), context: context)
        case .occupancy(let counts):
            core.occupancyArrived(from: context.channel, counts: counts)
        case .hello, .welcome, .subscribed, .event, .stateEvent, .published, .statsRequest, .failure, .drain,
            .hubStatsReply, .presenceReply:
            refuse(context: context, "unexpected frame from a worker: \(frame.kindName)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.workerLeft(channel: context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        core.logger.warning(
            "closing worker link after bad input",
            metadata: ["worker.id": "\(workerID ?? "?")", "error": "\(error)"])
        refuse(context: context, "\(error)")
    }

    private func send(_ frame: HubFrame, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        frame.encode(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func refuse(context: ChannelHandlerContext, _ message: String) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        HubFrame.failure(message: message).encode(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil)
        }
    }
}

extension HubFrame {
    /// The frame's case name, for log lines.
    var kindName: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .subscribe: "subscribe"
        case .subscribed: "subscribed"
        case .event: "event"
        case .stateEvent: "stateEvent"
        case .publish: "publish"
        case .published: "published"
        case .statsRequest: "statsRequest"
        case .statsReply: "statsReply"
        case .failure: "failure"
        case .drain: "drain"
        case .hubStatsRequest: "hubStatsRequest"
        case .hubStatsReply: "hubStatsReply"
        case .presenceRequest: "presenceRequest"
        case .presenceReply: "presenceReply"
        case .occupancy: "occupancy"
        }
    }
}
