import Foundation
import JWTKit
import Synchronization

/// Mints Stream Chat user tokens: HS256 JWTs with `user_id`, `iat` and (when a lifetime is
/// configured) `exp`, signed with the Stream API secret, as Stream's server SDKs make them.
/// A user's token is reused until it has less than a tenth of its lifetime left.
final class ChatTokenIssuer: Sendable {
    /// Times in whole seconds since 1970, as Stream's SDKs write them.
    struct Claims: JWTPayload {
        var userID: String
        var iat: Int
        var exp: Int?

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case iat, exp
        }

        func verify(using algorithm: some JWTAlgorithm) async throws {
            if let exp, exp < Int(Date().timeIntervalSince1970) {
                throw JWTError.claimVerificationFailure(
                    failedClaim: ExpirationClaim(value: Date(timeIntervalSince1970: Double(exp))), reason: "expired")
            }
        }
    }

    private let keys = JWTKeyCollection()
    private let lifetime: TimeInterval?
    private let cache = Mutex<[String: (token: String, renewAfter: Date)]>([:])

    init(secret: String, lifetime: Duration?) async {
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.lifetime = lifetime.map { Double($0.components.seconds) }
    }

    func token(for user: String, now: Date = Date()) async throws -> String {
        if let cached = cache.withLock({ $0[user] }), cached.renewAfter > now { return cached.token }
        // Back-dated a little: Stream refuses tokens "used before issued at" (error 42).
        let issued = now.addingTimeInterval(-5)
        let claims = Claims(
            userID: user, iat: Int(issued.timeIntervalSince1970),
            exp: lifetime.map { Int(issued.addingTimeInterval($0).timeIntervalSince1970) })
        let token = try await keys.sign(claims)
        let renewAfter = lifetime.map { issued.addingTimeInterval($0 * 0.9) } ?? .distantFuture
        cache.withLock { $0[user] = (token, renewAfter) }
        return token
    }
}
