import Foundation
import Testing

@testable import Ticketlog
@testable import TicketlogPostgres

/// The log on PostgreSQL (issue 19), against a real server (``PostgresTestServer``): opening and
/// refusing, the chain verified by the same code as on SQLite, and copies both ways with the
/// same head hash.
@Suite(
    .timeLimit(.minutes(3)),
    .enabled(if: !PostgresTestServer.skipped, PostgresTestServer.skipReason)
)
struct PostgresTests {
    /// A file log with every kind of row a copy carries: several tickets, a dictionary, a signed
    /// checkpoint, sealed content and its keys.
    static func makeDesk(in directory: TemporaryDirectory, masterKey: MasterKey) async throws -> EventStore {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = masterKey
        let store = try EventStore(path: directory.path("desk.sqlite"), configuration: configuration)
        var factory = EventFactory(seed: 19)
        for ticket in 1...6 {
            try await store.append(
                factory.conversation(messages: 5 + ticket), to: .test(ticket), expectedVersion: .noStream)
        }
        _ = try await store.rotateDictionary()
        for ticket in 1...6 {
            try await store.append(factory.message("After the dictionary, ticket \(ticket)"), to: .test(ticket))
        }
        _ = try await store.signCheckpoint(with: try NoteSigner(generatingFor: "example.com/ticketlog"))
        return store
    }

    /// The CLI, waited for off the cooperative threads.
    static func cli(_ arguments: String...) async throws -> ProcessOutput {
        try await awaitProcess(CLITests.executable, arguments)
    }

    @Test func aFileCopiedToPostgresAndBackKeepsItsHeadAndVerifiesOnBoth() async throws {
        let directory = try TemporaryDirectory()
        let masterKey = MasterKey.generate()
        let store = try await Self.makeDesk(in: directory, masterKey: masterKey)
        let original = try await store.verify()
        #expect(original.isValid)

        let location = try await PostgresTestServer.freshDatabase()
        let postgres = try await PostgresLog.open(location)
        let summary = try await postgres.copy(from: store)
        #expect(summary.rows.first { $0.table == "events" }?.count == Int(original.headPosition))
        #expect(summary.rows.contains { $0.table == "content_keys" && $0.count > 0 })
        #expect(summary.rows.contains { $0.table == "checkpoints" && $0.count == 1 })
        #expect(summary.headHash.hexString == original.headHash)
        let onPostgres = try await postgres.verify()
        #expect(onPostgres.isValid, "\(String(describing: onPostgres.failure))")
        #expect(onPostgres.headHash == original.headHash)
        #expect(onPostgres.eventsVerified == original.eventsVerified)
        #expect(onPostgres.warnings.isEmpty, "the immutability triggers are there: \(onPostgres.warnings)")

        let back = directory.path("back.sqlite")
        _ = try await postgres.copy(toFile: back)
        await postgres.close()
        var configuration = EventStore.Configuration()
        configuration.masterKey = masterKey
        let copy = try EventStore(path: back, configuration: configuration)
        let again = try await copy.verify()
        #expect(again.isValid)
        #expect(again.headHash == original.headHash)
        // The projections were built from the copied events, and sealed content opens with the key.
        #expect(try await copy.tickets() == store.tickets())
        #expect(try await copy.readAll(limit: 10_000) == store.readAll(limit: 10_000))
        #expect(try await copy.treeHead() == store.treeHead())
        #expect(try await copy.storedCheckpoint() != nil)
    }

    @Test func theSampleLogCopiesWithItsPinnedHead() async throws {
        let (directory, path) = try SampleLogTests.copy()
        defer { withExtendedLifetime(directory) {} }
        var readOnly = EventStore.Configuration()
        readOnly.readOnly = true
        let store = try EventStore(path: path, configuration: readOnly)
        let postgres = try await PostgresLog.open(try await PostgresTestServer.freshDatabase())
        defer { Task { await postgres.close() } }
        _ = try await postgres.copy(from: store)
        let report = try await postgres.verify()
        #expect(report.isValid)
        #expect(report.headHash == (try SampleLogTests.pinnedHead))
        let head = try await postgres.head()
        #expect(head.hash.hexString == (try SampleLogTests.pinnedHead))
    }

    @Test func eventsRefuseChangesAndVerifyFindsAnEditMadeBehindTheTriggers() async throws {
        let (directory, path) = try SampleLogTests.copy()
        defer { withExtendedLifetime(directory) {} }
        var readOnly = EventStore.Configuration()
        readOnly.readOnly = true
        let store = try EventStore(path: path, configuration: readOnly)
        let location = try await PostgresTestServer.freshDatabase()
        let postgres = try await PostgresLog.open(location)
        defer { Task { await postgres.close() } }
        _ = try await postgres.copy(from: store)

        for statement in [
            "UPDATE events SET occurred_at = occurred_at + 1 WHERE position = 3",
            "DELETE FROM events WHERE position = 14",
            "TRUNCATE events CASCADE",
        ] {
            await #expect(throws: (any Error).self, "\(statement) is refused") {
                try await PostgresTestServer.execute(statement, on: location)
            }
        }
        #expect(try await postgres.verify().isValid)

        // Someone who owns the database can switch the triggers off; the chain still tells.
        try await PostgresTestServer.execute("ALTER TABLE events DISABLE TRIGGER USER", on: location)
        try await PostgresTestServer.execute(
            "UPDATE events SET occurred_at = occurred_at + 1 WHERE position = 3", on: location)
        let report = try await postgres.verify()
        #expect(report.failure?.position == 3)
        #expect(report.failure?.kind == .edited)
    }

    @Test func theCommandLineCopiesBothWaysAndVerifiesOnPostgres() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("desk.sqlite")
        #expect(try await Self.cli("demo", "--database", file, "--durability", "normal").status == 0)
        let local = try await Self.cli("verify", "--database", file)
        #expect(local.status == 0)
        let url = PostgresTestServer.url(try await PostgresTestServer.freshDatabase())

        let there = try await Self.cli("copy", "--from", file, "--to", url)
        #expect(there.status == 0, "\(there.stdout)\(there.stderr)")
        #expect(there.stdout.contains("copied 14 events"), "\(there.stdout)")
        #expect(!there.stdout.contains(try PostgresLocation(url: url).password!), "the password is not printed")
        let verified = try await Self.cli("verify", "--database", url)
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout == local.stdout, "the same events and head hash")

        let back = directory.path("back.sqlite")
        let returned = try await Self.cli("copy", "--from", url, "--to", back)
        #expect(returned.status == 0, "\(returned.stdout)\(returned.stderr)")
        #expect(try await Self.cli("verify", "--database", back).stdout == local.stdout)
        let tickets = try await Self.cli("audit", "--database", back, "--ticket", "1001")
        let original = try await Self.cli("audit", "--database", file, "--ticket", "1001")
        #expect(tickets.status == 0 && tickets.stdout == original.stdout, "the copy's projections were built")

        let again = try await Self.cli("copy", "--from", file, "--to", url)
        #expect(again.status == 2)
        #expect(again.stderr.contains("the target already holds events"), "\(again.stderr)")
        let unsupported = try await Self.cli("read", "--database", url)
        #expect(unsupported.status == 2)
        #expect(unsupported.stderr.contains("does not run on PostgreSQL yet"), "\(unsupported.stderr)")
        #expect(!unsupported.stderr.contains(try PostgresLocation(url: url).password!))
    }

    @Test func aLogGoesOnAfterTheServerRestartsAndSaysWhatIsWrongWhileItIsDown() async throws {
        let cluster = try await PrivateCluster.start()
        let (directory, path) = try SampleLogTests.copy()
        defer { withExtendedLifetime(directory) {} }
        var readOnly = EventStore.Configuration()
        readOnly.readOnly = true
        let store = try EventStore(path: path, configuration: readOnly)
        do {
            let postgres = try await PostgresLog.open(cluster.location)
            _ = try await postgres.copy(from: store)
            let before = try await postgres.verify()
            #expect(before.isValid)

            try await cluster("restart")
            let after = try await postgres.verify()
            #expect(after.headHash == before.headHash, "the same log object reconnected by itself")

            try await cluster("stop")
            let down = await #expect(throws: EventStoreError.self) { _ = try await postgres.verify() }
            #expect(down?.code == .storageFailure)
            #expect(down?.message.hasPrefix("PostgreSQL at \(cluster.location): cannot reach the server") == true)
            try await cluster("resume")
            #expect(try await postgres.verify().headHash == before.headHash)
            await postgres.close()
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    @Test func anotherDatabaseIsRefusedInOneLineAndLeftAsItWas() async throws {
        let location = try await PostgresTestServer.freshDatabase()
        try await PostgresTestServer.execute("CREATE TABLE invoices (id int)", on: location)
        let refusal = await #expect(throws: EventStoreError.self) { _ = try await PostgresLog.open(location) }
        #expect(refusal?.code == .unknownFormat)
        #expect(
            refusal?.message
                == "\(location) is a PostgreSQL database but not a ticketlog log (it has tables invoices and no meta table)"
        )
        await #expect(throws: (any Error).self, "no log tables were created") {
            try await PostgresTestServer.execute("SELECT * FROM events", on: location)
        }

        let newer = try await PostgresTestServer.freshDatabase()
        let log = try await PostgresLog.open(newer)
        await log.close()
        try await PostgresTestServer.execute("UPDATE meta SET integer = 3 WHERE key = 'format_version'", on: newer)
        let version = await #expect(throws: EventStoreError.self) { _ = try await PostgresLog.open(newer) }
        #expect(
            version?.message
                == "\(newer) uses ticketlog format 3; this build reads format 2 (upgrade ticketlog to open it)")

        let empty = try await PostgresTestServer.freshDatabase()
        let missing = await #expect(throws: EventStoreError.self) {
            _ = try await PostgresLog.open(empty, createIfMissing: false)
        }
        #expect(missing?.message.contains("no log at \(empty)") == true)
    }

    @Test func aWrongPasswordAnUnknownDatabaseAndNoServerAreOneLineErrors() async throws {
        let admin = try await PostgresTestServer.admin()
        var wrong = admin
        wrong.password = "not-the-password"
        let password = await #expect(throws: EventStoreError.self) { _ = try await PostgresLog.open(wrong) }
        #expect(password?.message.contains("password authentication failed for user \"\(admin.user)\"") == true)
        #expect(password?.message.contains("not-the-password") == false)

        var unknown = admin
        unknown.database = "no_such_database"
        let database = await #expect(throws: EventStoreError.self) { _ = try await PostgresLog.open(unknown) }
        #expect(database?.message.contains("database \"no_such_database\" does not exist") == true)

        var nobody = admin
        nobody.port = 1
        let unreachable = await #expect(throws: EventStoreError.self) { _ = try await PostgresLog.open(nobody) }
        #expect(unreachable?.message.hasPrefix("PostgreSQL at \(nobody): cannot reach the server") == true)
        for error in [password, database, unreachable] {
            #expect(error?.message.contains("\n") == false)
        }
    }
}

/// What needs no server: URLs and placeholders.
@Suite struct PostgresLocationTests {
    @Test func urlsParseAndTheirPasswordsStayOutOfMessages() throws {
        let location = try PostgresLocation(url: "postgres://kim:s%40cret@db.example:6543/desk", environment: [:])
        #expect(
            location
                == PostgresLocation(host: "db.example", port: 6543, user: "kim", password: "s@cret", database: "desk"))
        #expect(location.description == "postgres://kim@db.example:6543/desk")
        let fromEnvironment = try PostgresLocation(url: "postgresql://kim@db/desk", environment: ["PGPASSWORD": "pw"])
        #expect(fromEnvironment.password == "pw")
        #expect(fromEnvironment.port == 5432)

        for (url, reason) in [
            ("postgres://kim:pw@db.example:5432", "names no database"), ("postgres://db.example/desk", "names no user"),
            ("postgres://kim:pw@db/desk?sslmode=require", "options after ?"), ("mysql://kim@db/desk", "postgres://"),
        ] {
            let refusal = #expect(throws: EventStoreError.self) { _ = try PostgresLocation(url: url, environment: [:]) }
            #expect(refusal?.message.contains(reason) == true, "\(url): \(refusal?.message ?? "")")
            #expect(refusal?.message.contains(":pw@") == false, "the password is not repeated")
        }
    }

    @Test func placeholdersAreNumberedOutsideQuotes() {
        #expect(
            PostgresSession.numbered("SELECT a FROM t WHERE b = ? AND c = '?' AND \"d?\" > ? LIMIT ?")
                == "SELECT a FROM t WHERE b = $1 AND c = '?' AND \"d?\" > $2 LIMIT $3")
    }
}
