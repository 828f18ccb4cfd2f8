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
        stored.withUnsafeBytes { body -> [UInt8]? in
            var out: [UInt8] = []
            var copied = 0
            var index = 1
            let count = body.count
            let base = body.baseAddress!
            // A sealed field is a JSON string value: `"sealed:v1:` + 16 characters of key id + `:`
            // + base64 + `"`, after a `:` (an object member), `,` or `[` (an array element).
            while index + opening.count + 18 < count {
                guard let found = memchr(base + index, Int32(UInt8(ascii: "\"")), count - index - opening.count - 18)
                else { break }
                index = base.distance(to: UnsafeRawPointer(found))
                let before = body[index - 1]
                guard before == UInt8(ascii: ":") || before == UInt8(ascii: ",") || before == UInt8(ascii: "["),
                    memcmp(base + index, opening, opening.count) == 0,
                    body[index + opening.count + 16] == UInt8(ascii: ":")
                else {
                    index += 1
                    continue
                }
                let start = index + opening.count + 17
                guard let close = memchr(base + start, Int32(UInt8(ascii: "\"")), count - start),
                    case let end = base.distance(to: UnsafeRawPointer(close)), end > start,
                    let raw = Base64Bytes.decode(UnsafeRawBufferPointer(rebasing: body[start..<end]))
                else {
                    index += 1
                    continue
                }
                if out.isEmpty { out.reserveCapacity(count) }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[copied..<start]))
                out.append(marker)
                BodyCodec.appendVarint(UInt64(raw.count), to: &out)
                out += raw
                copied = end
                index = end
            }
            guard copied > 0 else { return nil }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[copied...]))
            return out
        }
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
            packed.withUnsafeBytes { Base64Bytes.encode(UnsafeRawBufferPointer(rebasing: $0[start..<end]), into: &out) }
            index = end
        }
        return out
    }
}
