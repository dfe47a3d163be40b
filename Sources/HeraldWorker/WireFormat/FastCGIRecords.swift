// The records a worker writes itself once a stream left libfcgi: FCGI_STDOUT (content at most
// 65535 bytes, padded to a multiple of 8) and FCGI_END_REQUEST. Layouts come from fastcgi.h.
import CFastCGI
import NIOCore

/// Builds FastCGI records into `ByteBuffer`s.
enum FastCGIRecords {
    /// The most content one record carries (FCGI_MAX_LENGTH).
    static let maxContentLength = Int(FCGI_MAX_LENGTH)

    /// Appends `content` as FCGI_STDOUT records for `requestID` (several if it exceeds 65535 bytes).
    static func writeStdout(requestID: UInt16, content: ByteBuffer, into out: inout ByteBuffer) {
        var remaining = content
        repeat {
            let length = min(remaining.readableBytes, maxContentLength)
            let chunk = remaining.readSlice(length: length)!
            writeHeader(type: FCGI_STDOUT, requestID: requestID, contentLength: length, into: &out)
            out.writeImmutableBuffer(chunk)
            out.writeRepeatingByte(0, count: padding(length))
        } while remaining.readableBytes > 0
    }

    /// `content` framed as FCGI_STDOUT records.
    static func stdout(requestID: UInt16, content: ByteBuffer) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: content.readableBytes + 16)
        writeStdout(requestID: requestID, content: content, into: &out)
        return out
    }

    /// The end of a response: an empty FCGI_STDOUT record, then FCGI_END_REQUEST (request complete).
    static func end(requestID: UInt16, appStatus: UInt32 = 0) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 24)
        writeHeader(type: FCGI_STDOUT, requestID: requestID, contentLength: 0, into: &out)
        var body = FCGI_EndRequestBody()
        body.appStatusB3 = UInt8(truncatingIfNeeded: appStatus >> 24)
        body.appStatusB2 = UInt8(truncatingIfNeeded: appStatus >> 16)
        body.appStatusB1 = UInt8(truncatingIfNeeded: appStatus >> 8)
        body.appStatusB0 = UInt8(truncatingIfNeeded: appStatus)
        body.protocolStatus = UInt8(FCGI_REQUEST_COMPLETE)
        writeHeader(
            type: FCGI_END_REQUEST, requestID: requestID, contentLength: MemoryLayout<FCGI_EndRequestBody>.size,
            into: &out)
        _ = withUnsafeBytes(of: &body) { out.writeBytes($0) }
        return out
    }

    /// Padding that brings `length` to a multiple of 8, as the specification recommends.
    static func padding(_ length: Int) -> Int { -length & 7 }

    private static func writeHeader(type: Int32, requestID: UInt16, contentLength: Int, into out: inout ByteBuffer) {
        var header = FCGI_Header()
        header.version = UInt8(FCGI_VERSION_1)
        header.type = UInt8(type)
        header.requestIdB1 = UInt8(requestID >> 8)
        header.requestIdB0 = UInt8(requestID & 0xFF)
        header.contentLengthB1 = UInt8(contentLength >> 8)
        header.contentLengthB0 = UInt8(contentLength & 0xFF)
        header.paddingLength = UInt8(padding(contentLength))
        _ = withUnsafeBytes(of: &header) { out.writeBytes($0) }
    }
}
