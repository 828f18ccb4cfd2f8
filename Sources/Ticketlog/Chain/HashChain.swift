import Crypto

/// The tamper-evident chain over the log: `h(n) = SHA-256(h(n-1) || position || version || body)`,
/// with position and version as 8-byte big-endian integers, `body` the canonical JSON of event
/// `n`, and `h(0)` 32 zero bytes.
///
/// Position and version are hashed although they are not in the body, so moving an event to
/// another place in the log or in its stream breaks the chain.
enum HashChain {
    static let genesis = [UInt8](repeating: 0, count: SHA256.byteCount)

    static func link(previous: [UInt8], position: Int64, version: Int64, body: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        // Through buffer pointers: `update(data:)` is generic over `DataProtocol`.
        previous.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: position.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: version.bigEndian) { hasher.update(bufferPointer: $0) }
        body.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }
}

extension [UInt8] {
    /// The bytes of hexadecimal text (either case, two digits a byte); `nil` for anything else.
    public init?(hexString text: some StringProtocol) {
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let digits = Array(text.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, as hashes and signatures are written.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
