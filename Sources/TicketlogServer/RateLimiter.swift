import Hummingbird
import Synchronization
import Ticketlog

/// Token buckets by key (a caller, a client address): each key may make `burst` requests at once
/// and `rate` per second sustained; beyond that, 429 with `Retry-After`.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameter now: the clock (a test moves its own instead of sleeping).
    init(rate: Double, burst: Int, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.rate = rate
        self.burst = Double(burst)
        self.now = now
    }

    /// Takes a token for `key`; returns `nil` when allowed, else the seconds until one is free.
    func acquire(_ key: String) -> Int? {
        let instant = self.now()
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: instant)
            let elapsed = instant - bucket.updated
            bucket.tokens = min(burst, bucket.tokens + elapsed.seconds * rate)
            bucket.updated = instant
            defer {
                buckets[key] = bucket
                if buckets.count > 100_000 { buckets = buckets.filter { $0.value.tokens < burst } }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return Self.seconds((1 - bucket.tokens) / rate)
        }
    }

    /// Whether `key` has no token left now (taking none): for refusing a request cheaply
    /// before doing the work that would cost one. Returns the seconds until one is free.
    func exhausted(_ key: String) -> Int? {
        let instant = self.now()
        return buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return nil }
            let elapsed = instant - bucket.updated
            let tokens = min(burst, bucket.tokens + elapsed.seconds * rate)
            return tokens >= 1 ? nil : Self.seconds((1 - tokens) / rate)
        }
    }

    /// Whole seconds to wait, at least 1 and at most a day, whatever the rate (a tiny rate must
    /// not overflow an `Int`).
    static func seconds(_ wait: Double) -> Int {
        guard wait.isFinite else { return 86_400 }
        return Int(min(86_400, max(1, wait.rounded(.up))))
    }
}

/// Applies the ``RateLimiter`` to authenticated callers (after ``AuthMiddleware``).
struct RateLimitMiddleware: RouterMiddleware {
    let limiter: RateLimiter

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        let caller = try context.requireCaller()
        if let retryAfter = limiter.acquire(caller.id) {
            throw APIError(
                .tooManyRequests, code: "rate_limited",
                "\(caller.id) made more than \(Int(limiter.burst)) requests in a burst; retry in \(retryAfter) s",
                headers: [.retryAfter: String(retryAfter)])
        }
        return try await next(request, context)
    }
}

/// The limit by client address on what comes without proof of who sent it (see
/// ``TicketlogServer/Configuration/anonymousRateLimit``). Requests to `/healthz`, `/metrics`,
/// `/openapi.yaml` and unknown paths take a token each; under `/api` and at `/webhooks/stream`,
/// only a failed authentication takes one (a 401, or a webhook refused as unreadable), so
/// callers and Stream with valid credentials are never limited by address. An address with no
/// token left is answered 429 before its token or signature is looked at.
struct AnonymousRateLimitMiddleware: RouterMiddleware {
    let limiter: RateLimiter?

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let limiter else { return try await next(request, context) }
        let address = context.clientAddress
        let path = request.uri.path
        let authenticated = path.hasPrefix("/api/") || path == "/webhooks/stream"
        if authenticated {
            if let retryAfter = limiter.exhausted(address) { throw Self.limited(address, retryAfter) }
            do {
                return try await next(request, context)
            } catch let error as HTTPResponseError
                where [.unauthorized, .badRequest, .contentTooLarge].contains(error.status)
            {
                if error.status == .unauthorized || path == "/webhooks/stream" { _ = limiter.acquire(address) }
                throw error
            }
        }
        if let retryAfter = limiter.acquire(address) { throw Self.limited(address, retryAfter) }
        return try await next(request, context)
    }

    static func limited(_ address: String, _ retryAfter: Int) -> APIError {
        APIError(
            .tooManyRequests, code: "rate_limited",
            "too many unauthenticated requests or failed authentications from \(address); retry in \(retryAfter) s",
            headers: [.retryAfter: String(retryAfter)])
    }
}

/// Compares a presented secret with the expected one in time that does not depend on where they
/// differ.
enum SecretComparison {
    static func equal(_ presented: String, _ expected: String) -> Bool {
        let a = Array(presented.utf8)
        let b = Array(expected.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<b.count {
            difference |= b[index] ^ (index < a.count ? a[index] : 0)
        }
        return difference == 0
    }
}
