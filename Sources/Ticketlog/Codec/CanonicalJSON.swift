import Foundation

/// Canonical JSON: keys sorted by their UTF-8 bytes, no insignificant whitespace, `/` not escaped,
/// non-ASCII written as UTF-8, integers for times. Equal values encode to identical bytes.
package enum CanonicalJSON {
    /// The package's one JSON encoder set-up: sorted keys, `/` unescaped. Stable, diffable output
    /// for stored bodies, NDJSON lines, CLI `--json` and API responses alike. A new one each time:
    /// `JSONEncoder` is cheap to create but not `Sendable`.
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        Array(try encoder().encode(value))
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: some Collection<UInt8>) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
