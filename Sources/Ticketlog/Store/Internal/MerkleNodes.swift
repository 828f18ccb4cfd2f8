import Foundation
import GRDB

/// What the file keeps of the Merkle tree (ARCHITECTURE.md, "Merkle tree and checkpoints"): the
/// right edge in `meta` (`tree_edge`, committed with the events) and the root of every complete
/// subtree of at least 2^``storedLevel`` leaves in `merkle_nodes`. Everything below that is
/// recomputed from the events when a proof needs it. `merkle_leaf_hints` keeps the first bytes of
/// each leaf hash of every complete tile: not part of any proof, a pointer to the changed event
/// inside a tile a checkpoint shows changed.
enum MerkleNodes {
    /// The lowest level whose complete subtrees are stored: tiles of 64 leaves (about one byte
    /// per event in all).
    static let storedLevel = 6

    /// Creates the tables of the tree and of the signed checkpoints when missing (a format-2 file
    /// written before them gets them on its first writable opening).
    static func createTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS merkle_nodes (
                    level INTEGER NOT NULL,
                    idx INTEGER NOT NULL,
                    hash BLOB NOT NULL,
                    PRIMARY KEY (level, idx)
                ) WITHOUT ROWID, STRICT;
                CREATE TABLE IF NOT EXISTS checkpoints (
                    size INTEGER NOT NULL,
                    key_id INTEGER NOT NULL,
                    signed_at INTEGER NOT NULL,
                    note TEXT NOT NULL,
                    verifier TEXT NOT NULL,
                    PRIMARY KEY (size, key_id)
                ) STRICT;
                CREATE TABLE IF NOT EXISTS merkle_leaf_hints (
                    tile INTEGER PRIMARY KEY,
                    hints BLOB NOT NULL
                ) STRICT;
                CREATE TRIGGER IF NOT EXISTS merkle_leaf_hints_are_immutable_update BEFORE UPDATE ON merkle_leaf_hints
                BEGIN SELECT RAISE(ABORT, 'ticketlog Merkle leaf hints are immutable: UPDATE refused'); END;
                CREATE TRIGGER IF NOT EXISTS merkle_leaf_hints_are_immutable_delete BEFORE DELETE ON merkle_leaf_hints
                BEGIN SELECT RAISE(ABORT, 'ticketlog Merkle leaf hints are immutable: DELETE refused'); END;
                CREATE TRIGGER IF NOT EXISTS merkle_nodes_are_immutable_update BEFORE UPDATE ON merkle_nodes
                BEGIN SELECT RAISE(ABORT, 'ticketlog Merkle nodes are immutable: UPDATE refused'); END;
                CREATE TRIGGER IF NOT EXISTS merkle_nodes_are_immutable_delete BEFORE DELETE ON merkle_nodes
                BEGIN SELECT RAISE(ABORT, 'ticketlog Merkle nodes are immutable: DELETE refused'); END;
                CREATE TRIGGER IF NOT EXISTS checkpoints_are_immutable_update BEFORE UPDATE ON checkpoints
                BEGIN SELECT RAISE(ABORT, 'ticketlog checkpoints are immutable: UPDATE refused'); END;
                CREATE TRIGGER IF NOT EXISTS checkpoints_are_immutable_delete BEFORE DELETE ON checkpoints
                BEGIN SELECT RAISE(ABORT, 'ticketlog checkpoints are immutable: DELETE refused'); END;
                """)
    }

    // Each step is written once, over the storage boundary (``SQLSession``); the `Database`
    // forms are the SQLite writer's and readers' entry points.

    /// The right edge as the last commit saved it; `nil` when the log has none yet.
    static func storedEdge(_ db: Database) throws -> MerkleEdge? {
        try storedEdge(SQLiteSession(db))
    }

    static func storedEdge(_ session: any SQLSession) throws -> MerkleEdge? {
        try edge(try LogTables(session).meta("tree_edge"))
    }

    /// The right edge stored as `value` (meta `tree_edge`); `nil` when there is none.
    static func edge(_ value: SQLValue) throws -> MerkleEdge? {
        guard let bytes = value.blob else { return nil }
        guard let edge = MerkleEdge(bytes: bytes) else {
            throw EventStoreError.corrupt("the log's Merkle tree edge (meta tree_edge) is damaged", position: nil)
        }
        return edge
    }

    static func save(_ edge: MerkleEdge, _ db: Database) throws {
        try save(edge, SQLiteSession(db))
    }

    static func save(_ edge: MerkleEdge, _ session: any SQLSession) throws {
        try LogTables(session).setMeta("tree_edge", .blob(edge.bytes))
    }

    /// Adds `leaf` to `edge`, storing the subtrees it completes (64 leaves and more) and the
    /// hints of the tile it completes.
    static func append(_ leaf: [UInt8], to edge: inout MerkleEdge, _ db: Database) throws {
        try append(leaf, to: &edge, SQLiteSession(db))
    }

    static func append(_ leaf: [UInt8], to edge: inout MerkleEdge, _ session: any SQLSession) throws {
        let hints = try edge.append(leaf) { level, index, hash in
            if level >= storedLevel { try insert(level: level, index: index, hash: hash, session) }
        }
        if let hints {
            try session.send(
                "INSERT INTO merkle_leaf_hints(tile, hints) VALUES (?, ?)",
                [.integer(edge.size / MerkleEdge.hintTile - 1), .blob(hints)])
        }
    }

    /// The stored hints of tile `tile` (its leaves' first bytes), when there is a row of the
    /// right length.
    static func hints(tile: Int64, _ db: Database) throws -> [UInt8]? {
        guard try db.tableExists("merkle_leaf_hints") else { return nil }
        return try hints(tile: tile, SQLiteSession(db))
    }

    static func hints(tile: Int64, _ session: any SQLSession) throws -> [UInt8]? {
        let hints = try session.value("SELECT hints FROM merkle_leaf_hints WHERE tile = ?", [.integer(tile)]).blob
        guard let hints, hints.count == Int(MerkleEdge.hintTile) * MerkleEdge.hintBytes else { return nil }
        return hints
    }

    static func insert(level: Int, index: Int64, hash: [UInt8], _ session: any SQLSession) throws {
        try session.send(
            "INSERT INTO merkle_nodes(level, idx, hash) VALUES (?, ?, ?)",
            [.integer(Int64(level)), .integer(index), .blob(hash)])
    }

    /// The stored root of the complete subtree `index` at `level` (≥ ``storedLevel``).
    static func hash(level: Int, index: Int64, _ db: Database) throws -> [UInt8]? {
        try hash(level: level, index: index, SQLiteSession(db))
    }

    static func hash(level: Int, index: Int64, _ session: any SQLSession) throws -> [UInt8]? {
        try session.value(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", [.integer(Int64(level)), .integer(index)]
        ).blob
    }
}
