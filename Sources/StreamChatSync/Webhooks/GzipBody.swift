import CZlib
import Ticketlog

/// Stream's compressed webhooks (`Content-Encoding: gzip`, signed over the inflated JSON).
/// Detected by the gzip magic bytes, not the header, as Stream's SDKs do: a proxy may have
/// inflated the body already.
enum GzipBody {
    static func isCompressed(_ body: [UInt8]) -> Bool { body.starts(with: [0x1f, 0x8b]) }

    /// Inflates a gzip body with system zlib.
    ///
    /// - Parameter limit: the most bytes the inflated body may have (a small body can inflate
    ///   to gigabytes).
    /// - Throws: ``StreamChatError`` (`unreadableWebhook`) when the body is not valid gzip or
    ///   inflates beyond `limit`.
    static func inflate(_ body: [UInt8], limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip wrapper, not zlib's.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw StreamChatError(.unreadableWebhook, "webhook body: zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var input = body
        let status: Int32 = input.withUnsafeMutableBufferPointer { input in
            stream.next_in = input.baseAddress
            stream.avail_in = uInt(input.count)
            while true {
                let result = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                output += chunk[0..<(chunk.count - Int(stream.avail_out))]
                if output.count > limit { return Z_BUF_ERROR }
                if result == Z_STREAM_END { return Z_STREAM_END }
                if result != Z_OK { return result }
                if stream.avail_in == 0 && stream.avail_out != 0 { return Z_DATA_ERROR }  // ended early
            }
        }
        switch status {
        case Z_STREAM_END:
            return output
        case Z_BUF_ERROR where output.count > limit:
            throw StreamChatError(.unreadableWebhook, "webhook body: inflates to more than \(limit) bytes")
        default:
            throw StreamChatError(.unreadableWebhook, "webhook body: not valid gzip (zlib status \(status))")
        }
    }
}
