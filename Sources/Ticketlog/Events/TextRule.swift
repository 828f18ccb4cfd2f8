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
        if value.count > limit { return "\(field) is longer than \(limit) characters" }
        if let control = value.unicodeScalars.first(where: {
            isControl($0) && !(kind == .text && allowedInText.contains($0))
        }) {
            let allowed = kind == .text ? "; only tab and line breaks are allowed" : ""
            return "\(field) contains the control character \(hex(control))\(allowed)"
        }
        return nil
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

    private static let allowedInText: Set<Unicode.Scalar> = ["\t", "\n", "\r"]

    /// C0 and C1 controls and DEL (general category Cc).
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control
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
