import Foundation
import Synthetic
import Ticketlog

extension StreamEmulator {
    /// Faults as Stream's clients meet them, injected by ``StreamEmulator/serve(_:)``.
    public struct Faults: Sendable {
        /// The share of requests (0–100) that meet a fault. A third each: a 5xx before anything
        /// happens (a JSON `code -1` 500 or a load balancer's bare 503); a burst of 429s
        /// (`code 9`, `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset` the next second); the
        /// response lost after the change was made (the "already exists after a timeout" case).
        public var percent: Int
        /// Seconds to wait before each response, drawn evenly from this range (HTTP only).
        public var latency: ClosedRange<Double>
        /// Requests in a burst of 429s.
        public var burst: ClosedRange<Int>
        public var seed: UInt64

        public init(
            percent: Int = 0, latency: ClosedRange<Double> = 0...0, burst: ClosedRange<Int> = 1...4, seed: UInt64 = 1
        ) {
            self.percent = percent
            self.latency = latency
            self.burst = burst
            self.seed = seed
        }
    }

    /// What became of a request under ``faults``.
    public struct Served: Sendable {
        public var response: Response
        /// The request took effect but its response never reaches the client: the connection
        /// is cut (HTTP) or the in-process client throws.
        public var responseLost: Bool
        /// Seconds to wait before answering.
        public var delay: Double
    }

    /// Sets the faults to inject and restarts their seeded sequence.
    public mutating func inject(_ faults: Faults) {
        self.faults = faults
        random = SplitMix(seed: faults.seed)
        rateLimitedRequests = 0
    }

    /// Answers `request` like ``handle(_:)``, with ``faults`` injected.
    public mutating func serve(_ request: Request) -> Served {
        let delay = faults.latency.upperBound > 0 ? Double.random(in: faults.latency, using: &random) : 0
        if rateLimitedRequests > 0 {
            rateLimitedRequests -= 1
            return Served(response: tooManyRequests(), responseLost: false, delay: delay)
        }
        let roll = Int.random(in: 0..<100, using: &random)
        guard roll < faults.percent else { return Served(response: handle(request), responseLost: false, delay: delay) }
        switch roll % 3 {
        case 0:
            injected["5xx", default: 0] += 1
            let failure =
                roll % 2 == 0
                ? Self.withDuration(Self.error(500, code: -1, operation: "Request", "internal system error"))
                : Response(status: 503, body: .null, plainText: "503 Service Unavailable")
            return Served(response: failure, responseLost: false, delay: delay)
        case 1:
            injected["429", default: 0] += 1
            rateLimitedRequests = Int.random(in: faults.burst, using: &random) - 1
            return Served(response: tooManyRequests(), responseLost: false, delay: delay)
        default:
            injected["lost", default: 0] += 1
            return Served(response: handle(request), responseLost: true, delay: delay)
        }
    }

    private func tooManyRequests() -> Response {
        var response = Self.withDuration(
            Self.error(
                429, code: 9, operation: "Request", "Too many requests, check response headers for more information."))
        response.headers["X-RateLimit-Limit"] = String(rateLimitPerMinute)
        response.headers["X-RateLimit-Remaining"] = "0"
        response.headers["X-RateLimit-Reset"] = String(Int(now().timeIntervalSince1970) + 1)
        return response
    }
}
