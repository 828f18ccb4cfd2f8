import Foundation
import GRDB

/// Full-text search over message text (issue 18): an FTS5 table kept by
/// ``MessageHistoryProjection``, one document per post and per edit — its text, under its
/// event's position as rowid. A search joins each document to the message whose current text it
/// is (`messages.text_position`), so an edit replaces what a message is found by and a deleted
/// message is not found, without removing anything from the index (FTS5 pays for a removal with
/// a flush of its pending terms).
///
/// The table is **contentless** (`content=''`) and keeps which documents hold each term, not
/// where in them (`detail=none`: a third of the size of full detail; phrase and `NEAR` queries,
/// which the search does not offer, need positions) and no document sizes (`columnsize=0`: only
/// relevance ranking reads them; the hits come newest first). It never keeps the text, so the file still
/// holds one copy of every text, in the events, and an encrypted log no plaintext copy of its
/// messages. Snippets are cut from the text read from the log. Removing a document from a
/// contentless table needs the text it was indexed with: an erasure removes the texts it is about
/// to make unreadable before it destroys their keys (then `optimize` merges the index so no
/// segment keeps their terms).
///
/// A text is indexed when it is readable: not empty, not erased, not still sealed (a copy of an
/// encrypted log rebuilt without its master key indexes none of its sealed texts).
enum MessageSearchIndex {
    static let table = "message_search"
    /// `fts5vocab` over the index, `instance` kind: one row per term occurrence. What the
    /// projection check compares (the index itself has no readable rows).
    static let terms = "message_search_terms"

    /// The index's tables in a database of `dialect`, in an order in which they can be dropped.
    static func tables(_ dialect: SQLDialect) -> [String] {
        switch dialect {
        case .sqlite: [terms, table]
        case .postgres: [table]
        }
    }

    /// On PostgreSQL the index is a table of `tsvector` documents under a GIN index: the
    /// text's words (``SearchTerms``: split and folded as FTS5 does on SQLite), never the text.
    static func schema(_ dialect: SQLDialect) -> [String] {
        switch dialect {
        case .sqlite:
            [
                "CREATE VIRTUAL TABLE \(table) USING fts5(text, content='', detail=none, columnsize=0, tokenize='unicode61 remove_diacritics 2')",
                "CREATE VIRTUAL TABLE \(terms) USING fts5vocab(\(table), instance)",
            ]
        case .postgres:
            [
                "CREATE TABLE \(table) (position bigint PRIMARY KEY, document tsvector NOT NULL)",
                "CREATE INDEX \(table)_documents ON \(table) USING gin(document)",
            ]
        }
    }

    /// Empties the index (a contentless FTS5 table takes no `DELETE`).
    static func clear(_ session: any SQLSession) throws {
        switch session.dialect {
        case .sqlite: try session.execute("INSERT INTO \(table)(\(table)) VALUES('delete-all')")
        case .postgres: try session.execute("DELETE FROM \(table)")
        }
    }

    static func isIndexable(_ text: String, of event: RecordedEvent) -> Bool {
        !event.contentErased && !text.isEmpty && SealedField.keyID(of: text) == nil
    }

    static func add(_ document: Int64, text: String, _ session: any SQLSession) throws {
        switch session.dialect {
        case .sqlite:
            try session.send(insertText, [.integer(document), .text(text)])
        case .postgres:
            // A lexeme array as one text: words hold no spaces.
            let lexemes = SearchTerms.lexemes(text)
            guard !lexemes.isEmpty else { return }
            try session.send(insertDocument, [.integer(document), .text(lexemes)])
        }
    }

    /// A document on SQLite: its text, which FTS5 tokenizes.
    static let insertText = "INSERT INTO \(table)(rowid, text) VALUES (?, ?)"
    /// A document on PostgreSQL: its words as one text, split and made a `tsvector` by the server.
    private static let insertDocument =
        "INSERT INTO \(table)(position, document) VALUES (?, array_to_tsvector(string_to_array(?, ' ')))"

    /// Removes `document`, indexed with exactly `text`.
    static func remove(_ document: Int64, text: String, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO \(table)(\(table), rowid, text) VALUES ('delete', ?, ?)")
            .execute(arguments: [document, text])
    }

    /// Merges the index's segments into one: removed documents' terms leave the file's live
    /// pages (the scrub after an erasure; `secure_delete` and `VACUUM` clear the freed ones).
    static func optimize(_ db: Database) throws {
        guard try db.tableExists(table) else { return }
        try db.execute(sql: "INSERT INTO \(table)(\(table)) VALUES('optimize')")
    }

    /// The FTS5 query for what a person typed: each word a quoted term (a trailing `*` keeps a
    /// prefix search), all required. FTS5's own syntax — columns, `NEAR`, `OR`, parentheses — is
    /// not offered, so no input is a syntax error or reaches beyond message text. `nil` when
    /// nothing searchable is left.
    static func query(_ text: String) -> String? {
        let words = searchWords(text)
        guard !words.isEmpty else { return nil }
        return words.map { word in
            "\"\(word.text.replacingOccurrences(of: "\"", with: "\"\""))\"" + (word.prefix ? " *" : "")
        }.joined(separator: " ")
    }

    struct Word: Equatable {
        var text: String
        var prefix: Bool
    }

    /// The words of a query as the index's tokenizer splits text: runs of letters and digits.
    static func searchWords(_ text: String) -> [Word] {
        var words: [Word] = []
        var current = ""
        var scalars = text.unicodeScalars.makeIterator()
        var next = scalars.next()
        while let scalar = next {
            next = scalars.next()
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.unicodeScalars.append(scalar)
                continue
            }
            if !current.isEmpty {
                words.append(Word(text: current, prefix: scalar == "*"))
                current = ""
            }
        }
        if !current.isEmpty { words.append(Word(text: current, prefix: false)) }
        return Array(words.prefix(16))
    }

    /// A short passage of `text` around the first words of the query found in it, split into
    /// plain and matching parts.
    static func snippet(_ text: String, words: [Word], length: Int = 160) -> [SearchHit.Part] {
        let options: String.CompareOptions = [.caseInsensitive, .diacriticInsensitive]
        var matches: [Range<String.Index>] = []
        for word in words {
            var searchRange = text.startIndex..<text.endIndex
            while let found = text.range(of: word.text, options: options, range: searchRange) {
                // Whole words, or word starts for a prefix search.
                let startsWord =
                    found.lowerBound == text.startIndex || !isWordCharacter(text[text.index(before: found.lowerBound)])
                var end = found.upperBound
                if word.prefix {
                    while end < text.endIndex, isWordCharacter(text[end]) { end = text.index(after: end) }
                }
                let endsWord = end == text.endIndex || !isWordCharacter(text[end])
                if startsWord && endsWord { matches.append(found.lowerBound..<end) }
                searchRange = found.upperBound..<text.endIndex
            }
        }
        matches.sort { $0.lowerBound < $1.lowerBound }
        // The window: from a little before the first match, `length` characters.
        let first = matches.first?.lowerBound ?? text.startIndex
        var start = text.index(first, offsetBy: -40, limitedBy: text.startIndex) ?? text.startIndex
        if start > text.startIndex {
            // Start at a word boundary.
            while start < first, isWordCharacter(text[text.index(before: start)]) { start = text.index(after: start) }
        }
        let end = text.index(start, offsetBy: length, limitedBy: text.endIndex) ?? text.endIndex
        var parts: [SearchHit.Part] = []
        if start > text.startIndex { parts.append(.init(text: "…", match: false)) }
        var cursor = start
        for match in matches where match.lowerBound >= cursor && match.upperBound <= end {
            if cursor < match.lowerBound {
                parts.append(.init(text: String(text[cursor..<match.lowerBound]), match: false))
            }
            parts.append(.init(text: String(text[match]), match: true))
            cursor = match.upperBound
        }
        if cursor < end { parts.append(.init(text: String(text[cursor..<end]), match: false)) }
        if end < text.endIndex { parts.append(.init(text: "…", match: false)) }
        return parts
    }

    private static func isWordCharacter(_ character: Character) -> Bool {
        character.unicodeScalars.contains { $0.properties.isAlphabetic || $0.properties.numericType != nil }
    }
}
