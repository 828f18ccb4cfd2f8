import Crypto
import Foundation

/// Why a master key, a content key or a sealed field was refused (issue 17).
public struct ContentKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The key that wraps every content key of a log: 32 random bytes given to the process
/// (`TICKETLOG_MASTER_KEY` or a key file), never stored anywhere in the log. The log keeps only
/// its ``fingerprint``, so that a process given another key is refused before it writes.
///
/// Text form: `ticketlog-master-key-v1:<base64 of the 32 bytes>`.
public struct MasterKey: Sendable {
    public static let textPrefix = "ticketlog-master-key-v1:"

    let key: SymmetricKey
    /// Identifies the key without revealing it: the first 8 bytes of
    /// `SHA-256("ticketlog master key fingerprint\n" ‖ key)`, in hex.
    public let fingerprint: String

    private init(bytes: [UInt8]) {
        key = SymmetricKey(data: bytes)
        var hasher = SHA256()
        hasher.update(data: Array("ticketlog master key fingerprint\n".utf8))
        hasher.update(data: bytes)
        fingerprint = hasher.finalize().withUnsafeBytes { Array($0.prefix(8)) }.hexString
    }

    /// A new random key.
    public static func generate() -> MasterKey {
        MasterKey(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// A key from its text form (surrounding whitespace ignored).
    public init(text: String) throws(ContentKeyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.textPrefix) else {
            throw ContentKeyError("not a ticketlog master key: it must start with \(Self.textPrefix)")
        }
        guard let bytes = canonicalBase64(trimmed.dropFirst(Self.textPrefix.count)), bytes.count == 32 else {
            throw ContentKeyError("the master key is not the base64 of 32 bytes")
        }
        self.init(bytes: bytes)
    }

    /// The text form.
    public var text: String {
        Self.textPrefix + key.withUnsafeBytes { Data($0).base64EncodedString() }
    }
}

/// What a content key covers: one data subject's content in one ticket in one calendar month
/// (UTC). Erasing a person destroys every key of the subject, erasing a ticket every key of the
/// stream, a retention cut every key of the months before it.
public struct ContentKeyScope: Hashable, Sendable {
    /// The user whose content it is (the event's actor id).
    public var subject: String
    public var stream: String
    /// `YYYY-MM` of the event's `occurredAt`, UTC.
    public var period: String

    public init(subject: String, stream: String, period: String) {
        self.subject = subject
        self.stream = stream
        self.period = period
    }

    /// The scope of content `subject` wrote in `stream` at `time`.
    public init(subject: String, stream: StreamID, time: Timestamp) {
        self.init(subject: subject, stream: stream.rawValue, period: Self.month(of: time))
    }

    /// The first instant (UTC) of a period `YYYY-MM`; `nil` for anything else.
    static func start(ofPeriod period: String) -> Timestamp? {
        Timestamp(iso8601: period + "-01T00:00:00Z")
    }

    /// `YYYY-MM` of `time` in UTC, by arithmetic (``Timestamp/civil``): it runs for every sealed
    /// event, where a `Calendar` would cost more than the sealing.
    static func month(of time: Timestamp) -> String {
        let date = time.civil
        return "\(date.year)-\(date.month < 10 ? "0" : "")\(date.month)"
    }

    /// Bound into the wrapping of the key: a wrapped key moved to another scope's row does not
    /// open.
    var associatedData: [UInt8] {
        Array("ticketlog content key v1\n\(subject)\n\(stream)\n\(period)".utf8)
    }
}

/// A data key for content of one ``ContentKeyScope``: 32 random bytes, stored only wrapped by
/// the master key (ChaCha20-Poly1305), destroyed on erasure.
struct ContentKey: Sendable {
    /// 12 random bytes in base64url without padding (16 characters): what sealed fields name.
    let id: String
    let scope: ContentKeyScope
    let key: SymmetricKey

    static func generate(for scope: ContentKeyScope) -> ContentKey {
        var id: [UInt8] = []
        SystemRandom.bytes(12).withUnsafeBytes { Base64Bytes.encode($0, into: &id) }
        for index in id.indices {
            if id[index] == UInt8(ascii: "+") { id[index] = UInt8(ascii: "-") }
            if id[index] == UInt8(ascii: "/") { id[index] = UInt8(ascii: "_") }
        }
        return ContentKey(id: String(decoding: id, as: UTF8.self), scope: scope, key: SymmetricKey(size: .bits256))
    }

    /// What a wrapped key is bound to: its id and its scope.
    private static func wrappingData(id: String, scope: ContentKeyScope) -> [UInt8] {
        Array("\(id)\n".utf8) + scope.associatedData
    }

    /// The key sealed by `master` (nonce ‖ ciphertext ‖ tag), bound to its id and scope.
    func wrapped(by master: MasterKey) throws -> [UInt8] {
        var wrapped: [UInt8] = []
        try key.withUnsafeBytes { bytes in
            try FieldCipher.seal(
                bytes, key: master.key, nonce: SystemRandom.bytes(FieldCipher.nonceCount),
                associatedData: Self.wrappingData(id: id, scope: scope), into: &wrapped)
        }
        return wrapped
    }

    /// The key of a wrapped form; throws when `master` did not wrap it for this id and scope.
    static func unwrap(_ wrapped: [UInt8], id: String, scope: ContentKeyScope, master: MasterKey)
        throws(ContentKeyError)
        -> ContentKey
    {
        do {
            let box = try ChaChaPoly.SealedBox(combined: wrapped)
            let bytes = try ChaChaPoly.open(
                box, using: master.key, authenticating: wrappingData(id: id, scope: scope))
            guard bytes.count == 32 else { throw ContentKeyError("a content key is not 32 bytes") }
            return ContentKey(id: id, scope: scope, key: SymmetricKey(data: bytes))
        } catch let error as ContentKeyError {
            throw error
        } catch {
            throw ContentKeyError(
                "content key \(id) does not open with this master key (another key, or a damaged or moved row)")
        }
    }
}

/// A personal field as the canonical JSON holds it in an encrypted log: the string
/// `sealed:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>` — ChaCha20-Poly1305 under the content
/// key, a fresh nonce per field, the event id and the field's path as associated data (a sealed
/// value copied into another event or field does not open). A string, so payload types decode
/// unchanged; the chain and the Merkle leaves commit to it, so destroying the key changes
/// nothing they check.
enum SealedField {
    static let prefix = "sealed:v1:"

    private static let associatedDataPrefix = Array("ticketlog sealed field v1\n".utf8)

    /// What a field is bound to: `"ticketlog sealed field v1\n"`, the event id's 16 bytes, `"\n"`,
    /// the field's path (opening builds it as an array; sealing on the stack).
    static func associatedData(event: UUID, path: String) -> [UInt8] {
        var path = path
        return path.withUTF8 { path in
            let count = associatedDataCount(path: path)
            return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                writeAssociatedData(event: event, path: path, to: UnsafeMutableRawPointer(buffer.baseAddress!))
                initialized = count
            }
        }
    }

    /// The size of ``associatedData(event:path:)`` for `path`.
    private static func associatedDataCount(path: UnsafeBufferPointer<UInt8>) -> Int {
        associatedDataPrefix.count + 17 + path.count
    }

    /// Writes ``associatedData(event:path:)`` at `out`, which has room for
    /// ``associatedDataCount(path:)`` bytes.
    private static func writeAssociatedData(
        event: UUID, path: UnsafeBufferPointer<UInt8>, to out: UnsafeMutableRawPointer
    ) {
        var out = out
        associatedDataPrefix.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        out += associatedDataPrefix.count
        withUnsafeBytes(of: event.uuid) { out.copyMemory(from: $0.baseAddress!, byteCount: 16) }
        out += 16
        out.storeBytes(of: UInt8(ascii: "\n"), as: UInt8.self)
        out += 1
        if let base = path.baseAddress { out.copyMemory(from: base, byteCount: path.count) }
    }

    /// A sealed field: its value in the canonical JSON, and the bytes its base64 spells (the
    /// stored body keeps those raw: ``SealedPacking``).
    struct Sealed {
        var value: String
        var ciphertext: [UInt8]
    }

    static func seal(_ plaintext: String, key: ContentKey, event: UUID, path: String) throws -> String {
        try sealed(plaintext, key: key, event: event, path: path).value
    }

    /// `plaintext` sealed: the nonce drawn and the associated data built on the stack, the
    /// ciphertext kept for the stored body.
    static func sealed(_ plaintext: String, key: ContentKey, event: UUID, path: String) throws -> Sealed {
        var plaintext = plaintext
        var path = path
        var combined: [UInt8] = []
        combined.reserveCapacity(FieldCipher.nonceCount + plaintext.utf8.count + FieldCipher.tagCount)
        try path.withUTF8 { path in
            let associatedCount = associatedDataCount(path: path)
            try withUnsafeTemporaryAllocation(byteCount: FieldCipher.nonceCount + associatedCount, alignment: 1) {
                buffer in
                let nonce = UnsafeMutableRawBufferPointer(rebasing: buffer[..<FieldCipher.nonceCount])
                SystemRandom.fill(random: nonce)
                let associated = buffer.baseAddress! + FieldCipher.nonceCount
                writeAssociatedData(event: event, path: path, to: associated)
                try plaintext.withUTF8 { bytes in
                    try FieldCipher.seal(
                        UnsafeRawBufferPointer(bytes), key: key.key, nonce: UnsafeRawBufferPointer(nonce),
                        associatedData: UnsafeRawBufferPointer(start: associated, count: associatedCount),
                        into: &combined)
                }
            }
        }
        let idCount = key.id.utf8.count
        let count = prefix.utf8.count + idCount + 1 + Base64Bytes.encodedCount(combined.count)
        let value = String(unsafeUninitializedCapacity: count) { text in
            var out = text.baseAddress!
            var part = prefix
            part.withUTF8 { out.update(from: $0.baseAddress!, count: $0.count) }
            out += part.utf8.count
            part = key.id
            part.withUTF8 { out.update(from: $0.baseAddress!, count: $0.count) }
            out += idCount
            out.pointee = UInt8(ascii: ":")
            out += 1
            combined.withUnsafeBytes { Base64Bytes.encode($0, to: out) }
            return count
        }
        return Sealed(value: value, ciphertext: combined)
    }

    /// The key id a sealed value names; `nil` when `value` is not a sealed field.
    static func keyID(of value: String) -> Substring? {
        guard value.hasPrefix(prefix) else { return nil }
        let rest = value.dropFirst(prefix.count)
        guard let colon = rest.firstIndex(of: ":"), rest.distance(from: rest.startIndex, to: colon) == 16 else {
            return nil
        }
        return rest[..<colon]
    }

    static func open(_ value: String, key: ContentKey, event: UUID, path: String) throws(ContentKeyError) -> String {
        guard let id = keyID(of: value), id == key.id else {
            throw ContentKeyError("the field is not sealed with content key \(key.id)")
        }
        let encoded = value.dropFirst(prefix.count + 17)
        guard let combined = canonicalBase64(encoded),
            let box = try? ChaChaPoly.SealedBox(combined: combined),
            let bytes = try? ChaChaPoly.open(
                box, using: key.key, authenticating: associatedData(event: event, path: path)),
            let text = String(bytes: bytes, encoding: .utf8)
        else {
            throw ContentKeyError("the sealed field \(path) of event \(event.uuidString.lowercased()) does not open")
        }
        return text
    }
}
