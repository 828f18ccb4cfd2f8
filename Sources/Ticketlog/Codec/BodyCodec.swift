/// Turns canonical event bodies into stored blobs and back.
///
/// A stored body is `codec` (a column) plus `blob`:
/// - codec `0`: the canonical JSON as is (used before the first dictionary exists, and whenever
///   compression would not make the body smaller);
/// - codec `n > 0`: LZ4 block compressed against dictionary `n`; the blob starts with the raw
///   length as an unsigned LEB128 varint, followed by the LZ4 block.
/// - with ``sealedPacked`` set on either: the body's sealed fields are packed
///   (``SealedPacking``), to be unpacked after decompression.
enum BodyCodec {
    static let uncompressed: Int64 = 0
    /// The flag of a codec whose body has its sealed fields packed (issue 17).
    static let sealedPacked: Int64 = 1 << 40

    /// The dictionary a codec names (0: none), without its flags.
    static func dictionaryID(_ codec: Int64) -> Int64 { codec & (sealedPacked - 1) }
    /// No event body may decompress to more than this: a guard against corrupt length prefixes.
    static let maximumRawSize = 16 * 1024 * 1024

    static func encode(_ canonical: [UInt8], dictionary: LZ4Dictionary?) -> (codec: Int64, blob: [UInt8]) {
        guard let dictionary else { return (uncompressed, canonical) }
        var blob: [UInt8] = []
        blob.reserveCapacity(canonical.count / 2 + 8)
        appendVarint(UInt64(canonical.count), to: &blob)
        dictionary.compress(canonical, appendingTo: &blob)
        if blob.count >= canonical.count { return (uncompressed, canonical) }
        return (dictionary.id, blob)
    }

    /// Decodes a stored blob. `dictionary` must be the dictionary named by `codec` (nil for 0).
    static func decode(
        codec: Int64, blob: UnsafeRawBufferPointer, dictionary: LZ4Dictionary?, position: Int64?
    ) throws(EventStoreError) -> [UInt8] {
        if codec == uncompressed { return Array(blob) }
        guard let dictionary, dictionary.id == codec else {
            throw .corrupt("body refers to LZ4 dictionary \(codec), which the file does not hold", position: position)
        }
        guard let (rawCount, headerSize) = readVarint(blob), rawCount > 0, rawCount <= UInt64(maximumRawSize) else {
            throw .corrupt("compressed body has an invalid length prefix", position: position)
        }
        let block = UnsafeRawBufferPointer(rebasing: blob[headerSize...])
        guard let raw = dictionary.decompress(block, rawCount: Int(rawCount)) else {
            throw .corrupt("compressed body is damaged (LZ4 block does not decode)", position: position)
        }
        return raw
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func readVarint(_ bytes: UnsafeRawBufferPointer) -> (value: UInt64, size: Int)? {
        var value: UInt64 = 0
        for (index, byte) in bytes.prefix(10).enumerated() {
            value |= UInt64(byte & 0x7f) << (7 * UInt64(index))
            if byte & 0x80 == 0 { return (value, index + 1) }
        }
        return nil
    }
}
