import Foundation
import Synchronization

/// Tokens whose signature and claims verified, by their exact text, so that a caller's next
/// request with the same token skips the header parse, the HMAC and the claims' JSON (about 6%
/// of a `POST …/messages`' CPU). The text includes the signature: a hit is the same bytes that
/// verified. Only the time claims can change their answer, so they are checked again on every
/// hit; failures are never kept. At most `capacity` tokens; when full, the cache starts over.
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        var caller: Caller
        var expiresAt: Date
        /// `nbf` less the allowed clock skew: the token is refused before it.
        var usableFrom: Date?
    }

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 4_096) {
        self.capacity = max(1, capacity)
    }

    /// The caller of `token` if it verified before and is within its times at `now`.
    func caller(of token: String, at now: Date) -> (caller: Caller, expiresAt: Date)? {
        guard let entry = entries.withLock({ $0[token] }) else { return nil }
        guard now < entry.expiresAt, entry.usableFrom.map({ now >= $0 }) ?? true else {
            entries.withLock { _ = $0.removeValue(forKey: token) }
            return nil
        }
        return (entry.caller, entry.expiresAt)
    }

    func remember(_ token: String, _ entry: Entry) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = entry
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
