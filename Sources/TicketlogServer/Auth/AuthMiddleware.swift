import Foundation
import Hummingbird
import JWTKit
import Ticketlog

/// The claims of a caller's bearer token: HS256, `sub` (user id), `role`, `exp` required,
/// `iat` optional but not in the future, `nbf` optional and honoured.
struct CallerClaims: JWTPayload {
    var sub: SubjectClaim
    var role: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim?
    var nbf: NotBeforeClaim?

    /// Clocks differ a little; a token issued a minute "from now" is still fine.
    static let clockSkew: TimeInterval = 60

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        if let iat, iat.value.timeIntervalSinceNow > Self.clockSkew {
            throw JWTError.claimVerificationFailure(failedClaim: iat, reason: "issued in the future")
        }
        if let nbf, nbf.value.timeIntervalSinceNow > Self.clockSkew {
            throw JWTError.claimVerificationFailure(failedClaim: nbf, reason: "not valid yet")
        }
    }
}

/// Checks `Authorization: Bearer <JWT>` on every request it guards and puts the caller in the
/// context. Missing, malformed, wrongly signed, unsigned (`alg: none`), expired, future-dated,
/// not-yet-valid (`nbf`) tokens, tokens with critical header extensions (`crit`, none of which
/// this server implements), unknown roles and subjects that break the `TextRule` are refused
/// with 401.
struct AuthMiddleware: RouterMiddleware {
    let keys: JWTKeyCollection
    var verified = VerifiedTokens()

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Self.unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw Self.unauthorized("the Authorization header must be 'Bearer <token>'")
        }
        let (caller, expiresAt) = try await authenticate(String(parts[1]))
        return try await next(request, Self.context(context, caller: caller, expiresAt: expiresAt))
    }

    /// The caller a bearer token proves, and when the token expires; 401 otherwise. Shared with
    /// the WebSocket endpoint, whose clients send the token in their first message.
    func authenticate(_ token: String) async throws -> (Caller, Date) {
        if let known = verified.caller(of: token, at: Date()) { return known }
        // Only HS256 is accepted, whatever the key would verify: `alg: none`, other algorithms
        // and mislabelled tokens are refused before any verification.
        let tokenHeader = Self.header(of: token)
        guard tokenHeader?["alg"] as? String == "HS256" else {
            throw Self.unauthorized("the token must be signed with HS256")
        }
        // RFC 7515 §4.1.11: a recipient that does not understand an extension listed in `crit`
        // must refuse the token. This server understands none.
        guard tokenHeader?["crit"] == nil else {
            throw Self.unauthorized("the token lists critical header extensions (crit) this server does not implement")
        }
        let claims: CallerClaims
        do {
            claims = try await keys.verify(token, as: CallerClaims.self)
        } catch let error as JWTError {
            throw Self.unauthorized(Self.reason(error))
        } catch {
            throw Self.unauthorized("the token is not a valid JWT")
        }
        guard let role = Actor.Role(rawValue: claims.role), role != .system else {
            throw Self.unauthorized("the token's role '\(claims.role)' is not one of admin, agent, brand, creator")
        }
        if let problem = TextRule.problem(claims.sub.value, "the token's subject", limit: 255) {
            throw Self.unauthorized(problem)
        }
        let caller = Caller(id: claims.sub.value, role: role)
        verified.remember(
            token,
            .init(
                caller: caller, expiresAt: claims.exp.value,
                usableFrom: claims.nbf.map { $0.value.addingTimeInterval(-CallerClaims.clockSkew) }))
        return (caller, claims.exp.value)
    }

    private static func context(_ context: TicketlogRequestContext, caller: Caller, expiresAt: Date)
        -> TicketlogRequestContext
    {
        var context = context
        context.caller = caller
        context.callerTokenExpiry = expiresAt
        context.logger[metadataKey: "ticketlog.caller"] = "\(caller.id)"
        return context
    }

    /// A JWT's header, or `nil` when it is not readable.
    static func header(of token: String) -> [String: Any]? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthorized", message, headers: [.wwwAuthenticate: "Bearer"])
    }

    private static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure:
            if error.failedClaim is ExpirationClaim { return "the token has expired" }
            if error.failedClaim is IssuedAtClaim { return "the token was issued in the future" }
            if error.failedClaim is NotBeforeClaim { return "the token is not valid yet (nbf)" }
            return "a claim of the token does not hold"
        case .signatureVerificationFailed:
            return "the token's signature does not verify"
        case .missingKIDHeader, .unknownKID, .noKeyProvided:
            return "the token is not signed with a key this server accepts"
        default:
            return "the token is not valid (\(error.reason ?? "unreadable"))"
        }
    }
}
