/// How long to wait before sending a failed request again: what the server said when it said
/// (`X-RateLimit-Reset`), else exponential backoff with full jitter — `base × 2^(attempt−1)`,
/// at most `maximum`, times a random factor in `0...1` — so that many clients retrying at once
/// spread out. The one retry policy of the sync: the outbox state machine, re-drives and backfill.
public struct Backoff: Hashable, Sendable {
    /// Seconds before the first retry, at most (before jitter).
    public var base: Double
    /// Seconds between two tries, at most.
    public var maximum: Double

    public init(base: Double, maximum: Double) {
        self.base = base
        self.maximum = maximum
    }

    /// Seconds to wait before try `attempt + 1`, after `attempt` failed tries (1 or more).
    ///
    /// - Parameters:
    ///   - attempt: how many tries failed so far (1 after the first).
    ///   - random: a number in `0...1` (the jitter).
    ///   - serverSaid: the wait the server asked for, which wins when there is one.
    public func delay(afterAttempt attempt: Int, random: Double, serverSaid: Double? = nil) -> Double {
        // The server's wait is respected even beyond `maximum` (sooner would only be refused
        // again), up to an hour, whatever a header says.
        if let serverSaid { return min(3_600, max(0, serverSaid)) }
        let exponent = Double(1 << min(max(attempt - 1, 0), 30))
        return min(maximum, base * exponent) * min(max(random, 0), 1)
    }
}
