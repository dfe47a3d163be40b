// One stream's bytes on their way to nginx. While nothing waits in the channel's queue, a write
// is one send(2) straight to the socket: no trip down the pipeline, no promise, no flush. Only
// what the socket does not take at once goes to the channel, whose high-water mark (the
// queued-bytes bound) then says when the client is too far behind; later writes queue behind it
// until the channel has written it all, so bytes never overtake each other. Owned by the
// stream's event loop; every method runs there.
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes to one stream's socket: directly while the socket takes them, through the channel
/// for the rest.
final class StreamOutput {
    /// What became of a write.
    enum Outcome {
        /// In the socket's buffer.
        case sent
        /// (Partly) waiting in the channel's queue.
        case queued
        /// The peer is gone (EPIPE, ECONNRESET): the caller closes the stream.
        case failed
    }

    let channel: Channel
    /// The socket, written directly; nil for a channel without one (EmbeddedChannel in tests),
    /// which gets every write through its pipeline.
    private let fd: Int32?
    /// Writes handed to the channel and not yet written out.
    private(set) var queuedWrites = 0

    init(channel: Channel, fd: Int32?) {
        self.channel = channel
        self.fd = fd
    }

    /// Sends `bytes` after everything written before.
    func write(_ bytes: ByteBuffer) -> Outcome {
        guard queuedWrites == 0, let fd else {
            queue(bytes)
            return .queued
        }
        let written = Self.send(bytes, to: fd)
        if written == bytes.readableBytes { return .sent }
        guard written >= 0 else { return .failed }
        queue(bytes.getSlice(at: bytes.readerIndex + written, length: bytes.readableBytes - written)!)
        return .queued
    }

    private func queue(_ bytes: ByteBuffer) {
        queuedWrites += 1
        channel.writeAndFlush(bytes).assumeIsolated().whenComplete { [self] _ in queuedWrites -= 1 }
    }

    /// The bytes of `bytes` the socket took before it would block, or -1 if the peer is gone.
    private static func send(_ bytes: ByteBuffer, to fd: Int32) -> Int {
        bytes.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n > 0 {
                    offset += n
                } else if n == 0 || errno == EAGAIN || errno == EWOULDBLOCK {
                    return offset
                } else if errno != EINTR {
                    return -1
                }
            }
            return offset
        }
    }
}
