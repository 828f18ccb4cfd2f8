import Foundation
import JWTKit
import Ticketlog

extension TicketlogServer {
    /// A caller token this server accepts: HS256 over `sub`, `role`, `iat` and `exp`, signed
    /// with `secret`. For development, tests and backends that mint their own.
    public static func callerToken(
        subject: String, role: Actor.Role, secret: String, lifetime: Duration = .seconds(3600), now: Date = Date()
    ) async throws -> String {
        guard secret.utf8.count >= 32 else {
            throw ConfigurationError(
                description: "the secret must be at least 32 bytes long (it is \(secret.utf8.count))")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims = CallerClaims(
            sub: SubjectClaim(value: subject), role: role.rawValue,
            exp: ExpirationClaim(value: now.addingTimeInterval(Double(lifetime.components.seconds))),
            iat: IssuedAtClaim(value: now))
        return try await keys.sign(claims)
    }
}
