import Hummingbird
import Synchronization

/// Per-caller token buckets: each caller may make `burst` requests at once and `rate` per
/// second sustained; beyond that, 429 with `Retry-After`.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    private let clock = ContinuousClock()

    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(burst)
    }

    /// Takes a token for `key`; returns `nil` when allowed, else the seconds until one is free.
    func acquire(_ key: String) -> Int? {
        let now = clock.now
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + seconds * rate)
            bucket.updated = now
            defer {
                buckets[key] = bucket
                if buckets.count > 100_000 { buckets = buckets.filter { $0.value.tokens < burst } }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return Int(((1 - bucket.tokens) / rate).rounded(.up))
        }
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
                headers: [.retryAfter: String(max(1, retryAfter))])
        }
        return try await next(request, context)
    }
}
