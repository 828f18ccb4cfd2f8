import Foundation
import Testing

@testable import Ticketlog

/// A damaged file (issue 7): flipped bytes, a truncated file, a deleted WAL, a full disk, a
/// read-only file. Each gives a clear error from `verify` or the command that opens it — never
/// a crash, and never "OK" for events that differ from what was written. Run through the CLI,
/// so that a crash shows as a signal instead of taking the test process down.
@Suite(.serialized, .timeLimit(.minutes(10))) struct CorruptionTests {
    static let cli = CLITests.executable
    static let generator = ExchangeCLITests.generator

    /// A generated log of ~600 events, checkpointed (no WAL), and what `read` prints of it.
    static func baseLog(in directory: TemporaryDirectory) async throws -> (path: String, events: String, head: String) {
        let path = directory.path("base.sqlite")
        let generated = try await awaitProcess(generator, ["--tickets", "20", "--messages", "20", "--database", path])
        #expect(generated.status == 0, "\(generated.stderr)")
        let events = try await awaitProcess(cli, ["read", "--database", path])
        let verified = try await awaitProcess(cli, ["verify", "--database", path])
        #expect(verified.status == 0)
        let head = try #require(verified.stdout.firstMatch(of: /head position (\d+), head hash ([0-9a-f]{64})/))
        return (path, events.stdout, "\(head.output.1):\(head.output.2)")
    }

    /// What a damaged copy must give: a clean failure with a reason, or OK with the very events
    /// that were written.
    static func expectCleanOutcome(_ copy: String, original: String, anchor: String, _ what: String) async throws
        -> Int32
    {
        let verify = try await awaitProcess(cli, ["verify", "--database", copy, "--projections", "--anchor", anchor])
        #expect(!verify.crashed, "\(what): verify crashed: \(verify.stderr)")
        switch verify.status {
        case 0:
            let events = try await awaitProcess(cli, ["read", "--database", copy])
            #expect(!events.crashed && events.status == 0, "\(what): verify said OK but read failed: \(events.stderr)")
            #expect(events.stdout == original, "\(what): verify said OK for events that differ from what was written")
        case 1:
            let said = verify.stdout + verify.stderr
            #expect(
                said.contains("FAILED at position") || said.contains("PROJECTION") || said.contains("Error: "),
                "\(what): exit 1 without saying why: \(said)")
        case 2:
            #expect(
                verify.stderr.hasPrefix("ticketlog: "), "\(what): exit 2 without a one-line reason: \(verify.stderr)")
        default:
            Issue.record("\(what): verify exited with \(verify.status): \(verify.stdout) \(verify.stderr)")
        }
        return verify.status
    }

    @Test func flippedBytesAreFoundOrHarmless() async throws {
        let directory = try TemporaryDirectory()
        let base = try await Self.baseLog(in: directory)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: base.path))
        var random = SeededGenerator(seed: 77)
        var outcomes: [Int32: Int] = [:]
        for trial in 0..<30 {
            var damaged = bytes
            var flipped: [Int] = []
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let offset = Int.random(in: 0..<damaged.count, using: &random)
                damaged[offset] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                flipped.append(offset)
            }
            let copy = directory.path("flipped-\(trial).sqlite")
            try damaged.write(to: URL(fileURLWithPath: copy))
            let status = try await Self.expectCleanOutcome(
                copy, original: base.events, anchor: base.head, "bytes \(flipped) flipped")
            outcomes[status, default: 0] += 1
        }
        // Most flips land in event pages and must be found; some land in free space or a
        // projection's spare bytes and change nothing.
        #expect((outcomes[1] ?? 0) + (outcomes[2] ?? 0) >= 15, "\(outcomes)")
    }

    @Test func aTruncatedFileIsFoundOrHarmless() async throws {
        let directory = try TemporaryDirectory()
        let base = try await Self.baseLog(in: directory)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: base.path))
        var failures = 0
        for length in [
            0, 50, 100, 4_096, 10_000, bytes.count / 3, bytes.count / 2, bytes.count - 4_096, bytes.count - 1,
        ] {
            let copy = directory.path("truncated-\(length).sqlite")
            try bytes.prefix(length).write(to: URL(fileURLWithPath: copy))
            let status = try await Self.expectCleanOutcome(
                copy, original: base.events, anchor: base.head, "cut to \(length) bytes")
            if status != 0 { failures += 1 }
        }
        #expect(failures >= 7)
    }

    /// A crash leaves commits in the WAL; deleting it loses them. The file alone is a consistent
    /// earlier state, so only an anchor recorded outside it can tell — and does.
    @Test func aDeletedWALIsFoundAgainstAnAnchor() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("wal.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .full
        let store = try EventStore(path: path, configuration: configuration)
        var conversations = RandomConversations(seed: 5)
        let events = conversations.events(streams: 3, count: 160)
        try await ProjectionTests.append(Array(events.prefix(80)), to: store, seed: 5)
        _ = try await store.writer.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        try await ProjectionTests.append(Array(events.suffix(80)), to: store, seed: 6)
        let report = try await store.verify()
        let anchor = "\(report.headPosition):\(report.headHash)"
        // As after a crash: the store is still open, its commits are in the WAL; copy the file
        // without its WAL.
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        let copy = directory.path("wal-deleted.sqlite")
        try FileManager.default.copyItem(atPath: path, toPath: copy)

        let plain = try await awaitProcess(Self.cli, ["verify", "--database", copy])
        #expect(!plain.crashed)
        #expect(
            plain.stdout.hasPrefix("OK: 80 events"),
            "alone, the file is a consistent earlier state: \(plain.stdout)\(plain.stderr)")
        let anchored = try await awaitProcess(Self.cli, ["verify", "--database", copy, "--anchor", anchor])
        #expect(!anchored.crashed)
        #expect(anchored.status == 1)
        #expect(anchored.stdout.contains("missing: the log ends at position"), "\(anchored.stdout)")
        #expect(anchored.stdout.contains("anchored at position \(report.headPosition)"))
        withExtendedLifetime(store) {}
    }

    /// A full disk (here: a file size limit, with SIGXFSZ ignored so that writes fail with EFBIG)
    /// fails the append with a clear error and leaves the log as it was.
    @Test func aFullDiskFailsTheAppendAndKeepsTheLog() async throws {
        let directory = try TemporaryDirectory()
        let base = try await Self.baseLog(in: directory)
        let events = directory.path("more.ndjson")
        let more = try await awaitProcess(
            Self.generator, ["--tickets", "40", "--messages", "40", "--seed", "9", "--out", events])
        #expect(more.status == 0)
        // 1 MiB limit (ulimit counts 1 KiB blocks); the log is ~0.7 MiB, the import ~1.5 MiB more.
        let full = try await awaitProcess(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c", "trap '' XFSZ; ulimit -f 1024; exec \"$0\" import --database \"$1\" \"$2\"", Self.cli.path,
                base.path, events,
            ])
        #expect(!full.crashed, "\(full.stderr)")
        #expect(full.status != 0)
        #expect(
            full.stderr.contains("the disk refused a read or write") || full.stderr.contains("the disk is full"),
            "\(full.stderr)")
        let after = try await awaitProcess(Self.cli, ["verify", "--database", base.path])
        #expect(after.status == 0, "\(after.stdout)")
        let events0 = try await awaitProcess(Self.cli, ["read", "--database", base.path, "--limit", "1000000"])
        #expect(events0.stdout.hasPrefix(base.events), "the events written before are all still there")
    }

    /// A file the user may not write: a clear error, the file unchanged.
    @Test func aReadOnlyFileRefusesWritesClearly() async throws {
        let directory = try TemporaryDirectory()
        let base = try await Self.baseLog(in: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: base.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.url.path)
        let before = try Data(contentsOf: URL(fileURLWithPath: base.path))
        // Root ignores file modes: run the command as nobody then.
        let asUser: [String] =
            getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let demo = try await awaitProcess(
            URL(fileURLWithPath: asUser.first ?? Self.cli.path),
            Array(asUser.dropFirst()) + (asUser.isEmpty ? [] : [Self.cli.path]) + ["demo", "--database", base.path])
        #expect(!demo.crashed)
        #expect(demo.status != 0)
        #expect(demo.stderr.contains("ticketlog: "), "\(demo.stderr)")
        #expect(demo.stderr.contains("read-only"), "the error says the file is read-only: \(demo.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: base.path)) == before)
        // Reading still works.
        let verify = try await awaitProcess(
            URL(fileURLWithPath: asUser.first ?? Self.cli.path),
            Array(asUser.dropFirst()) + (asUser.isEmpty ? [] : [Self.cli.path]) + ["verify", "--database", base.path])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
