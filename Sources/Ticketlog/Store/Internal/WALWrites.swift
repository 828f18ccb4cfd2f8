import CSQLiteWAL
import GRDB
import GRDBSQLite

/// The WAL writes of a log's writer connection, gathered by the `ticketlog-wal` VFS
/// (`Sources/CSQLiteWAL`, ARCHITECTURE.md "Append path").
enum WALWrites {
    /// `path` as an SQLite URI that opens it through the `ticketlog-wal` VFS: SQLite writes a
    /// WAL frame as two `pwrite`s, its header and its page, and a batched append's commit has
    /// ~1,100 frames; through the VFS a commit's frames reach the file in writes of up to 31
    /// frames, the last when the commit frame's page comes. `path` itself where the VFS is not
    /// available (an SQLite built without URI file names).
    static func uri(_ path: String) -> String {
        guard ticketlog_wal_vfs_register() == SQLITE_OK else { return path }
        // An absolute path after an empty authority; every byte but the unreserved ones escaped.
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes = Array((path.hasPrefix("/") ? "file://" : "file:").utf8)
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "-"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self) + "?vfs=ticketlog-wal"
    }

    /// The name of the VFS `db`'s main file was opened through.
    static func vfsName(_ db: Database) -> String? {
        var vfs: UnsafeMutablePointer<sqlite3_vfs>?
        guard sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) == SQLITE_OK,
            let name = vfs?.pointee.zName
        else { return nil }
        return String(cString: name)
    }
}
