// Turns hub events into the bytes every subscriber receives, once per worker: the SSE text of
// the event, already framed as an FCGI_STDOUT record for nginx's request id.
import HeraldProtocol
import NIOCore
import SSE

/// An event ready to be written to many streams.
struct FormattedEvent: Sendable {
    /// The global sequence number.
    let sequence: UInt64
    /// The channel it belongs to.
    let channel: String
    /// The SSE id (`epoch-sequence`), the event type and the data, for long-poll answers.
    let id: String
    let name: String
    let data: String
    /// SSE text for a stream on this channel alone (`event: delta`).
    let single: ByteBuffer
    /// `single` framed as FCGI_STDOUT for request id 1, the id nginx always uses.
    let singleRecord: ByteBuffer
    /// Whether the event changed its channel's state (a merge patch or a replacement, the
    /// hub's `stateEvent`): a fresh `init` later makes up for it, as for no plain event.
    var changesState = false

    /// SSE text for a stream on several channels (`event: <channel>:delta`). Made on demand:
    /// most events have no multi-channel listener, so it is not formatted up front.
    var multi: ByteBuffer { EventFormatter.sse(id: id, event: "\(channel):\(name)", data: data) }
    /// `multi` framed as FCGI_STDOUT for request id 1.
    var multiRecord: ByteBuffer { FastCGIRecords.stdout(requestID: 1, content: multi) }

    /// The framed bytes for a stream with `requestID`, on one or several channels.
    func record(requestID: UInt16, multiChannel: Bool) -> ByteBuffer {
        if requestID == 1 { return multiChannel ? multiRecord : singleRecord }
        return FastCGIRecords.stdout(requestID: requestID, content: multiChannel ? multi : single)
    }
}

/// Formats events, inits and stream prologues.
enum EventFormatter {
    /// Formats one hub event of `epoch`.
    static func format(_ event: HubEvent, epoch: Epoch) -> FormattedEvent {
        let id = EventID(epoch: epoch, sequence: event.sequence).description
        let single = sse(id: id, event: event.name, data: event.data)
        return FormattedEvent(
            sequence: event.sequence, channel: event.channel, id: id, name: event.name, data: event.data,
            single: single, singleRecord: FastCGIRecords.stdout(requestID: 1, content: single))
    }

    /// The `init` event of `channel` with `state` as of `sequence`.
    static func initEvent(channel: String, state: String, sequence: UInt64, epoch: Epoch, multiChannel: Bool)
        -> ByteBuffer
    {
        let id = EventID(epoch: epoch, sequence: sequence).description
        return sse(id: id, event: multiChannel ? "\(channel):init" : "init", data: state)
    }

    /// The CGI headers of an event stream and the first SSE bytes (`retry`).
    static func prologue(corsOrigin: String, retryMilliseconds: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        buffer.writeString(
            CGIResponseHead.encode(
                status: 200, headers: ["Content-Type: text/event-stream; charset=utf-8", "X-Accel-Buffering: no"],
                caching: .liveFeed, corsOrigin: corsOrigin))
        buffer.writeBytes(SSEEncoder.retry(milliseconds: retryMilliseconds))
        return buffer
    }

    /// The event that ends a stream whose subscriber token expired. Its data is never empty
    /// (an event with empty data is not dispatched by EventSource): the token's `exp`.
    static func tokenExpired(exp: Int64) -> ByteBuffer {
        ByteBuffer(bytes: SSEEncoder.encode(try! SSEEvent(event: "token-expired", data: "{\"exp\":\(exp)}")))
    }

    /// A heartbeat comment.
    static let ping: ByteBuffer = ByteBuffer(bytes: SSEEncoder.comment("ping"))

    static func sse(id: String, event: String, data: String) -> ByteBuffer {
        // The hub validated the event name; an id is digits, a dash and [0-9a-z]. Should either
        // ever hold a line break, the event goes out without that field rather than broken.
        let event = (try? SSEEvent(id: id, event: event, data: data)) ?? (try! SSEEvent(data: data))
        return ByteBuffer(bytes: SSEEncoder.encode(event))
    }
}
