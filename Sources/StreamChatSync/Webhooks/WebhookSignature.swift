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
        let hex = signature.trimmingCharacters(in: .whitespaces)
        guard hex.utf8.count == SHA256.byteCount * 2, let expected = [UInt8](hexString: hex) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            expected, authenticating: Array(body), using: SymmetricKey(data: Data(secret.utf8)))
    }
}
