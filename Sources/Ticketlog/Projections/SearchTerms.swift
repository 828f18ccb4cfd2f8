import Foundation

/// The words of a text as the search index keeps them on PostgreSQL: runs of letters, digits and
/// combining marks, case and diacritics folded — what FTS5's `unicode61 remove_diacritics 2`
/// tokenizer makes of the same text on SQLite, so a word is found the same way on both
/// backends. PostgreSQL gets them as a lexeme array (`array_to_tsvector`), not the text: its
/// own parser (`to_tsvector`) was two thirds of an append's server time on the bench, and it
/// keeps diacritics. A query is split by the same function.
enum SearchTerms {
    /// The words of `text`, in order, repeats kept (the index keeps each once).
    ///
    /// ASCII letters and digits are lower-cased byte by byte; only a word holding another
    /// character goes through Foundation's folding (a sixth of a PostgreSQL append's client time
    /// when every text with an emoji took that path whole).
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        scan(text) { words.append(String(decoding: $0, as: UTF8.self)) }
        return words
    }

    /// The words of `text` joined by single spaces (words hold none): what an indexed document
    /// is sent as on PostgreSQL, built as one string rather than a word at a time and joined.
    static func lexemes(_ text: String) -> String {
        var joined: [UInt8] = []
        joined.reserveCapacity(text.utf8.count)
        scan(text) { word in
            if !joined.isEmpty { joined.append(UInt8(ascii: " ")) }
            joined.append(contentsOf: word)
        }
        return String(decoding: joined, as: UTF8.self)
    }

    /// Calls `body` with the UTF-8 of each word of `text`, in order.
    private static func scan(_ text: String, _ body: ([UInt8]) -> Void) {
        var word: [UInt8] = []
        var isASCII = true
        func flush() {
            guard !word.isEmpty else { return }
            defer {
                word.removeAll(keepingCapacity: true)
                isASCII = true
            }
            guard !isASCII else {
                body(word)
                return
            }
            let folded = String(decoding: word, as: UTF8.self).folding(options: .diacriticInsensitive, locale: nil)
                .lowercased()
            // Folding can leave what is no word character (a mark alone): split again.
            for part in folded.unicodeScalars.split(whereSeparator: { !isWordCharacter($0) }) {
                body(Array(String(String.UnicodeScalarView(part)).utf8))
            }
        }
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                // The ASCII word characters are the letters and digits; no ASCII mark exists.
                let byte = UInt8(scalar.value)
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): word.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): word.append(byte + 32)
                default: flush()
                }
            } else if isWordCharacter(scalar) || isMark(scalar) {
                word.append(contentsOf: scalar.utf8)
                isASCII = false
            } else {
                flush()
            }
        }
        flush()
    }

    private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber,
            .letterNumber, .otherNumber, .privateUse:
            true
        default:
            false
        }
    }

    private static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: true
        default: false
        }
    }
}
