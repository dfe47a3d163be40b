// What the hub link may do with the worker's streams, and nothing more: hand events and
// subscription answers to them, hear their counts per channel, have every stream subscribe
// again, ask for their figures, and drain them. The streams (StreamSet) implement it; the
// link never reaches into a registry.
import HeraldProtocol
import NIOCore

/// The worker's streams as the hub link sees them.
protocol LinkedStreams: Sendable {
    /// The event loop the hub link runs on (one of the streams' loops).
    var linkLoop: EventLoop { get }
    /// Open streams per channel, which the link reports to the hub.
    var occupancy: OccupancyCounter { get }
    /// Hands a batch of events to every stream, in order.
    func dispatch(_ events: [FormattedEvent])
    /// Hands the hub's answer to a subscription to stream `stream` of registry `registry`.
    func dispatchStart(
        registry: Int, stream: UInt64, epoch: Epoch, sequence: UInt64, replay: [FormattedEvent],
        snapshots: [ChannelSnapshot])
    /// Marks every stream as waiting for a new start, and calls `each` with every registry's
    /// streams (to subscribe them again), on the registry's loop.
    func awaitAll(_ each: @escaping @Sendable (_ registry: Int, _ streams: [(id: UInt64, channels: [String])]) -> Void)
    /// The worker's figures, with `hubLink` as the link's state.
    func stats(hubLink: String) -> EventLoopFuture<WorkerStats>
    /// Ends every stream with a jittered `retry`.
    func drainAll(retryMilliseconds: Int, jitterMilliseconds: Int) -> EventLoopFuture<Void>
}
