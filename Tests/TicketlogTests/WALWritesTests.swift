import CSQLiteWAL
import Foundation
import GRDB
import Testing

@testable import Ticketlog

/// The writer's WAL goes through the `ticketlog-wal` VFS, which gathers a commit's frames into
/// few writes (`Sources/CSQLiteWAL`). What must not change: every commit is in the file, for
/// any other connection or process to read, when the append returns.
// Serialized: `everyCommitIsInTheFileWhenTheAppendReturns` counts the process's fallbacks, which
// `twoWritersOnOneFile` may cause (a WAL restarted by the other writer).
@Suite(.serialized, .timeLimit(.minutes(5))) struct WALWritesTests {
    /// A directory name SQLite's URI syntax gives meaning to (`?`, `#`, `%`, `&`, `=`), spaces and
    /// a non-ASCII letter: the log is the file at exactly that path.
    static let awkwardDirectory = "wal dir ?#%41&=+ é"

    /// Two stores on one file (two writer connections, each with its own WAL file and what it
    /// knows of it, as two processes would be): each commit is in the file when its append
    /// returns, also after the other writer moved the WAL's end or started it again.
    @Test func twoWritersOnOneFile() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let stores =
            [try EventStore(path: path, configuration: configuration)]
            + [try EventStore(path: path, configuration: configuration)]
        var factory = EventFactory()
        var head: Int64 = 0
        for round in 0..<16 {
            let count = [1, 40, 700][round % 3]
            let events = (0..<count).map { _ in factory.message() }
            let result = try await stores[round % 2].append(events, to: .test(round % 5))
            #expect(result.positions.lowerBound == head + 1)
            head = result.positions.upperBound
            #expect(
                try sqlite3(path, "SELECT max(position) || ' ' || count(*) FROM events")
                    .trimmingCharacters(in: .whitespacesAndNewlines) == "\(head) \(head)", "round \(round)")
            if round % 4 == 3 {
                // The WAL emptied: the next writer starts it again, the other's idea of its end is stale.
                _ = try sqlite3(path, "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
        #expect(try sqlite3(path, "PRAGMA integrity_check").trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
        for store in stores {
            let report = try await store.verify()
            #expect(report.isValid)
            #expect(report.eventsVerified == head)
        }
    }

    @Test func theWriterWritesThroughTheVFSToTheFileAtItsPath() async throws {
        let directory = try TemporaryDirectory()
        let folder = directory.path(Self.awkwardDirectory)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = (folder as NSString).appendingPathComponent("log.sqlite")
        let store = try EventStore(path: path)
        var factory = EventFactory()
        let events = factory.conversation(messages: 3)
        _ = try await store.append(events, to: .test(1))
        #expect(try await store.writer.writeWithoutTransaction { db in WALWrites.vfsName(db) } == "ticketlog-wal")
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [
                "log.sqlite", "log.sqlite-shm", "log.sqlite-wal",
            ])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == [Self.awkwardDirectory])
        #expect(
            try sqlite3(path, "SELECT count(*) FROM events").trimmingCharacters(in: .whitespacesAndNewlines)
                == "\(events.count)")
    }

    /// At NORMAL durability nothing syncs the WAL at a commit, so only the VFS's own rule (the
    /// commit frame's page writes what is gathered) puts the commit in the file before SQLite
    /// publishes it. Another process (`sqlite3`, the default VFS) reads the log after each
    /// append: appends of one event, of many, one larger than the writer's page cache (its pages
    /// spill into the WAL before the commit and are read back), a refused one rolled back, and
    /// appends after the WAL was checkpointed and restarted from its start. And a copy of the
    /// files as they are, the way a crash would leave them, holds every commit too.
    @Test func everyCommitIsInTheFileWhenTheAppendReturns() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.writerCacheBytes = 64 << 10
        let store = try EventStore(path: path, configuration: configuration)
        var factory = EventFactory()
        func headSeenByAnotherProcess() throws -> String {
            try sqlite3(path, "SELECT max(position) || ' ' || count(*) FROM events")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // What a crash would leave: the file and its WAL as the kernel has them, without the
        // WAL index, which SQLite then rebuilds from the WAL, checking every frame's checksum.
        var crashes = 0
        func headAfterACrash() throws -> String {
            crashes += 1
            let copy = directory.path("crash-\(crashes)")
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
            // Copied by another process: closing a descriptor of the log in this one would drop
            // the locks SQLite holds on it (POSIX advisory locks are per process).
            for suffix in ["", "-wal"] {
                let cp = try runProcess(
                    URL(fileURLWithPath: "/bin/cp"), [path + suffix, copy + "/log.sqlite" + suffix])
                guard cp.status == 0 else { throw SQLiteShellError(message: cp.stderr) }
            }
            return try sqlite3(copy + "/log.sqlite", "SELECT max(position) || ' ' || count(*) FROM events")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var head: Int64 = 0
        for round in 0..<12 {
            let events =
                switch round % 4 {
                case 0: [factory.message()]
                case 1: factory.conversation(messages: 20)
                case 2: (0..<1_500).map { _ in factory.message(String(repeating: "long text \(round) ", count: 40)) }
                default: factory.conversation(messages: 2)
                }
            let result = try await store.append(events, to: .test(round % 3))
            head = result.positions.upperBound
            #expect(try headSeenByAnotherProcess() == "\(head) \(head)", "round \(round)")
            #expect(try headAfterACrash() == "\(head) \(head)", "round \(round), after a crash")
            // Refused (the stream is not new): rolled back, the head unchanged.
            await #expect(throws: EventStoreError.self) {
                try await store.append([factory.message()], to: .test(round % 3), expectedVersion: .noStream)
            }
            #expect(try headSeenByAnotherProcess() == "\(head) \(head)", "round \(round), refused")
            if round == 5 {
                // The WAL emptied: the writer starts it again from its header.
                _ = try sqlite3(path, "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
        // Every write had a shape the VFS knows: it gathered them all, none went through as it came.
        #expect(ticketlog_wal_vfs_fallbacks() == 0)
        #expect(try sqlite3(path, "PRAGMA integrity_check").trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
        let report = try await store.verify()
        #expect(report.isValid)
        #expect(report.eventsVerified == head)
    }
}
