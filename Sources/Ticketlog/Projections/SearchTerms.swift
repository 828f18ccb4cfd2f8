import Foundation

/// The words of a text as the search index keeps them on PostgreSQL: runs of letters, digits and
/// combining marks, case and diacritics folded — what FTS5's `unicode61 remove_diacritics 2`
/// tokenizer makes of the same text on SQLite, so a word is found the same way on both
/// backends. PostgreSQL gets them as a lexeme array (`array_to_tsvector`), not the text: its
/// own parser (`to_tsvector`) was two thirds of an append's server time on the bench, and it
/// keeps diacritics. A query is split by the same function.
enum SearchTerms {
    /// The words of `text`, in order, repeats kept (the index keeps each once).
    static func words(_ text: String) -> [String] {
        lexemes(text).split(separator: " ").map(String.init)
    }

    /// The words of `text` joined by single spaces (words hold none): what an indexed document
    /// is sent as on PostgreSQL.
    ///
    /// ASCII letters and digits are lower-cased byte by byte as they are copied; only a word
    /// holding another character goes through Foundation's folding (a sixth of a PostgreSQL
    /// append's client time when every text with an emoji took that path whole). One buffer,
    /// no word copied twice: building each word apart and joining them was a tenth of the
    /// client's time of a PostgreSQL append.
    static func lexemes(_ text: String) -> String {
        var joined = Joined(capacity: text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                // The ASCII word characters are the letters and digits; no ASCII mark exists.
                let byte = UInt8(truncatingIfNeeded: scalar.value)
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    joined.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    joined.append(byte + 32)
                default:
                    joined.endWord()
                }
            } else if isWordCharacter(scalar) || isMark(scalar) {
                joined.append(scalar)
            } else {
                joined.endWord()
            }
        }
        joined.endWord()
        return String(decoding: joined.bytes, as: UTF8.self)
    }

    /// The words found so far, joined, and the one being read (a local value, not captured
    /// state: appending a byte is a plain array append).
    private struct Joined {
        var bytes: [UInt8] = []
        /// Where the current word's separator and first byte are in `bytes`; -1 between words.
        var separatorStart = -1
        var wordStart = -1
        var isASCII = true

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func append(_ byte: UInt8) {
            if wordStart < 0 { beginWord() }
            bytes.append(byte)
        }

        mutating func append(_ scalar: Unicode.Scalar) {
            if wordStart < 0 { beginWord() }
            bytes.append(contentsOf: scalar.utf8)
            isASCII = false
        }

        private mutating func beginWord() {
            separatorStart = bytes.count
            if !bytes.isEmpty { bytes.append(UInt8(ascii: " ")) }
            wordStart = bytes.count
        }

        /// Ends the current word: a word with a character beyond ASCII is folded now.
        mutating func endWord() {
            guard wordStart >= 0 else { return }
            defer {
                wordStart = -1
                isASCII = true
            }
            guard !isASCII else { return }
            let folded = String(decoding: bytes[wordStart...], as: UTF8.self)
                .folding(options: .diacriticInsensitive, locale: nil).lowercased()
            bytes.removeSubrange(separatorStart...)
            // Folding can leave what is no word character (a mark alone): split again.
            for part in folded.unicodeScalars.split(whereSeparator: { !isWordCharacter($0) }) {
                if !bytes.isEmpty { bytes.append(UInt8(ascii: " ")) }
                bytes.append(contentsOf: String(String.UnicodeScalarView(part)).utf8)
            }
        }
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
