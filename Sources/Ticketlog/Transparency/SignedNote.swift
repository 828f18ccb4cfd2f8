import Crypto
import Foundation

/// Why a key, note, checkpoint, proof or bundle was refused.
///
/// ``Kind/unusable``: the input is not what it claims to be (malformed, foreign, truncated); a
/// command exits 2. ``Kind/notVerified``: it is well formed and does not verify (a wrong
/// signature, a root that does not match); a command exits 1. ``message`` says what is wrong in
/// one line.
public struct ProofError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unusable
        case notVerified
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func unusable(_ message: String) -> ProofError { ProofError(.unusable, message) }
    static func notVerified(_ message: String) -> ProofError { ProofError(.notVerified, message) }

    /// The same error with `context` (a file name, say) in front of its message.
    public func naming(_ context: String) -> ProofError {
        ProofError(kind, "\(context): \(message)")
    }

    public var description: String { message }
}

/// The bytes of standard base64 text in its one canonical spelling (padding, and zero bits where
/// the last character has bits to spare); `nil` for anything else, so that no two texts decode
/// to the same bytes and a changed character is always a changed value.
func canonicalBase64(_ text: some StringProtocol) -> [UInt8]? {
    var utf8 = Array(text.utf8)
    return utf8.withUnsafeMutableBytes { Base64Bytes.decode(UnsafeRawBufferPointer($0)) }
}

/// The signature type byte of Ed25519 in C2SP signed notes.
private let ed25519Type: UInt8 = 0x01

/// A key name as signed notes allow it: non-empty, no spaces, no `+`, no control characters.
private func checkKeyName(_ name: String) throws(ProofError) {
    guard !name.isEmpty else { throw .unusable("the key name is empty") }
    guard
        !name.unicodeScalars.contains(where: {
            $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f
        })
    else {
        throw .unusable("the key name \(name.debugDescription) contains a space, a '+' or a control character")
    }
}

/// The key ID of signed notes: the first four bytes (big-endian) of
/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
private func noteKeyID(name: String, publicKey: [UInt8]) -> UInt32 {
    var hasher = SHA256()
    hasher.update(data: Array(name.utf8) + [0x0a, ed25519Type])
    hasher.update(data: publicKey)
    return Array(hasher.finalize()).prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
}

private func hex8(_ id: UInt32) -> String {
    let digits = String(id, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

/// The Ed25519 key that signs checkpoints, in the text form of Go's `golang.org/x/mod/sumdb/note`
/// (which C2SP signed notes come from): `PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 ‖ seed)>`.
///
/// It never goes into the log: `ticketlog keygen` writes it to a file of mode 0600, and the
/// commands that sign read it from there.
public struct NoteSigner: Sendable {
    /// The key name: the log's origin.
    public let name: String
    public let keyID: UInt32
    private let key: Curve25519.Signing.PrivateKey

    /// A new random key named `name`.
    public init(generatingFor name: String) throws(ProofError) {
        try checkKeyName(name)
        self.name = name
        key = Curve25519.Signing.PrivateKey()
        keyID = noteKeyID(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// A signer key from its text form.
    public init(text: String) throws(ProofError) {
        let trimmed = text.hasSuffix("\n") ? String(text.dropLast()) : text
        // The key's base64 may hold '+' itself: name and key id are the first two fields.
        let parts = trimmed.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            if (try? NoteVerifier(text: trimmed)) != nil {
                throw .unusable("this is a verifier (public) key, not a signer key (PRIVATE+KEY+…)")
            }
            throw .unusable("not a signer key: expected PRIVATE+KEY+<name>+<key id>+<key>")
        }
        let name = parts[2]
        try checkKeyName(name)
        guard let data = canonicalBase64(parts[4]), data.count == 33, data.first == ed25519Type else {
            throw .unusable("the key data is not an Ed25519 signer key (base64 of 0x01 and 32 bytes)")
        }
        let key: Curve25519.Signing.PrivateKey
        do {
            key = try Curve25519.Signing.PrivateKey(rawRepresentation: data.dropFirst())
        } catch {
            throw .unusable("the key data is not an Ed25519 private key")
        }
        let id = noteKeyID(name: name, publicKey: Array(key.publicKey.rawRepresentation))
        guard parts[3] == hex8(id) else {
            throw .unusable("the key id \(parts[3]) does not belong to this key and name (expected \(hex8(id)))")
        }
        self.name = name
        self.key = key
        keyID = id
    }

    /// The text form (without a newline).
    public var text: String {
        "PRIVATE+KEY+\(name)+\(hex8(keyID))+" + Data([ed25519Type] + key.rawRepresentation).base64EncodedString()
    }

    /// The verifier key of this signer.
    public var verifier: NoteVerifier {
        NoteVerifier(name: name, publicKey: key.publicKey)
    }

    /// `text` signed: the signed note (`text`, a blank line, `— <name> <base64(key id ‖ signature)>`).
    ///
    /// - Parameter text: the note text; must end in a newline.
    public func sign(_ text: String) throws -> String {
        let signature = try key.signature(for: Array(text.utf8))
        let id = withUnsafeBytes(of: keyID.bigEndian) { Array($0) }
        return text + "\n— \(name) " + Data(id + signature).base64EncodedString() + "\n"
    }
}

/// The public half of a ``NoteSigner``, in the text form `<name>+<key id, 8 hex>+<base64(0x01 ‖
/// public key)>`: what an auditor is given to check checkpoints, proofs and bundles.
public struct NoteVerifier: Sendable, Equatable {
    public let name: String
    public let keyID: UInt32
    let publicKey: [UInt8]

    init(name: String, publicKey: Curve25519.Signing.PublicKey) {
        self.name = name
        self.publicKey = Array(publicKey.rawRepresentation)
        keyID = noteKeyID(name: name, publicKey: self.publicKey)
    }

    /// A verifier key from its text form.
    public init(text: String) throws(ProofError) {
        let trimmed = text.hasSuffix("\n") ? String(text.dropLast()) : text
        if trimmed.hasPrefix("PRIVATE+KEY+") {
            throw .unusable("this is a signer (private) key; give the verifier key (keygen writes it beside)")
        }
        let parts = trimmed.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { throw .unusable("not a verifier key: expected <name>+<key id>+<key>") }
        try checkKeyName(parts[0])
        guard let data = canonicalBase64(parts[2]), data.count == 33, data.first == ed25519Type,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: data.dropFirst())
        else {
            throw .unusable("the key data is not an Ed25519 verifier key (base64 of 0x01 and 32 bytes)")
        }
        self.init(name: parts[0], publicKey: key)
        guard parts[1] == hex8(keyID) else {
            throw .unusable("the key id \(parts[1]) does not belong to this key and name (expected \(hex8(keyID)))")
        }
    }

    /// The text form (without a newline).
    public var text: String {
        "\(name)+\(hex8(keyID))+" + Data([ed25519Type] + publicKey).base64EncodedString()
    }

    /// The text of the signed note `note`, when a signature of this key on it verifies.
    ///
    /// Signatures of other keys are ignored (as C2SP signed-note says); a signature of this key
    /// that does not verify refuses the note.
    public func open(_ note: String) throws(ProofError) -> String {
        guard !note.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw .unusable("the note contains a control character")
        }
        guard note.hasSuffix("\n"), let separator = note.range(of: "\n\n", options: .backwards) else {
            throw .unusable("not a signed note: no blank line before signature lines, or no final newline")
        }
        let text = String(note[..<separator.lowerBound]) + "\n"
        let lines = note[separator.upperBound...].dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty, lines.count <= 100 else { throw .unusable("the note has no signature lines") }
        var verified = false
        for line in lines {
            guard line.hasPrefix("— ") else { throw .unusable("a signature line does not start with '— '") }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let signature = canonicalBase64(fields[1]), signature.count > 4 else {
                throw .unusable("a signature line is not '— <name> <base64 signature>'")
            }
            let id = signature.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard fields[0] == name, id == keyID else { continue }
            let key = try! Curve25519.Signing.PublicKey(rawRepresentation: publicKey)
            guard signature.count == 68, key.isValidSignature(signature.dropFirst(4), for: Array(text.utf8)) else {
                throw .notVerified("the signature of \(name) does not verify")
            }
            verified = true
        }
        guard verified else {
            throw .notVerified("the note carries no signature of the key \(name)+\(hex8(keyID))")
        }
        return text
    }
}
