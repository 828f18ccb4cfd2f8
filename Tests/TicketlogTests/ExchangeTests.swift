import Foundation
import GRDB
import Synthetic
import Testing

@testable import Ticketlog

@Suite(.timeLimit(.minutes(10))) struct ExchangeTests {
    /// A log with a hand-made first ticket (awkward text, known timings) and generated traffic.
    static func makeLog(tickets: Int = 30) async throws -> (TemporaryDirectory, EventStore) {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        var factory = EventFactory(seed: 3)
        let t0: Int64 = 1_790_000_000_000_000
        let agent = Actor(id: "sam", role: .agent)
        let brand = Actor(id: "acme", role: .brand)
        let handmade: [ProposedEvent] = [
            ProposedEvent(
                id: factory.id(), actor: brand, occurredAt: .init(microsecondsSinceEpoch: t0),
                payload: .messagePosted(MessagePosted(messageID: "m-0", text: ExchangeTests.awkward))),
            ProposedEvent(
                id: factory.id(), actor: brand, occurredAt: .init(microsecondsSinceEpoch: t0 + 1_000_000),
                payload: .ticketOpened(TicketOpened(title: "Hand-made, \"quoted\"", brand: "acme", creator: "kim"))),
            ProposedEvent(
                id: factory.id(), actor: agent, occurredAt: .init(microsecondsSinceEpoch: t0 + 91_000_000),
                payload: .messagePosted(MessagePosted(messageID: "m-1", text: "On it."))),
            ProposedEvent(
                id: factory.id(), actor: agent, occurredAt: .init(microsecondsSinceEpoch: t0 + 601_000_000),
                payload: .statusChanged(StatusChanged(from: "open", to: "resolved"))),
        ]
        try await store.append(handmade, to: .ticket("handmade")!)
        let desk = Array(SyntheticDesk(.init(tickets: tickets, seed: 9, meanMessagesPerTicket: 30)).events())
        // In chunks, as traffic arrives: the first LZ4 dictionary is made after 1,000 events.
        for start in stride(from: 0, to: desk.count, by: 500) {
            try await SyntheticDesk.append(Array(desk[start..<min(start + 500, desk.count)]), to: store)
        }
        return (directory, store)
    }

    static let awkward = "He said \"hi, there\",\nthen left; ☕ café\r\nline3 , ,"

    /// Over several of the export's pages of 2,000 events, the last one short.
    @Test func csvNDJSONAndSQLiteExportsHoldEveryEvent() async throws {
        let (directory, store) = try await Self.makeLog(tickets: 150)
        defer { withExtendedLifetime(directory) {} }
        let stats = try await store.statistics()
        #expect(stats.events > 4_000 && stats.events % 2_000 != 0, "\(stats.events) events")
        for format in ExportFormat.allCases {
            let out = directory.path("export-\(format.rawValue)" + (format == .sqlite ? ".sqlite" : ""))
            let report = try await store.export(to: out, ExportOptions(format: format))
            #expect(report.events == Int(stats.events))
            #expect(report.tickets == Int(stats.tickets))
        }
        let ndjson = try String(contentsOfFile: directory.path("export-ndjson/events.ndjson"), encoding: .utf8)
        let lines = ndjson.split(separator: "\n")
        #expect(lines.count == Int(stats.events))
        // NDJSON holds whole events, which import back into another log as they were.
        let firstEvent = try JSONDecoder().decode(RecordedEvent.self, from: Data(lines[0].utf8))
        #expect(firstEvent.position == 1)
        #expect(firstEvent.payload == .messagePosted(MessagePosted(messageID: "m-0", text: Self.awkward)))
        let copy = try EventStore.inMemory()
        let imported = try await copy.importEvents(fromNDJSON: directory.path("export-ndjson/events.ndjson"))
        #expect(imported.appended == Int(stats.events))
        #expect(
            try await copy.readAll(limit: 100_000).map(\.proposed)
                == (try await store.readAll(limit: 100_000)).map(\.proposed))
        let factLines = try String(contentsOfFile: directory.path("export-ndjson/ticket_facts.ndjson"), encoding: .utf8)
        let handmade = try #require(
            factLines.split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.first { $0["stream"] as? String == "ticket-handmade" })
        #expect(handmade["first_agent_response_seconds"] as? Double == 90)

        let exported = try DatabaseQueue(
            path: directory.path("export-sqlite.sqlite"), configuration: EventStore.databaseConfiguration())
        let (count, text) = try await exported.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events")!,
                try String.fetchOne(db, sql: "SELECT text FROM events WHERE position = 1")
            )
        }
        #expect(count == Int(stats.events))
        #expect(text == Self.awkward)
        let facts = try exported.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM ticket_facts WHERE stream = 'ticket-handmade'")
        }
        #expect(facts?["first_agent_response_seconds"] == 90.0)
        #expect(facts?["resolution_seconds"] == 600.0)
        #expect(facts?["messages_by_brand"] == 1)
        #expect(facts?["messages_by_agent"] == 1)
        #expect(facts?["status"] == "resolved")
    }

    @Test func csvQuotesFieldsAsRFC4180Says() {
        #expect(CSVSink.field("plain") == "plain")
        #expect(CSVSink.field("a,b") == "\"a,b\"")
        #expect(CSVSink.field("say \"x\"") == "\"say \"\"x\"\"\"")
        #expect(CSVSink.field("two\nlines") == "\"two\nlines\"")
        #expect(CSVSink.field("crlf\r\nend") == "\"crlf\r\nend\"")
        #expect(CSVSink.field("") == "")
    }

    /// pandas and duckdb, installed from PyPI by `make test`, read the CSV export exactly.
    @Test func pandasAndDuckDBLoadTheExport() async throws {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            Issue.record(
                "TICKETLOG_PYTHON is not set: run `make test`, which installs pandas and duckdb into .build-venv")
            return
        }
        let (directory, store) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        let stats = try await store.statistics()
        _ = try await store.export(to: directory.path("csv"), ExportOptions(format: .csv))
        _ = try await store.export(to: directory.path("e.sqlite"), ExportOptions(format: .sqlite))
        let script = fixturesDirectory.deletingLastPathComponent().appendingPathComponent(
            "Tests/Analytics/load_export.py")
        let run = try runProcess(
            URL(fileURLWithPath: python), [script.path, directory.path("csv"), directory.path("e.sqlite")])
        #expect(run.status == 0, "\(run.stderr)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        for key in ["pandas_events", "duckdb_events", "sqlite_events"] {
            #expect(seen[key] as? Int == Int(stats.events), "\(key)")
        }
        for key in ["pandas_tickets", "duckdb_tickets", "sqlite_tickets", "pandas_facts"] {
            #expect(seen[key] as? Int == Int(stats.tickets), "\(key)")
        }
        #expect(seen["pandas_first_position_text"] as? String == Self.awkward)
        #expect(seen["duckdb_first_position_text"] as? String == Self.awkward)
        let types = try #require(seen["duckdb_types"] as? [String: Int])
        #expect(types == Dictionary(uniqueKeysWithValues: stats.eventsByType.map { ($0.type, Int($0.count)) }))
        #expect(seen["pandas_messages_posted"] as? Int == types["message.posted"])
        let pandasMedian = try #require(seen["pandas_median_first_response"] as? Double)
        let duckMedian = try #require(seen["duckdb_median_first_response"] as? Double)
        #expect(abs(pandasMedian - duckMedian) < 0.001)
    }

    @Test func exportsFilterByTicketAndTime() async throws {
        let (directory, store) = try await Self.makeLog(tickets: 5)
        defer { withExtendedLifetime(directory) {} }
        let one = try await store.export(
            to: directory.path("one"), ExportOptions(format: .ndjson, stream: .ticket("handmade")))
        #expect(one.events == 4)
        #expect(one.tickets == 1)
        let window = try await store.export(
            to: directory.path("window"),
            ExportOptions(
                format: .ndjson, stream: .ticket("handmade"),
                from: .init(microsecondsSinceEpoch: 1_790_000_001_000_000),
                to: .init(microsecondsSinceEpoch: 1_790_000_601_000_000)))
        #expect(window.events == 2)
        let refused = await #expect(throws: EventStoreError.self) {
            try await store.export(to: directory.path("one"), ExportOptions(format: .ndjson))
        }
        #expect(refused?.message.contains("exists") == true)
        let replaced = try await store.export(
            to: directory.path("one"), ExportOptions(format: .ndjson, overwrite: true))
        #expect(replaced.tickets == 6)
    }

    @Test func importIsIdempotentAndRefusesABadFileWhole() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("desk.ndjson")
        let desk = Array(SyntheticDesk(.init(tickets: 20, seed: 4, meanMessagesPerTicket: 20)).events())
        let lines = try desk.map {
            String(decoding: try EventLine(stream: $0.stream, event: $0.event).json(), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)

        let store = try EventStore(path: directory.path("log.sqlite"))
        let first = try await store.importEvents(fromNDJSON: file, batchSize: 100)
        #expect(first.events == desk.count)
        #expect(first.appended == desk.count)
        let second = try await store.importEvents(fromNDJSON: file, batchSize: 77)
        #expect(second.appended == 0)
        #expect(second.alreadyStored == desk.count)
        #expect(try await store.headPosition() == Int64(desk.count))
        // The events read back as generated, in order.
        #expect(try await store.readAll(limit: 100_000).map(\.proposed) == desk.map(\.event))

        // A file with one bad line appends nothing, and says which line.
        var broken = Array(lines.prefix(50))
        let fresh = SyntheticDesk(.init(tickets: 3, seed: 99)).events().prefix(5).map {
            String(decoding: try! EventLine(stream: $0.stream, event: $0.event).json(), as: UTF8.self)
        }
        broken += fresh
        broken.insert(#"{"stream":"ticket-1","type":"message.posted","payload":{}}"#, at: 52)
        try broken.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let error = await #expect(throws: EventStoreError.self) { try await store.importEvents(fromNDJSON: file) }
        #expect(error?.message.contains("line 53") == true)
        #expect(error?.message.contains("missing field") == true)
        #expect(error?.message.contains("nothing was imported") == true)
        #expect(try await store.headPosition() == Int64(desk.count))

        // Lines of `ticketlog read` (with position, version, recordedAt) import too.
        let readLines = try await store.readAll(limit: 10).map { try $0.jsonLine() }
        try readLines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let other = try EventStore.inMemory()
        #expect(try await other.importEvents(fromNDJSON: file).appended == 10)
    }

    @Test func statisticsCountAndMeasure() async throws {
        let (directory, store) = try await Self.makeLog(tickets: 150)
        defer { withExtendedLifetime(directory) {} }
        let stats = try await store.statistics()
        let all = try await store.readAll(limit: 1_000_000)
        #expect(stats.events == Int64(all.count))
        #expect(stats.tickets == Int64(Set(all.map(\.stream)).count))
        let counted = Dictionary(grouping: all, by: \.type.rawValue).mapValues { Int64($0.count) }
        #expect(Dictionary(uniqueKeysWithValues: stats.eventsByType.map { ($0.type, $0.count) }) == counted)
        #expect(stats.dictionaries == 1)
        #expect(stats.compressionRatio > 1.5, "ratio \(stats.compressionRatio)")
        #expect(stats.eventBytes > 0 && stats.projectionBytes > 0)
        #expect(stats.fileBytes >= stats.eventBytes)
        // The stored bodies: the canonical JSON without the members the row's columns hold.
        let raw = try all.reduce(0) {
            let canonical = try CanonicalJSON.encode(
                EventBody($1.proposed, stream: $1.stream, recordedAt: $1.recordedAt))
            return $0 + (try #require(StoredBody.strip(canonical)).count)
        }
        #expect(stats.rawBodyBytes == Int64(raw))
    }
}
