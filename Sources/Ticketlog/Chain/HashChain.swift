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
        hasher.update(data: previous)
        withUnsafeBytes(of: position.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: version.bigEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(data: body)
        return Array(hasher.finalize())
    }
}

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, as hashes and signatures are written.
    public var hexString: String {
        map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }
}
