import Foundation
import GRDB
import Testing

@testable import Ticketlog

/// Full-text search over message text (issue 18): the index is a projection like the others, and
/// forgets what an erasure erases.
@Suite(.timeLimit(.minutes(2))) struct SearchTests {
    let kim = Actor(id: "kim", role: .creator)
    let jo = Actor(id: "jo", role: .creator)
    let sam = Actor(id: "sam", role: .agent)
    let ada = Actor(id: "ada", role: .admin)

    func opened(_ brand: String, creator: String, _ factory: inout EventFactory) -> ProposedEvent {
        ProposedEvent(
            id: factory.id(), actor: Actor(id: brand, role: .brand),
            payload: .ticketOpened(TicketOpened(title: "Launch", brand: brand, creator: creator)))
    }

    func edit(_ messageID: String, _ text: String, by actor: Actor, _ factory: inout EventFactory) -> ProposedEvent {
        ProposedEvent(
            id: factory.id(), actor: actor, payload: .messageEdited(MessageEdited(messageID: messageID, text: text)))
    }

    func delete(_ messageID: String, by actor: Actor, _ factory: inout EventFactory) -> ProposedEvent {
        ProposedEvent(id: factory.id(), actor: actor, payload: .messageDeleted(MessageDeleted(messageID: messageID)))
    }

    func ids(_ hits: [SearchHit]) -> [String] { hits.map(\.messageID).sorted() }

    @Test func findsWordsAndPrefixesFollowsEditsAndDeletesAndRebuildsTheSame() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(path: directory.path("log.sqlite"))
        var factory = EventFactory()
        let first = factory.message("The Invoice for the café shoot is attached", by: kim)
        let second = factory.message("Invoices go out on Friday; the café is booked", by: sam)
        let third = factory.message("Nothing to see here", by: jo)
        try await store.append(
            [opened("acme", creator: "kim", &factory), first, second, third], to: .test(1))
        func messageID(_ event: ProposedEvent) -> String {
            if case .messagePosted(let posted) = event.payload { return posted.messageID }
            return ""
        }

        // Whole words, any case, accents ignored; `*` for a prefix; every word required.
        #expect(ids(try await store.search(MessageSearch("invoice"))) == [messageID(first)])
        #expect(ids(try await store.search(MessageSearch("INVOICE*"))) == [first, second].map(messageID).sorted())
        #expect(ids(try await store.search(MessageSearch("cafe"))) == [first, second].map(messageID).sorted())
        #expect(ids(try await store.search(MessageSearch("café friday"))) == [messageID(second)])
        #expect(try await store.search(MessageSearch("invoice friday")).isEmpty)
        // The snippet marks what matched, in the text as written.
        let hit = try #require(try await store.search(MessageSearch("cafe shoot")).first)
        #expect(hit.snippet.filter(\.match).map(\.text) == ["café", "shoot"])
        #expect(hit.snippet.map(\.text).joined() == "The Invoice for the café shoot is attached")
        #expect(hit.author == kim && hit.ticket == .test(1))
        // FTS5's own syntax is only text: no syntax error, no column filter, no operator.
        for odd in ["\"invoice", "text:invoice", "invoice OR nothing", "NEAR(invoice café)", "(invoice", "-invoice^"] {
            _ = try await store.search(MessageSearch(odd))
        }
        #expect(ids(try await store.search(MessageSearch("invoice OR nothing"))).isEmpty)
        await #expect(throws: EventStoreError.self) { try await store.search(MessageSearch("  *** ")) }

        // An edit replaces what is found; a delete removes it.
        try await store.append(
            [edit(messageID(first), "Receipt for the shoot is attached", by: kim, &factory)], to: .test(1))
        #expect(try await store.search(MessageSearch("invoice")).isEmpty)
        #expect(ids(try await store.search(MessageSearch("receipt"))) == [messageID(first)])
        try await store.append([delete(messageID(second), by: sam, &factory)], to: .test(1))
        #expect(try await store.search(MessageSearch("friday")).isEmpty)
        #expect(ids(try await store.search(MessageSearch("nothing"))) == [messageID(third)])

        // The index rebuilt from the events is the index kept up by the appends.
        let check = try await store.checkProjections()
        #expect(check.holds)
        #expect(check.tables.contains { $0.name == "message_search_terms" && $0.rows > 5 && $0.matches })
        try await store.rebuildProjections()
        #expect(ids(try await store.search(MessageSearch("receipt"))) == [messageID(first)])
        #expect(try await store.search(MessageSearch("invoice")).isEmpty)
    }

    /// The index's documents are written at the end of the transaction (after the appends'
    /// savepoints): those of an append refused half-way must not be, or the refused text would
    /// be found under the position the next append takes.
    @Test(arguments: StoreKind.allCases)
    func aRefusedAppendLeavesNothingInTheIndex(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let stored = factory.message("Stored first", by: sam)
        try await store.append([opened("acme", creator: "kim", &factory), stored], to: .test(1))
        // Its first event is new, its second reuses a stored id with other content: refused
        // after the first was written and projected.
        var clash = factory.message("the stored id again", by: sam)
        clash.id = stored.id
        let results = await store.append([
            StreamAppend(stream: .test(1), events: [factory.message("zebra crossing", by: sam), clash]),
            StreamAppend(stream: .test(1), events: [factory.message("giraffe neck", by: sam)]),
        ])
        #expect(throws: EventStoreError.self) { try results[0].get() }
        #expect(try results[1].get().positions == 3...3, "the refused append's first position, taken again")
        #expect(try await store.search(MessageSearch("zebra")).isEmpty)
        #expect(try await store.search(MessageSearch("giraffe")).map(\.position) == [3])
        #expect(try await store.checkProjections().holds)
    }

    /// Hits come newest text first, on both backends and in both of SQLite's plans (the index
    /// alone, and joined to the caller's tickets first); an edit makes a message's text new.
    /// (They came oldest first while the order was FTS5's bm25, which scores every hit of an
    /// index without term positions 0.)
    @Test(arguments: StoreKind.allCases)
    func hitsComeNewestTextFirst(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let posts = (1...4).map { factory.message("the shoot, take \($0)", by: kim) }
        try await store.append([opened("acme", creator: "kim", &factory)] + posts, to: .test(1))
        func order(_ search: MessageSearch) async throws -> [String] {
            try await store.search(search).map(\.messageID)
        }
        let ids = posts.map { event -> String in
            if case .messagePosted(let posted) = event.payload { return posted.messageID }
            return ""
        }
        let mine = TicketFilter(creator: "kim")
        #expect(try await order(MessageSearch("shoot")) == ids.reversed())
        #expect(try await order(MessageSearch("shoot", tickets: mine)) == ids.reversed())
        #expect(try await order(MessageSearch("shoot", limit: 2)) == [ids[3], ids[2]], "the newest two")
        #expect(try await order(MessageSearch("shoot", tickets: mine, limit: 2)) == [ids[3], ids[2]])
        try await store.append([edit(ids[1], "the shoot, take 2 again", by: kim, &factory)], to: .test(1))
        let edited = [ids[1], ids[3], ids[2], ids[0]]
        #expect(try await order(MessageSearch("shoot")) == edited)
        #expect(try await order(MessageSearch("shoot", tickets: mine)) == edited)
        let hit = try #require(try await store.search(MessageSearch("again")).first)
        #expect(hit.textPosition == 6 && hit.position == 3, "the edit's position, the post's")
    }

    @Test func findsOnlyInTheTicketsTimesAndFilterGiven() async throws {
        let store = try EventStore.inMemory()
        var factory = EventFactory()
        for (ticket, brand, creator) in [(1, "acme", "kim"), (2, "acme", "jo"), (3, "globex", "kim")] {
            try await store.append(
                [opened(brand, creator: creator, &factory), factory.message("budget for ticket \(ticket)", by: sam)],
                to: .test(ticket))
        }
        func tickets(_ search: MessageSearch) async throws -> [String] {
            try await store.search(search).map(\.ticket.rawValue).sorted()
        }
        #expect(try await tickets(MessageSearch("budget")) == ["ticket-1", "ticket-2", "ticket-3"])
        #expect(
            try await tickets(MessageSearch("budget", tickets: TicketFilter(brand: "acme"))) == [
                "ticket-1", "ticket-2",
            ])
        #expect(
            try await tickets(MessageSearch("budget", tickets: TicketFilter(creator: "kim"))) == [
                "ticket-1", "ticket-3",
            ])
        #expect(try await tickets(MessageSearch("budget", tickets: TicketFilter(agent: "nobody"))).isEmpty)
        #expect(try await tickets(MessageSearch("budget", ticket: .test(2))) == ["ticket-2"])
        let hits = try await store.search(MessageSearch("budget"))
        let middle = hits.map(\.postedAt).sorted()[1]
        #expect(try await store.search(MessageSearch("budget", from: middle)).count == 2)
        #expect(try await store.search(MessageSearch("budget", to: middle)).count == 1)
        #expect(try await store.search(MessageSearch("budget", limit: 1)).count == 1)
    }

    @Test func anErasureTakesItsWordsOutOfTheIndexAndTheFile() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = MasterKey.generate()
        let store = try EventStore(path: path, configuration: configuration)
        var factory = EventFactory()
        // A word only kim ever wrote, and one both wrote.
        let kimsWord = "quetzalcoatlus"
        var events = [opened("acme", creator: "kim", &factory)]
        for index in 0..<20 {
            events.append(factory.message("draft \(index) mentions \(kimsWord) again", by: kim))
            events.append(factory.message("draft \(index) from jo", by: jo))
        }
        try await store.append(events, to: .test(1))
        _ = try await store.scrub()
        #expect(try await store.search(MessageSearch(kimsWord)).count == 20)
        // The index keeps its terms (not the text): the word is in the file before the erasure,
        // so the search of the raw bytes below can see it.
        func fileBytes() throws -> Data {
            var raw = try Data(contentsOf: URL(fileURLWithPath: path))
            if let wal = try? Data(contentsOf: URL(fileURLWithPath: path + "-wal")) { raw.append(wal) }
            return raw
        }
        #expect(try fileBytes().range(of: Data(kimsWord.utf8)) != nil)

        _ = try await store.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR", by: ada)
        #expect(try await store.search(MessageSearch(kimsWord)).isEmpty)
        #expect(try await store.search(MessageSearch("draft")).allSatisfy { $0.author == jo })
        #expect(try await store.search(MessageSearch("draft")).count == 20)
        #expect(try fileBytes().range(of: Data(kimsWord.utf8)) == nil, "an erased word is still in the file")
        #expect(try await store.checkProjections().holds)

        // Checked without the master key, the index of encrypted text is reported unchecked.
        var readOnly = EventStore.Configuration()
        readOnly.readOnly = true
        let keyless = try EventStore(path: path, configuration: readOnly)
        let check = try await keyless.checkProjections()
        #expect(check.tables.first { $0.name == "message_search_terms" }?.checked == false)
        #expect(check.holds)
    }
}

/// `ticketlog search` (issue 18).
@Suite(.timeLimit(.minutes(2))) struct SearchCLITests {
    @Test func searchPrintsHitsWithTheirMatchesAndRefusesAnEmptyQuery() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        #expect(try CLITests.run("demo", "--database", path).status == 0)
        let text = try CLITests.run("search", "--database", path, "FRIDAY")
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n")
        #expect(
            lines.count == 3 && lines.allSatisfy { $0.hasPrefix("ticket-1001  #") && $0.contains("[Friday]") },
            "\(text.stdout)")
        let json = try CLITests.run("search", "--database", path, "draft", "wednes*", "--format", "ndjson")
        let hits = json.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(hits.count == 1 && hits.first?["author"] as? String == "kim", "\(json.stdout)")
        let parts = hits.first?["snippet"] as? [[String: Any]] ?? []
        #expect(
            parts.filter { $0["match"] as? Bool == true }.compactMap { $0["text"] as? String } == [
                "draft", "Wednesday",
            ])
        let empty = try CLITests.run("search", "--database", path, "***")
        #expect(empty.status == 64 && empty.stderr.contains("at least one word"), "\(empty.stderr)")
    }
}

/// PostgreSQL's search documents are made of ``SearchTerms/lexemes(_:)``; they must be the words
/// FTS5's `unicode61 remove_diacritics 2` makes of the same text on SQLite, so a word finds the
/// same messages on both backends. Checked against SQLite's FTS5 itself.
@Suite(.timeLimit(.minutes(1))) struct SearchTermsTests {
    @Test func wordsAreFTS5sWords() throws {
        let texts = [
            "Hello, World! The brief is at https://example.com/a_b?c=1 — v2.3, 42nd take.",
            "Café déjà-vu: naïve RÉSUMÉ ÀÉÎÕÜ Ångström Łódź",
            "don't stop; x_y|z\tTAB\nnewline",
            "東京 タワー 🎉 emoji ＡＢＣ full width",
            "Straße STRASSE İstanbul ǅungla",
            "e\u{301}clair (decomposed) and ﬁ ligature",
            "Looks great, tiny change 👍 abcÉdef 9:16 naïve2x Ok?🙏",
            "",
        ]
        let queue = try DatabaseQueue(configuration: EventStore.databaseConfiguration())
        try queue.write { db in
            try db.execute(
                sql: "CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
            try db.execute(sql: "CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        }
        for (index, text) in texts.enumerated() {
            let fts5 = try queue.write { db -> [String] in
                try db.execute(sql: "INSERT INTO t(rowid, text) VALUES (?, ?)", arguments: [index + 1, text])
                return try String.fetchAll(
                    db, sql: "SELECT term FROM v WHERE doc = ? ORDER BY offset", arguments: [index + 1])
            }
            #expect(SearchTerms.words(text) == fts5, "\(text.debugDescription)")
            // What a document is sent as on PostgreSQL.
            #expect(SearchTerms.lexemes(text) == fts5.joined(separator: " "), "\(text.debugDescription)")
        }
    }
}
