/// Standard base64 (RFC 4648 §4, with padding) over bytes, for the hot paths that would
/// otherwise go through `Data` and `String`: sealing a field, packing a stored body. Decoding
/// accepts only the canonical spelling — the one ``encode(_:into:)`` writes — so a value has one
/// form and a flipped character is refused rather than read as other bytes.
enum Base64Bytes {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let padding = UInt8(ascii: "=")
    /// The 6-bit value of each byte; 0xFF for a byte outside the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    /// The number of characters `count` bytes encode to.
    static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Appends the base64 of `bytes` to `out`.
    static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let start = out.count
        let added = encodedCount(bytes.count)
        guard added > 0 else { return }
        out.append(contentsOf: repeatElement(0, count: added))
        out.withUnsafeMutableBufferPointer { buffer in encode(bytes, to: buffer.baseAddress! + start) }
    }

    /// Writes the base64 of `bytes` at `output`, which has room for ``encodedCount(_:)`` of them.
    static func encode(_ bytes: UnsafeRawBufferPointer, to output: UnsafeMutablePointer<UInt8>) {
        guard !bytes.isEmpty else { return }
        alphabet.withUnsafeBufferPointer { alphabet in
            var output = output
            var index = 0
            while index + 3 <= bytes.count {
                let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                output[0] = alphabet[Int(value >> 18)]
                output[1] = alphabet[Int(value >> 12 & 0x3F)]
                output[2] = alphabet[Int(value >> 6 & 0x3F)]
                output[3] = alphabet[Int(value & 0x3F)]
                output += 4
                index += 3
            }
            let rest = bytes.count - index
            guard rest > 0 else { return }
            let value = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output[0] = alphabet[Int(value >> 18)]
            output[1] = alphabet[Int(value >> 12 & 0x3F)]
            output[2] = rest == 2 ? alphabet[Int(value >> 6 & 0x3F)] : padding
            output[3] = padding
        }
    }

    /// The bytes `text` spells; `nil` unless it is canonical base64 (length a multiple of four,
    /// padding only at the end, unused bits zero).
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        var out: [UInt8] = []
        return decode(text, appendingTo: &out) ? out : nil
    }

    /// Appends the bytes `text` spells to `out`; false, with `out` unchanged, unless it is
    /// canonical base64.
    static func decode(_ text: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) -> Bool {
        guard text.count % 4 == 0 else { return false }
        guard text.count > 0 else { return true }
        let pad = text[text.count - 1] != padding ? 0 : text[text.count - 2] != padding ? 1 : 2
        let count = text.count / 4 * 3 - pad
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        let valid = out.withUnsafeMutableBufferPointer { buffer in
            values.withUnsafeBufferPointer { values in
                var output = buffer.baseAddress! + start
                let full = text.count - (pad == 0 ? 0 : 4)
                var bad: UInt8 = 0
                var index = 0
                while index < full {
                    let a = values[Int(text[index])]
                    let b = values[Int(text[index + 1])]
                    let c = values[Int(text[index + 2])]
                    let d = values[Int(text[index + 3])]
                    bad |= a | b | c | d
                    let value = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    output[0] = UInt8(truncatingIfNeeded: value >> 16)
                    output[1] = UInt8(truncatingIfNeeded: value >> 8)
                    output[2] = UInt8(truncatingIfNeeded: value)
                    output += 3
                    index += 4
                }
                if pad > 0 {
                    let a = values[Int(text[index])]
                    let b = values[Int(text[index + 1])]
                    bad |= a | b
                    output[0] = a << 2 | b >> 4
                    if pad == 2 {
                        // The last character's low four bits are unused: canonical base64 has them zero.
                        if b & 0x0F != 0 { bad |= 0xC0 }
                    } else {
                        let c = values[Int(text[index + 2])]
                        bad |= c
                        if c & 0x03 != 0 { bad |= 0xC0 }
                        output[1] = b << 4 | c >> 2
                    }
                }
                return bad & 0xC0 == 0
            }
        }
        if !valid { out.removeSubrange(start...) }
        return valid
    }
}
