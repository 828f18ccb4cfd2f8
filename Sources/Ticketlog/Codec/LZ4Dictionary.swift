import CLZ4
import Foundation

/// An LZ4 dictionary loaded for compression and decompression of single event bodies.
///
/// Events are small (a few hundred bytes), so plain LZ4 barely compresses them (ratio ~1.06);
/// against a 64 KiB dictionary of typical events they shrink 3.4× with LZ4's fast compressor and
/// 4.5× with LZ4 HC (see ARCHITECTURE.md). Both write the same block format: any build decodes
/// either with `LZ4_decompress_safe_usingDict`.
///
/// The dictionary is loaded once into a template stream state; each compression copies the
/// template and compresses from the copy. This is the documented alternative to
/// `LZ4_attach_dictionary` / `LZ4_attach_HC_dictionary`, which Debian's shared liblz4 does not
/// export, and it is ~17× faster than loading the dictionary per event. The fast state is 16 KiB
/// (copied on the stack); the HC state is 256 KiB (its template is built on first use and the
/// copies are pooled): the copy is ~13 µs of the ~25 µs an HC compression costs.
final class LZ4Dictionary: @unchecked Sendable {
    // @unchecked Sendable: `content`, `template` and `compressionLevel` are written once in
    // `init` and only read afterwards (templates are copied, never compressed into); the HC
    // template and the pool of HC working states are created and handed out under `lock`, and a
    // working state is used by one caller at a time.

    /// The largest dictionary LZ4 can use.
    static let maximumSize = 64 * 1024

    let id: Int64
    let content: [UInt8]
    /// `0`: LZ4's fast compressor; `1...12`: LZ4 HC at that level.
    let compressionLevel: Int32
    private let contentBuffer: UnsafeMutableRawBufferPointer
    private let template: UnsafeMutablePointer<LZ4_stream_t>
    private let lock = NSLock()
    private var highTemplate: UnsafeMutablePointer<LZ4_streamHC_t>?
    private var idleHighStates: [UnsafeMutablePointer<LZ4_streamHC_t>] = []

    /// - Parameter compressionLevel: `0` (or less) for LZ4's fast compressor, `1...12` for LZ4 HC
    ///   (levels above 12 act as 12). Decompression does not depend on it.
    init(id: Int64, content: [UInt8], compressionLevel: Int = 0) {
        precondition(content.count <= Self.maximumSize, "LZ4 dictionaries hold at most 64 KiB")
        self.id = id
        self.content = content
        self.compressionLevel = Int32(max(0, min(compressionLevel, Int(LZ4HC_CLEVEL_MAX))))
        // The stream state keeps a pointer to the dictionary bytes: they need a stable address.
        contentBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(content.count, 1), alignment: 16)
        contentBuffer.copyBytes(from: content)
        template = UnsafeMutablePointer<LZ4_stream_t>.allocate(capacity: 1)
        LZ4_initStream(template, MemoryLayout<LZ4_stream_t>.size)
        LZ4_loadDict(template, contentBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(content.count))
    }

    deinit {
        template.deallocate()
        highTemplate?.deallocate()
        for state in idleHighStates { state.deallocate() }
        contentBuffer.deallocate()
    }

    /// Compresses `input` as one LZ4 block against this dictionary, appending it to `output`.
    /// Returns the number of bytes appended.
    @discardableResult
    func compress(_ input: [UInt8], appendingTo output: inout [UInt8]) -> Int {
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: bound))
        let written = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                let from = UnsafeRawPointer(source.baseAddress!).assumingMemoryBound(to: CChar.self)
                let to = UnsafeMutableRawPointer(destination.baseAddress! + start).assumingMemoryBound(to: CChar.self)
                return compressionLevel == 0
                    ? compressFast(from, count: input.count, into: to, capacity: bound)
                    : compressHigh(from, count: input.count, into: to, capacity: bound)
            }
        }
        // With a destination of `LZ4_compressBound` bytes, compression cannot fail.
        precondition(written > 0 || input.isEmpty, "LZ4 compression failed with a bound-sized buffer")
        output.removeLast(bound - written)
        return written
    }

    private func compressFast(
        _ source: UnsafePointer<CChar>, count: Int, into destination: UnsafeMutablePointer<CChar>, capacity: Int
    ) -> Int {
        withUnsafeTemporaryAllocation(of: LZ4_stream_t.self, capacity: 1) { state in
            state.baseAddress!.update(from: template, count: 1)
            return Int(
                LZ4_compress_fast_continue(state.baseAddress!, source, destination, Int32(count), Int32(capacity), 1))
        }
    }

    private func compressHigh(
        _ source: UnsafePointer<CChar>, count: Int, into destination: UnsafeMutablePointer<CChar>, capacity: Int
    ) -> Int {
        let (template, state) = takeHighState()
        defer { returnHighState(state) }
        state.update(from: template, count: 1)
        return Int(LZ4_compress_HC_continue(state, source, destination, Int32(count), Int32(capacity)))
    }

    /// The HC template (built on first use) and a working state of the pool.
    private func takeHighState() -> (
        template: UnsafeMutablePointer<LZ4_streamHC_t>, state: UnsafeMutablePointer<LZ4_streamHC_t>
    ) {
        lock.lock()
        defer { lock.unlock() }
        let template: UnsafeMutablePointer<LZ4_streamHC_t>
        if let built = highTemplate {
            template = built
        } else {
            template = .allocate(capacity: 1)
            LZ4_initStreamHC(template, MemoryLayout<LZ4_streamHC_t>.size)
            LZ4_resetStreamHC_fast(template, compressionLevel)  // sets the level; loadDictHC keeps it
            LZ4_loadDictHC(
                template, contentBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(content.count))
            highTemplate = template
        }
        return (template, idleHighStates.popLast() ?? .allocate(capacity: 1))
    }

    private func returnHighState(_ state: UnsafeMutablePointer<LZ4_streamHC_t>) {
        lock.lock()
        defer { lock.unlock() }
        if idleHighStates.count < 4 { idleHighStates.append(state) } else { state.deallocate() }
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
