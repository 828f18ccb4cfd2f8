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
        var words: [String] = []
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            // ASCII, the common case: bytes, lower-cased by hand.
            var word: [UInt8] = []
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    word.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    word.append(byte + 32)
                default:
                    if !word.isEmpty {
                        words.append(String(decoding: word, as: UTF8.self))
                        word.removeAll(keepingCapacity: true)
                    }
                }
            }
            if !word.isEmpty { words.append(String(decoding: word, as: UTF8.self)) }
            return words
        }
        var word = String.UnicodeScalarView()
        func flush() {
            guard !word.isEmpty else { return }
            let folded = String(word).folding(options: .diacriticInsensitive, locale: nil).lowercased()
            // Folding can leave what is no word character (a mark alone): split again.
            words += folded.unicodeScalars.split { !isWordCharacter($0) }.map { String(String.UnicodeScalarView($0)) }
            word = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            if isWordCharacter(scalar) || isMark(scalar) {
                word.append(scalar)
            } else {
                flush()
            }
        }
        flush()
        return words
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
