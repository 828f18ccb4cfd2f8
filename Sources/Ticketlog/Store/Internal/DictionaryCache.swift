import Foundation
import GRDB
import Synchronization

/// The LZ4 dictionaries of a file, loaded once: dictionaries are immutable, so a cached one is
/// never stale. The newest is the one new events are compressed with.
final class DictionaryCache: Sendable {
    private struct State {
        var byID: [Int64: LZ4Dictionary]
        var current: LZ4Dictionary?
    }

    private let state: Mutex<State>
    /// The compression level of every dictionary this cache makes (``LZ4Dictionary``).
    let compressionLevel: Int

    init(_ dictionaries: [LZ4Dictionary], compressionLevel: Int) {
        self.compressionLevel = compressionLevel
        let byID = Dictionary(uniqueKeysWithValues: dictionaries.map { ($0.id, $0) })
        state = Mutex(State(byID: byID, current: dictionaries.max { $0.id < $1.id }))
    }

    /// The dictionary new events are compressed with; `nil` before the first one exists.
    var current: LZ4Dictionary? { state.withLock { $0.current } }

    /// Dictionary `id`, loaded from `db` when another process added it after this one started.
    func dictionary(_ id: Int64, in db: Database) throws -> LZ4Dictionary? {
        if let cached = state.withLock({ $0.byID[id] }) { return cached }
        guard
            let content = try Data.fetchOne(db, sql: "SELECT content FROM dictionaries WHERE id = ?", arguments: [id]),
            content.count <= LZ4Dictionary.maximumSize
        else { return nil }
        let dictionary = LZ4Dictionary(id: id, content: Array(content), compressionLevel: compressionLevel)
        state.withLock { $0.byID[id] = dictionary }
        return dictionary
    }

    /// Makes `dictionary` known and the one new events use.
    func install(_ dictionary: LZ4Dictionary) {
        state.withLock { state in
            state.byID[dictionary.id] = dictionary
            if (state.current?.id ?? 0) < dictionary.id { state.current = dictionary }
        }
    }

    static func fetchAll(_ db: Database, compressionLevel: Int) throws -> [LZ4Dictionary] {
        try LogTables(SQLiteSession(db)).dictionaries(compressionLevel: compressionLevel).values.sorted {
            $0.id < $1.id
        }
    }
}
