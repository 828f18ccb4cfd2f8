import Foundation
import GRDB
import Synchronization

/// The content keys of an encrypted log (issue 17), in memory: the live key of each scope for
/// sealing, and every key by id for opening (`nil` once erased). Keys are unwrapped on first
/// use; a key made by this process stays pending until a committed transaction has written its
/// row.
package final class ContentKeyring: Sendable {
    private enum Entry {
        case wrapped([UInt8], ContentKeyScope)
        case open(ContentKey)
        case erased
    }

    private struct State {
        var byID: [String: Entry] = [:]
        var liveByScope: [ContentKeyScope: String] = [:]
        /// Keys made here whose rows are not written yet, wrapped when made (by the appending
        /// task, not the writer).
        var pending: [String: (key: ContentKey, wrapped: [UInt8])] = [:]
        /// The opened live key of each scope sealed with so far, and whether its row is still to
        /// be written: one lookup per sealed event.
        var sealing: [SealingScope: (key: ContentKey, isNew: Bool)] = [:]
        /// The version of the `erasures` stream this keyring has applied (``refresh(_:name:)``).
        var erasuresSeen: Int64 = 0
    }

    let master: MasterKey
    private let state = Mutex(State())
    /// One more for each ``erase(where:)`` and ``forget(_:)``: an append sealed when it was
    /// `n` holds no erased key while it is still `n` (the writer then skips its per-event check).
    private let erasures = Atomic(0)

    package init(master: MasterKey) {
        self.master = master
    }

    /// Creates the key table when missing.
    static func createTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS content_keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    subject TEXT NOT NULL,
                    stream TEXT NOT NULL,
                    period TEXT NOT NULL,
                    wrapped BLOB,
                    created_at INTEGER NOT NULL,
                    erased_at INTEGER
                ) STRICT;
                CREATE INDEX IF NOT EXISTS content_keys_by_subject ON content_keys(subject);
                CREATE INDEX IF NOT EXISTS content_keys_by_stream ON content_keys(stream);
                """)
    }

    /// Loads the key rows of the log (wrapped; nothing is unwrapped yet).
    func load(_ db: Database) throws {
        try load(SQLiteSession(db))
    }

    /// Loads the key rows of the log through either backend, and notes how many erasures it
    /// holds (``refresh(_:name:)``).
    package func load(_ session: any SQLSession) throws {
        let rows = try session.rows("SELECT id, subject, stream, period, wrapped FROM content_keys", [])
        let erasures = try Self.erasuresVersion(session)
        state.withLock { state in
            for row in rows {
                guard let id = row[0].text, let subject = row[1].text, let stream = row[2].text,
                    let period = row[3].text
                else { continue }
                let scope = ContentKeyScope(subject: subject, stream: stream, period: period)
                if let wrapped = row[4].blob {
                    state.byID[id] = .wrapped(wrapped, scope)
                    state.liveByScope[scope] = id
                } else {
                    state.byID[id] = .erased
                }
            }
            state.erasuresSeen = erasures
        }
    }

    /// The version of the `erasures` stream: one more for each erasure recorded.
    static func erasuresVersion(_ session: any SQLSession) throws -> Int64 {
        try session.value("SELECT version FROM streams WHERE name = ?", [.text(StreamID.erasures.rawValue)])
            .integer ?? 0
    }

    /// Catches up with what other processes sharing the log did since this keyring looked (on
    /// PostgreSQL, several nodes): refuses to go on when the master key was rotated under it,
    /// and forgets the keys erasures recorded since destroyed — so a node neither opens nor
    /// seals with a key another node erased. One small statement; the keys only when an erasure was
    /// recorded.
    package func refresh(_ session: any SQLSession, name: String) throws {
        let column = session.dialect == .sqlite ? "value" : "text"
        let row = try session.rows(
            """
            SELECT (SELECT \(column) FROM meta WHERE key = 'master_key_fingerprint'),
                   (SELECT version FROM streams WHERE name = ?)
            """, [.text(StreamID.erasures.rawValue)]
        ).first
        try catchUp(fingerprint: row?[0].text, erasures: row?[1].integer ?? 0, session, name: name)
    }

    /// ``refresh(_:name:)`` with the log's master key fingerprint and `erasures` stream version
    /// already read (by the writer, with the head lock).
    func catchUp(fingerprint stored: String?, erasures: Int64, _ session: any SQLSession, name: String) throws {
        if let stored, stored != master.fingerprint {
            throw EventStoreError(
                code: .masterKey,
                message:
                    "the master key of \(name) was rotated to \(stored) while this process held \(master.fingerprint): restart it with the new key. Nothing was written"
            )
        }
        guard erasures != state.withLock({ $0.erasuresSeen }) else { return }
        let erased = try session.rows("SELECT id FROM content_keys WHERE wrapped IS NULL", []).compactMap { $0[0].text }
        forget(Set(erased))
        state.withLock { $0.erasuresSeen = max($0.erasuresSeen, erasures) }
    }

    /// Writes the rows of the content keys `events` were sealed with that are not written yet
    /// (each once; without its wrapped key when it was erased meanwhile). Returns their ids.
    @discardableResult
    func writeRows(of events: [PreparedAppend.Event], now: Timestamp, _ session: any SQLSession) throws -> [String] {
        var seen = Set<String>()
        let keys = events.flatMap(\.newKeys).filter { seen.insert($0.id).inserted }
        guard !keys.isEmpty else { return [] }
        let written = rows(for: keys)
        for (key, wrapped) in written {
            try session.send(
                """
                INSERT INTO content_keys(id, subject, stream, period, wrapped, created_at)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
                """,
                [
                    .text(key.id), .text(key.scope.subject), .text(key.scope.stream), .text(key.scope.period),
                    wrapped.map(SQLValue.blob) ?? .null, .integer(now.microsecondsSinceEpoch),
                ])
        }
        return written.map(\.key.id)
    }

    /// `event` with its sealed fields opened; erased ones (their key destroyed) read as empty
    /// and set ``RecordedEvent/contentErased``. A key another process made since this keyring
    /// loaded is read from the log.
    func open(_ event: RecordedEvent, _ session: any SQLSession) throws -> RecordedEvent {
        var opened = event
        opened.payload = try event.payload.mappingPersonalFields { path, value in
            guard let id = SealedField.keyID(of: value).map(String.init) else { return value }
            var found = try openingKey(id)
            if found == nil,
                let row = try session.rows(
                    "SELECT subject, stream, period, wrapped FROM content_keys WHERE id = ?", [.text(id)]
                ).first, let subject = row[0].text, let stream = row[1].text, let period = row[2].text
            {
                learn(
                    id: id, scope: ContentKeyScope(subject: subject, stream: stream, period: period),
                    wrapped: row[3].blob)
                found = try openingKey(id)
            }
            guard let key = found else {
                throw EventStoreError.corrupt(
                    "the event at position \(event.position) is sealed with content key \(id), which the log does not hold",
                    position: event.position)
            }
            guard let key else {
                opened.contentErased = true
                return ""
            }
            do {
                return try SealedField.open(value, key: key, event: event.id, path: path)
            } catch {
                throw EventStoreError.corrupt("\(error)", position: event.position)
            }
        }
        return opened
    }

    /// A ``ContentKeyScope`` as sealing looks it up, every event: the month a number (year × 12
    /// + month), not spelled.
    struct SealingScope: Hashable {
        var subject: String
        var stream: String
        var month: Int64

        init(subject: String, stream: String, time: Timestamp) {
            let date = time.civil
            self.init(subject: subject, stream: stream, month: date.year * 12 + date.month)
        }

        init(subject: String, stream: String, month: Int64) {
            self.subject = subject
            self.stream = stream
            self.month = month
        }

        /// The lookup of a scope (its period `YYYY-MM` read back); `nil` for a period that is not one.
        init?(_ scope: ContentKeyScope) {
            guard let dash = scope.period.lastIndex(of: "-"), let year = Int64(scope.period[..<dash]),
                let month = Int64(scope.period[scope.period.index(after: dash)...])
            else { return nil }
            self.init(subject: scope.subject, stream: scope.stream, month: year * 12 + month)
        }
    }

    /// The key to seal content `subject` wrote in `stream` at `time` with (its scope:
    /// ``ContentKeyScope``), and whether its row is still to be written.
    func sealingKey(subject: String, stream: StreamID, time: Timestamp) throws -> (key: ContentKey, isNew: Bool) {
        let lookup = SealingScope(subject: subject, stream: stream.rawValue, time: time)
        return try state.withLock { state in
            if let sealing = state.sealing[lookup] { return sealing }
            let scope = ContentKeyScope(subject: subject, stream: stream, time: time)
            let found: (key: ContentKey, isNew: Bool)
            if let id = state.liveByScope[scope] {
                if let pending = state.pending[id] {
                    found = (pending.key, true)
                } else {
                    found = (try Self.opened(id, in: &state, master: master)!, false)
                }
            } else {
                let key = ContentKey.generate(for: scope)
                state.byID[key.id] = .open(key)
                state.liveByScope[scope] = key.id
                state.pending[key.id] = (key, try key.wrapped(by: master))
                found = (key, true)
            }
            state.sealing[lookup] = found
            return found
        }
    }

    /// The key with `id`: `nil` once erased; `.none` from the outer optional when this keyring
    /// has never heard of it (written by another process since it loaded).
    func openingKey(_ id: String) throws -> ContentKey?? {
        try state.withLock { state in
            guard state.byID[id] != nil else { return .none }
            return .some(try Self.opened(id, in: &state, master: master))
        }
    }

    /// How many times keys were erased or forgotten here so far (read before sealing an append,
    /// compared by the writer).
    var erasureGeneration: Int { erasures.load(ordering: .acquiring) }

    /// Whether an append sealed when ``erasureGeneration`` was `generation` may hold a key
    /// erased since (else none of its keys needs looking at).
    func mayHoldErasedKeys(sealedAt generation: Int) -> Bool {
        generation != erasureGeneration
    }

    /// Whether any event of `events`, sealed when ``erasureGeneration`` was `generation`, is
    /// sealed with a key erased since. Cheap while nothing was erased since.
    func holdsErasedKey(_ events: [PreparedAppend.Event], sealedAt generation: Int) -> Bool {
        mayHoldErasedKeys(sealedAt: generation) && events.contains { $0.sealedWith.map(isErased) == true }
    }

    /// Whether the key `id` was erased (`false` for a key this keyring has not heard of).
    func isErased(_ id: String) -> Bool {
        state.withLock { state in
            if case .erased = state.byID[id] { return true }
            return false
        }
    }

    /// The ids of the keys whose scope `matches` and that are not erased yet.
    func ids(where matches: (ContentKeyScope) -> Bool) -> [String] {
        state.withLock { state in
            state.byID.compactMap { id, entry in
                switch entry {
                case .wrapped(_, let scope): matches(scope) ? id : nil
                case .open(let key): matches(key.scope) ? id : nil
                case .erased: nil
                }
            }
        }
    }

    /// Learns a key row read from the file.
    func learn(id: String, scope: ContentKeyScope, wrapped: [UInt8]?) {
        state.withLock { state in
            guard state.byID[id] == nil else { return }
            state.byID[id] = wrapped.map { .wrapped($0, scope) } ?? .erased
        }
    }

    /// The rows of the keys among `keys` still to be written: wrapped, or without a wrapped key
    /// when the key was erased meanwhile.
    func rows(for keys: [ContentKey]) -> [(key: ContentKey, wrapped: [UInt8]?)] {
        state.withLock { state in
            keys.compactMap { key in
                guard let pending = state.pending[key.id] else { return nil }
                if case .erased = state.byID[key.id] { return (key, nil) }
                return (key, pending.wrapped)
            }
        }
    }

    /// The rows of `ids` are committed.
    func written(_ ids: some Sequence<String>) {
        state.withLock { state in
            for id in ids {
                guard let (key, _) = state.pending.removeValue(forKey: id) else { continue }
                if let lookup = SealingScope(key.scope) { state.sealing[lookup]?.isNew = false }
            }
        }
    }

    /// Forgets every key whose scope `matches`: they open nothing from now on, and a key whose
    /// row is not written yet is written without its wrapped key. Returns their ids.
    func erase(where matches: (ContentKeyScope) -> Bool) -> [String] {
        state.withLock { state in
            var erased: [String] = []
            for (id, entry) in state.byID {
                let scope: ContentKeyScope
                switch entry {
                case .wrapped(_, let wrappedScope): scope = wrappedScope
                case .open(let key): scope = key.scope
                case .erased: continue
                }
                guard matches(scope) else { continue }
                state.byID[id] = .erased
                erased.append(id)
            }
            state.liveByScope = state.liveByScope.filter { !matches($0.key) }
            state.sealing = state.sealing.filter { !matches($0.value.key.scope) }
            erasures.add(1, ordering: .releasing)
            return erased.sorted()
        }
    }

    /// Forgets the keys `ids` (destroyed by a replayed erasure).
    func forget(_ ids: Set<String>) {
        state.withLock { state in
            for id in ids { state.byID[id] = .erased }
            state.liveByScope = state.liveByScope.filter { !ids.contains($0.value) }
            state.sealing = state.sealing.filter { !ids.contains($0.value.key.id) }
            erasures.add(1, ordering: .releasing)
        }
    }

    private static func opened(_ id: String, in state: inout State, master: MasterKey) throws -> ContentKey? {
        switch state.byID[id] {
        case .open(let key): return key
        case .erased, nil: return nil
        case .wrapped(let wrapped, let scope):
            let key = try ContentKey.unwrap(wrapped, id: id, scope: scope, master: master)
            state.byID[id] = .open(key)
            return key
        }
    }
}
