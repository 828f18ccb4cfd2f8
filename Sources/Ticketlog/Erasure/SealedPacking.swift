import Foundation

/// Sealed fields kept raw in the stored body (issue 17). The canonical JSON spells each sealed
/// field's ciphertext in base64 (the chain and the Merkle leaves commit to that); stored that
/// way it costs a third more than the ciphertext, which LZ4 (no entropy coder) cannot take back.
/// A packed stored body replaces each such base64 run with `0x01`, its byte count as LEB128 and
/// the raw bytes; unpacking writes the same canonical base64 back, so the canonical JSON — and
/// every hash over it — is unchanged. Canonical JSON never holds a raw `0x01` (control characters
/// are escaped), so the marker is unambiguous; the codec column says a body is packed
/// (``BodyCodec/sealedPacked``).
enum SealedPacking {
    private static let marker: UInt8 = 0x01
    private static let opening = Array("\"\(SealedField.prefix)".utf8)

    /// `stored` with every sealed field's base64 packed; `nil` when it holds none.
    static func pack(_ stored: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var copied = 0
        var index = 0
        let count = stored.count
        while index + opening.count + 18 < count {
            guard stored[index] == opening[0], index > 0,
                [UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "[")].contains(stored[index - 1]),
                stored[index..<index + opening.count].elementsEqual(opening)
            else {
                index += 1
                continue
            }
            // `"sealed:v1:` + 16 characters of key id + `:` + base64 + `"`
            let idStart = index + opening.count
            guard stored[idStart + 16] == UInt8(ascii: ":") else {
                index += 1
                continue
            }
            let start = idStart + 17
            var end = start
            while end < count, stored[end] != UInt8(ascii: "\"") { end += 1 }
            guard end < count, end > start,
                let raw = canonicalBase64(String(decoding: stored[start..<end], as: UTF8.self))
            else {
                index += 1
                continue
            }
            if out.isEmpty { out.reserveCapacity(count) }
            out += stored[copied..<start]
            out.append(marker)
            BodyCodec.appendVarint(UInt64(raw.count), to: &out)
            out += raw
            copied = end
            index = end
        }
        guard copied > 0 else { return nil }
        out += stored[copied...]
        return out
    }

    /// The stored body of a packed one; `nil` when it is malformed.
    static func unpack(_ packed: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(packed.count + packed.count / 2)
        var index = 0
        while index < packed.count {
            guard let next = packed[index...].firstIndex(of: marker) else {
                out += packed[index...]
                break
            }
            out += packed[index..<next]
            let header = packed.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[(next + 1)...]) }
            guard let (length, size) = BodyCodec.readVarint(header), length <= UInt64(packed.count) else { return nil }
            let start = next + 1 + size
            let end = start + Int(length)
            guard end <= packed.count else { return nil }
            out += Array(Data(packed[start..<end]).base64EncodedString().utf8)
            index = end
        }
        return out
    }
}
