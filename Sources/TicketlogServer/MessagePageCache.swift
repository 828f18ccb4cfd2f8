import NIOCore
import Synchronization
import Ticketlog

/// Pages of `GET /api/chat/tickets/{id}/messages` as they were sent, each under the content
/// mark (``TicketContentMark``) of the snapshot it was read in: the position of the ticket's
/// last event and the version of the log's erasures. A request whose caller may read the
/// ticket (checked every time, with the mark read in the same statement's snapshot) gets the
/// kept page when the mark is still the same — any post, edit, delete or erasure since moves
/// the mark, so a kept page is never older than what a read would answer. The page does not
/// depend on who asks (every caller allowed to read a ticket reads all of its messages), so
/// one copy serves every caller.
///
/// Erased content does not stay in memory either: the first mark that shows a newer erasure
/// drops every page kept under an older one (an erasure by another process or node is seen at
/// the next request to any ticket), and an erasure through this server's API drops every page
/// at once (``removeAll()``).
///
/// Bounded by bytes: past ``capacity`` the least recently used pages go first. Each page counts
/// its bytes plus ``entryOverhead``, so many tiny pages (a cursor past the end answers an empty
/// one) cannot grow the cache's own bookkeeping beyond the bound either.
final class MessagePageCache: Sendable {
    struct Key: Hashable, Sendable {
        var stream: StreamID
        var cursor: Int64?
        var backwards: Bool
        var limit: Int
    }

    private struct Entry {
        var mark: TicketContentMark
        var page: ByteBuffer
        var lastUse: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
        /// The newest `erasures` version a mark has shown.
        var erasures: Int64 = 0

        /// Drops the pages kept before the erasure a mark shows, if it is newer than any seen.
        mutating func forgetBefore(_ mark: TicketContentMark) {
            guard mark.erasures > erasures else { return }
            erasures = mark.erasures
            entries = entries.filter { $0.value.mark.erasures >= mark.erasures }
            bytes = entries.values.reduce(0) { $0 + MessagePageCache.cost($1.page) }
        }
    }

    /// The most bytes of pages kept.
    let capacity: Int
    /// What a kept page costs besides its bytes: its key, mark and place in the table.
    static let entryOverhead = 256
    private let state = Mutex(State())

    init(capacity: Int = 16 << 20) {
        self.capacity = capacity
    }

    /// The page kept for `key` under exactly `mark`; `nil` when there is none.
    func page(_ key: Key, mark: TicketContentMark?) -> ByteBuffer? {
        state.withLock { state in
            if let mark { state.forgetBefore(mark) }
            guard let mark, var entry = state.entries[key], entry.mark == mark else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            state.clock += 1
            entry.lastUse = state.clock
            state.entries[key] = entry
            return entry.page
        }
    }

    /// Keeps `page` for `key` under `mark` (nothing without a mark, or when the page alone is
    /// larger than a quarter of the capacity). A page kept under an older mark is replaced; one
    /// under a newer mark (another request read later) stays.
    func keep(_ page: ByteBuffer, for key: Key, mark: TicketContentMark?) {
        guard let mark, Self.cost(page) <= capacity / 4 else { return }
        state.withLock { state in
            state.forgetBefore(mark)
            guard mark.erasures >= state.erasures else { return }
            if let kept = state.entries[key] {
                guard kept.mark.lastPosition < mark.lastPosition || kept.mark.erasures < mark.erasures else { return }
                state.bytes -= Self.cost(kept.page)
            }
            state.clock += 1
            state.entries[key] = Entry(mark: mark, page: page, lastUse: state.clock)
            state.bytes += Self.cost(page)
            guard state.bytes > capacity else { return }
            // Down to three quarters, least recently used first: an eviction now and then
            // rather than one per page kept.
            for (key, entry) in state.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
                guard state.bytes > capacity / 4 * 3 else { break }
                state.entries[key] = nil
                state.bytes -= Self.cost(entry.page)
            }
        }
    }

    fileprivate static func cost(_ page: ByteBuffer) -> Int { page.readableBytes + entryOverhead }

    /// Drops every page (an erasure through this server: its plaintext leaves memory now, not
    /// at the next request).
    func removeAll() {
        state.withLock { state in
            state.entries.removeAll()
            state.bytes = 0
        }
    }

    /// Pages kept, what they cost (``entryOverhead`` included), and how many lookups found (or
    /// did not find) one.
    var statistics: (pages: Int, bytes: Int, hits: Int, misses: Int) {
        state.withLock { ($0.entries.count, $0.bytes, $0.hits, $0.misses) }
    }
}
