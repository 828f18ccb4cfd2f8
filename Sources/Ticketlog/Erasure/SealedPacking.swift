import Foundation

/// Sealed fields kept raw in the stored body (issue 17). The canonical JSON spells each sealed
/// field's ciphertext in base64 (the chain and the Merkle leaves commit to that); stored that
/// way it costs a third more than the ciphertext, which LZ4 (no entropy coder) cannot take back.
/// Packing replaces each such base64 run with `0x01` and its byte count as LEB128, and keeps the
/// raw bytes apart: unpacking writes the same canonical base64 back, so the canonical JSON — and
/// every hash over it — is unchanged. Canonical JSON never holds a raw `0x01` (control characters
/// are escaped), so the marker is unambiguous.
///
/// Two layouts, named by the codec column:
/// - ``BodyCodec/sealedSeparate`` (what the writer makes): the ciphertexts, concatenated, before
///   the compressed skeleton (``BodyCodec/encodeSealed(_:dictionary:)``), so LZ4 never spends
///   time on bytes it cannot shrink;
/// - ``BodyCodec/sealedPacked`` (earlier files): each ciphertext inline behind its length, the
///   whole compressed together.
enum SealedPacking {
    private static let marker: UInt8 = 0x01
    private static let opening = Array("\"\(SealedField.prefix)".utf8)

    /// `stored` with every sealed field's base64 taken out (`skeleton`) and its raw bytes
    /// concatenated in order (`sealed`); `nil` when it holds none. `known`: fields the caller
    /// has just sealed: a run that spells one of them exactly takes its bytes instead of being
    /// decoded (any other run is decoded).
    static func pack(_ stored: [UInt8], known: [SealedField.Sealed] = []) -> (skeleton: [UInt8], sealed: [UInt8])? {
        let encodedStart = SealedField.prefix.utf8.count + 17
        /// Appends the bytes of the known field whose base64 is `run`; false when none is.
        func appendKnown(_ run: UnsafeRawBufferPointer, to sealed: inout [UInt8]) -> Bool {
            for field in known where field.value.utf8.count - encodedStart == run.count {
                let same = field.value.utf8.withContiguousStorageIfAvailable { value in
                    memcmp(value.baseAddress! + encodedStart, run.baseAddress!, run.count) == 0
                }
                if same == true {
                    sealed += field.ciphertext
                    return true
                }
            }
            return false
        }
        return stored.withUnsafeBytes { body -> (skeleton: [UInt8], sealed: [UInt8])? in
            var skeleton: [UInt8] = []
            var sealed: [UInt8] = []
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
                    case let before = sealed.count,
                    case let run = UnsafeRawBufferPointer(rebasing: body[start..<end]),
                    appendKnown(run, to: &sealed) || Base64Bytes.decode(run, appendingTo: &sealed)
                else {
                    index += 1
                    continue
                }
                if skeleton.isEmpty { skeleton.reserveCapacity(count / 2) }
                skeleton.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[copied..<start]))
                skeleton.append(marker)
                BodyCodec.appendVarint(UInt64(sealed.count - before), to: &skeleton)
                copied = end
                index = end
            }
            guard copied > 0 else { return nil }
            skeleton.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[copied...]))
            return (skeleton, sealed)
        }
    }

    /// The stored body of a skeleton whose sealed fields' bytes are `sealed`, in order; `nil`
    /// when they do not match (a length beyond them, or bytes left over).
    static func unpack(_ skeleton: [UInt8], sealed: UnsafeRawBufferPointer) -> [UInt8]? {
        var taken = 0
        let body = walk(skeleton) { _, length in
            guard length <= sealed.count - taken else { return nil }
            defer { taken += length }
            return (UnsafeRawBufferPointer(rebasing: sealed[taken..<taken + length]), 0)
        }
        return taken == sealed.count ? body : nil
    }

    /// The stored body of an inline-packed one (``BodyCodec/sealedPacked``); `nil` when it is
    /// malformed.
    static func unpack(inline packed: [UInt8]) -> [UInt8]? {
        packed.withUnsafeBytes { bytes in
            walk(packed) { start, length in
                guard length <= bytes.count - start else { return nil }
                return (UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]), length)
            }
        }
    }

    /// `packed` copied with each marker and length replaced by the base64 of the bytes
    /// `take(offset after the length, length)` gives, which also says how many bytes of `packed`
    /// after the length they occupy; `nil` when a length is unreadable or `take` refuses.
    private static func walk(
        _ packed: [UInt8], take: (Int, Int) -> (bytes: UnsafeRawBufferPointer, inline: Int)?
    ) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(packed.count + packed.count / 2)
        var index = 0
        while index < packed.count {
            guard let next = packed[index...].firstIndex(of: marker) else {
                out += packed[index...]
                break
            }
            out += packed[index..<next]
            let header = packed.withUnsafeBytes {
                BodyCodec.readVarint(UnsafeRawBufferPointer(rebasing: $0[(next + 1)...]))
            }
            guard let (length, size) = header, length <= UInt64(Int32.max),
                let (bytes, inline) = take(next + 1 + size, Int(length))
            else { return nil }
            Base64Bytes.encode(bytes, into: &out)
            index = next + 1 + size + inline
        }
        return out
    }
}
