import CLZ4

/// An LZ4 dictionary loaded for compression and decompression of single event bodies.
///
/// Events are small (a few hundred bytes), so plain LZ4 barely compresses them (ratio ~1.06);
/// with a 64 KiB dictionary of typical events the ratio is ~2.4 (see ARCHITECTURE.md).
///
/// The dictionary is loaded once into a template `LZ4_stream_t`; each compression copies the
/// template into a stack buffer and compresses from there. This is the documented alternative to
/// `LZ4_attach_dictionary`, which Debian's shared liblz4 does not export, and it is ~17x faster
/// than calling `LZ4_loadDict` per event.
final class LZ4Dictionary: @unchecked Sendable {
    // @unchecked Sendable: `content` and `template` are written once in `init` and only read
    // afterwards (the template is copied, never compressed into), so sharing across threads is safe.

    /// The largest dictionary LZ4 can use.
    static let maximumSize = 64 * 1024

    let id: Int64
    let content: [UInt8]
    private let contentBuffer: UnsafeMutableRawBufferPointer
    private let template: UnsafeMutablePointer<LZ4_stream_t>

    init(id: Int64, content: [UInt8]) {
        precondition(content.count <= Self.maximumSize, "LZ4 dictionaries hold at most 64 KiB")
        self.id = id
        self.content = content
        // The stream state keeps a pointer to the dictionary bytes: they need a stable address.
        contentBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(content.count, 1), alignment: 16)
        contentBuffer.copyBytes(from: content)
        template = UnsafeMutablePointer<LZ4_stream_t>.allocate(capacity: 1)
        LZ4_initStream(template, MemoryLayout<LZ4_stream_t>.size)
        LZ4_loadDict(template, contentBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(content.count))
    }

    deinit {
        template.deallocate()
        contentBuffer.deallocate()
    }

    /// Compresses `input` as one LZ4 block against this dictionary, appending it to `output`.
    /// Returns the number of bytes appended.
    @discardableResult
    func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) -> Int {
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: bound))
        let written = withUnsafeTemporaryAllocation(of: LZ4_stream_t.self, capacity: 1) { state in
            state.baseAddress!.update(from: template, count: 1)
            return input.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { destination in
                    let target = UnsafeMutableRawPointer(destination.baseAddress! + start)
                    return Int(
                        LZ4_compress_fast_continue(
                            state.baseAddress!,
                            UnsafeRawPointer(source.baseAddress!).assumingMemoryBound(to: CChar.self),
                            target.assumingMemoryBound(to: CChar.self),
                            Int32(input.count), Int32(bound), 1))
                }
            }
        }
        // With a destination of `LZ4_compressBound` bytes, compression cannot fail.
        precondition(written > 0 || input.isEmpty, "LZ4 compression failed with a bound-sized buffer")
        output.removeLast(bound - written)
        return written
    }

    /// Decompresses one block of `compressedCount` bytes into exactly `rawCount` bytes.
    /// Returns `nil` when the block is damaged (LZ4 reads within bounds either way).
    func decompress(_ compressed: UnsafeRawBufferPointer, rawCount: Int) -> [UInt8]? {
        guard rawCount > 0 else { return compressed.isEmpty ? [] : nil }
        var result = [UInt8](repeating: 0, count: rawCount)
        let decoded = result.withUnsafeMutableBufferPointer { destination in
            Int(
                LZ4_decompress_safe_usingDict(
                    compressed.baseAddress?.assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(destination.baseAddress!).assumingMemoryBound(to: CChar.self),
                    Int32(compressed.count), Int32(rawCount),
                    contentBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(content.count)))
        }
        return decoded == rawCount ? result : nil
    }
}
