import Crypto
import Foundation

/// Server-side authentication exactly as Stream's server SDKs do it: an HS256 JWT over
/// `{"server": true}` signed with the API secret, sent raw (no `Bearer `) in `Authorization`,
/// with `Stream-Auth-Type: jwt` and the API key as the `api_key` query parameter on every
/// request. Minted once and reused: it has no expiry.
public struct StreamChatAuth: Sendable {
    public let apiKey: String
    public let serverToken: String

    public init(apiKey: String, apiSecret: String) {
        self.apiKey = apiKey
        serverToken = Self.serverToken(secret: apiSecret)
    }

    /// Our `X-Stream-Client`; Stream echoes it as `request_info.sdk` in the webhooks our own
    /// requests cause, which is how membership echoes (that carry no message marker) are told apart.
    public static let clientName = "ticketlog-sync-0.1"

    /// The headers of every request.
    public var headers: [String: String] {
        [
            "Authorization": serverToken, "Stream-Auth-Type": "jwt", "Content-Type": "application/json",
            "X-Stream-Client": Self.clientName,
        ]
    }

    /// The query of every request.
    public var query: [String: String] { ["api_key": apiKey] }

    static func serverToken(secret: String) -> String {
        let header = base64url(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = base64url(Data(#"{"server":true}"#.utf8))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(header).\(payload)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "\(header).\(payload).\(base64url(Data(mac)))"
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
