/// Turns canonical event bodies into stored blobs and back.
///
/// A stored body is `codec` (a column) plus `blob`:
/// - codec `0`: the canonical JSON as is (used before the first dictionary exists, and whenever
///   compression would not make the body smaller);
/// - codec `n > 0`: LZ4 block compressed against dictionary `n`; the blob starts with the raw
///   length as an unsigned LEB128 varint, followed by the LZ4 block.
/// - with ``sealedSeparate`` set on either: the body's sealed fields are packed
///   (``SealedPacking``) and their bytes kept apart: the blob is their count as a varint, the
///   skeleton encoded as above, then the bytes;
/// - with ``sealedPacked`` set on either (files written before ``sealedSeparate``): the body's
///   sealed fields are packed inline, to be unpacked after decompression.
enum BodyCodec {
    static let uncompressed: Int64 = 0
    /// The flag of a codec whose body has its sealed fields packed inline (issue 17).
    static let sealedPacked: Int64 = 1 << 40
    /// The flag of a codec whose body's sealed fields are packed with their bytes before the
    /// compressed skeleton (issue 17; what the writer makes).
    static let sealedSeparate: Int64 = 1 << 41
    /// Every flag; the bits below name the dictionary.
    static let flags: Int64 = sealedPacked | sealedSeparate

    /// The dictionary a codec names (0: none), without its flags.
    static func dictionaryID(_ codec: Int64) -> Int64 { codec & (sealedPacked - 1) }

    /// Whether a body of `codec` holds packed sealed fields.
    static func isSealed(_ codec: Int64) -> Bool { codec & flags != 0 }

    /// A packed body (``SealedPacking/pack(_:)``): `skeleton` compressed with `dictionary`,
    /// `sealed` after it as it is (LZ4 would only spend time on it).
    static func encodeSealed(_ packed: (skeleton: [UInt8], sealed: [UInt8]), dictionary: LZ4Dictionary?) -> (
        codec: Int64, blob: [UInt8]
    ) {
        let (codec, skeleton) = encode(packed.skeleton, dictionary: dictionary)
        var blob: [UInt8] = []
        blob.reserveCapacity(10 + skeleton.count + packed.sealed.count)
        appendVarint(UInt64(packed.sealed.count), to: &blob)
        blob += skeleton
        blob += packed.sealed
        return (codec | sealedSeparate, blob)
    }

    /// A ``sealedSeparate`` blob's parts: the encoded skeleton and the sealed fields' bytes.
    static func sealedParts(_ blob: UnsafeRawBufferPointer) -> (
        skeleton: UnsafeRawBufferPointer, sealed: UnsafeRawBufferPointer
    )? {
        guard let (count, size) = readVarint(blob), count <= UInt64(blob.count - size) else { return nil }
        let end = blob.count - Int(count)
        return (UnsafeRawBufferPointer(rebasing: blob[size..<end]), UnsafeRawBufferPointer(rebasing: blob[end...]))
    }

    /// The size of a compressed body before compression (its sealed fields' bytes included),
    /// from the first 20 bytes of its blob; `nil` when they do not say.
    static func rawCount(codec: Int64, prefix: UnsafeRawBufferPointer) -> Int64? {
        guard codec & sealedSeparate != 0 else { return readVarint(prefix).map { Int64($0.value) } }
        guard let (sealed, size) = readVarint(prefix),
            let (skeleton, _) = readVarint(UnsafeRawBufferPointer(rebasing: prefix[size...]))
        else { return nil }
        return Int64(sealed + skeleton)
    }
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
