import Crypto
import Foundation
import Ticketlog

/// Stream's webhook signature: `X-Signature` is the lowercase hex of HMAC-SHA256 over the exact
/// raw request body (after gunzip when compressed), keyed with the API secret.
public enum WebhookSignature {
    /// The signature Stream would send for `body`.
    public static func sign(_ body: some DataProtocol, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body), using: SymmetricKey(data: Data(secret.utf8)))
        return Array(mac).hexString
    }

    /// Whether `signature` is `body`'s signature under `secret`. Compares in constant time (the
    /// HMAC library's comparison), so timing does not reveal how much of a forgery was right.
    public static func isValid(_ signature: String, for body: some DataProtocol, secret: String) -> Bool {
        guard let expected = bytes(hex: signature.trimmingCharacters(in: .whitespaces)) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            expected, authenticating: Array(body), using: SymmetricKey(data: Data(secret.utf8)))
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == SHA256.byteCount * 2 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(SHA256.byteCount)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
