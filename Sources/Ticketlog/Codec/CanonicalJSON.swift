import Foundation

/// Canonical JSON: keys sorted by their UTF-8 bytes, no insignificant whitespace, `/` not escaped,
/// non-ASCII written as UTF-8, integers for times. Equal values encode to identical bytes.
enum CanonicalJSON {
    static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        // JSONEncoder is cheap to create but not Sendable; one per call keeps this thread-safe.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: some Collection<UInt8>) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
