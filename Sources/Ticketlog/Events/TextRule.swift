/// The one rule every free-text field passes on its way into the log — message texts, notes,
/// titles, names, ids, whether they come from the API, a webhook or a token — and the one way
/// such text is shown to people.
///
/// Stored text is never trusted to be harmless to print: a log written by an older build, or a
/// file edited by hand, may hold anything. So every human-readable output (audit lines, CLI
/// tables, server logs) shows text through ``escaped(_:)``, whatever the rule let in.
public enum TextRule {
    /// What a field may hold besides printable characters.
    public enum Kind: Sendable {
        /// One line: names, ids, titles, kinds, URLs. No control characters at all.
        case line
        /// Prose: message texts and notes. Tab and line breaks are allowed, no other control character.
        case text
    }

    /// Checks `value` against the rule: not blank (unless `allowEmpty`), at most `limit`
    /// characters, and no control character that `kind` does not allow.
    ///
    /// - Throws: ``EventStoreError`` with ``EventStoreError/Code/invalidEvent`` and a message
    ///   naming `field` and the offending character.
    public static func check(
        _ value: String, _ field: String, limit: Int, kind: Kind = .line, allowEmpty: Bool = false
    ) throws(EventStoreError) {
        if let problem = problem(value, field, limit: limit, kind: kind, allowEmpty: allowEmpty) {
            throw EventStoreError.invalid(problem)
        }
    }

    /// What is wrong with `value` under the rule, in words; `nil` when it passes.
    public static func problem(
        _ value: String, _ field: String, limit: Int, kind: Kind = .line, allowEmpty: Bool = false
    ) -> String? {
        if !allowEmpty, value.allSatisfy(\.isWhitespace) { return "\(field) must not be empty" }
        // A character is at least one byte: the characters are counted only when the bytes
        // are over the limit.
        if value.utf8.count > limit, value.count > limit { return "\(field) is longer than \(limit) characters" }
        if let control = firstControl(in: value, allowingLineBreaks: kind == .text) {
            let allowed = kind == .text ? "; only tab and line breaks are allowed" : ""
            return "\(field) contains the control character \(hex(control))\(allowed)"
        }
        return nil
    }

    /// The first control character of `value` (general category Cc: U+0000–U+001F and
    /// U+007F–U+009F, a set Unicode's stability policy fixes), tab, line feed and carriage
    /// return aside when `allowingLineBreaks`. Read from the UTF-8 bytes: C0 and DEL are single
    /// bytes, C1 is 0xC2 followed by 0x80–0x9F, and 0xC2 is never a continuation byte. Every
    /// API post and webhook message passes here inside the writer's turn; asking each scalar's
    /// general category was ~3% of a `POST …/messages`' writer.
    static func firstControl(in value: String, allowingLineBreaks: Bool) -> Unicode.Scalar? {
        func scan(_ bytes: some Sequence<UInt8>) -> Unicode.Scalar? {
            var afterC2 = false
            for byte in bytes {
                if byte < 0x20 {
                    if !(allowingLineBreaks && (byte == 0x09 || byte == 0x0A || byte == 0x0D)) {
                        return Unicode.Scalar(byte)
                    }
                } else if byte == 0x7F || (afterC2 && byte <= 0x9F) {
                    // After 0xC2 comes a continuation byte (0x80–0xBF), equal to its scalar.
                    return Unicode.Scalar(byte)
                }
                afterC2 = byte == 0xC2
            }
            return nil
        }
        if let found = value.utf8.withContiguousStorageIfAvailable({ scan($0) }) { return found }
        return scan(value.utf8)
    }

    /// `text` made safe to show on one line of a terminal, a log or a table: control characters
    /// (line breaks and tabs included), Unicode line and paragraph separators and bidirectional
    /// overrides and isolates are written as escapes (`\n`, `\u{1B}`), so stored text can neither
    /// start a line of its own, move the cursor, clear the screen, nor reorder what follows it.
    /// Text without such characters comes back unchanged.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                result.append(scalar)
                continue
            }
            let escape: String =
                switch scalar {
                case "\n": "\\n"
                case "\r": "\\r"
                case "\t": "\\t"
                default: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                }
            result.append(contentsOf: escape.unicodeScalars)
        }
        return String(result)
    }

    /// C0 and C1 controls and DEL (general category Cc, fixed by Unicode's stability policy).
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x2028, 0x2029,  // line and paragraph separators
            0x202A...0x202E,  // bidirectional embeddings and overrides
            0x2066...0x2069:  // bidirectional isolates
            true
        default:
            isControl(scalar)
        }
    }

    private static func hex(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
