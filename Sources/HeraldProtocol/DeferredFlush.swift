// Writes that leave together: channels written during one pass of an event loop are flushed
// once when the pass is over, so a burst of small messages (publish frames, acknowledgements,
// events) goes out as one write per channel instead of one each.
import NIOCore

/// The channels written in the current pass of `loop`, flushed when it ends. Owned by code on
/// that loop (not Sendable): call it only there.
public final class DeferredFlush {
    private let loop: EventLoop
    private var pending: [ObjectIdentifier: Channel] = [:]

    public init(loop: EventLoop) {
        self.loop = loop
    }

    /// Writes `buffer` to `channel`; the flush follows at the end of the pass.
    public func write(_ buffer: ByteBuffer, to channel: Channel) {
        channel.write(buffer, promise: nil)
        let first = pending.isEmpty
        pending[ObjectIdentifier(channel)] = channel
        guard first else { return }
        let flush = NIOLoopBound(self, eventLoop: loop)
        loop.execute { flush.value.flushAll() }
    }

    private func flushAll() {
        let channels = pending
        pending.removeAll(keepingCapacity: true)
        for channel in channels.values { channel.flush() }
    }
}
