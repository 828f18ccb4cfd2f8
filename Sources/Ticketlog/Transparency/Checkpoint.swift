import Foundation

/// A C2SP `tlog-checkpoint`: the log's origin, its size (events) and the Merkle root over them,
/// as the text `<origin>\n<size>\n<base64 root>\n`. Signed, it is the body of a signed note
/// (``NoteSigner/sign(_:)``) whose key name is the origin.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int64
    public var root: [UInt8]

    public init(origin: String, size: Int64, root: [UInt8]) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The note text.
    public var text: String {
        "\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n"
    }

    /// A checkpoint from its note text (extension lines after the root are allowed and ignored).
    public init(text: String) throws(ProofError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard text.hasSuffix("\n"), lines.count >= 4 else {
            throw .unusable("not a checkpoint: expected an origin, a size and a root hash on three lines")
        }
        guard !lines[0].isEmpty else { throw .unusable("the checkpoint's origin line is empty") }
        guard let size = Int64(lines[1]), size >= 0, String(size) == lines[1] else {
            throw .unusable("the checkpoint's size '\(lines[1])' is not a decimal number without leading zeros")
        }
        guard let root = canonicalBase64(lines[2]), root.count == 32 else {
            throw .unusable("the checkpoint's root is not the base64 of a 32-byte hash")
        }
        guard !lines.dropFirst(3).dropLast().contains(where: \.isEmpty) else {
            throw .unusable("the checkpoint has an empty extension line")
        }
        self.init(origin: String(lines[0]), size: size, root: Array(root))
    }

    /// The checkpoint of a signed note, when `verifier` signed it and its origin is the key's name.
    public static func open(_ note: String, verifier: NoteVerifier) throws(ProofError) -> Checkpoint {
        let checkpoint = try Checkpoint(text: verifier.open(note))
        guard checkpoint.origin == verifier.name else {
            throw .unusable(
                "the checkpoint is from origin \(checkpoint.origin.debugDescription), not \(verifier.name.debugDescription)"
            )
        }
        return checkpoint
    }
}

/// An inclusion proof in the C2SP `tlog-proof@v1` text format: the leaf index, its audit path
/// (RFC 6962 §2.1.1) and the signed checkpoint of the tree it is proved in.
public struct InclusionProof: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"

    /// The leaf index: the event's position − 1.
    public var index: Int64
    public var path: [[UInt8]]
    /// The signed checkpoint note, verbatim.
    public var checkpointNote: String

    public init(index: Int64, path: [[UInt8]], checkpointNote: String) {
        self.index = index
        self.path = path
        self.checkpointNote = checkpointNote
    }

    public var text: String {
        var out = "\(Self.header)\nindex \(index)\n"
        for hash in path { out += Data(hash).base64EncodedString() + "\n" }
        return out + "\n" + checkpointNote
    }

    public init(text: String) throws(ProofError) {
        guard let blank = text.range(of: "\n\n") else {
            throw .unusable("not a tlog-proof: no blank line before the checkpoint")
        }
        var lines = text[..<blank.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard lines.popFirst() == Substring(Self.header) else {
            throw .unusable("not a tlog-proof: the first line is not \(Self.header)")
        }
        if lines.first?.hasPrefix("extra ") == true { lines = lines.dropFirst() }
        guard let indexLine = lines.popFirst(), indexLine.hasPrefix("index "),
            let index = Int64(indexLine.dropFirst(6)), index >= 0, String(index) == indexLine.dropFirst(6)
        else { throw .unusable("the tlog-proof has no valid 'index N' line") }
        var path: [[UInt8]] = []
        for line in lines {
            guard let hash = canonicalBase64(line), hash.count == 32 else {
                throw .unusable("a line of the tlog-proof's audit path is not the base64 of a 32-byte hash")
            }
            path.append(Array(hash))
        }
        guard path.count <= 64 else { throw .unusable("the tlog-proof's audit path is longer than 64 hashes") }
        self.init(index: index, path: path, checkpointNote: String(text[blank.upperBound...]))
    }

    /// Checks that `entry` is leaf ``index`` of the tree the checkpoint (signed by `verifier`)
    /// commits to, and returns that checkpoint.
    public func verify(entry: [UInt8], verifier: NoteVerifier) throws(ProofError) -> Checkpoint {
        let checkpoint = try Checkpoint.open(checkpointNote, verifier: verifier)
        guard index < checkpoint.size else {
            throw .unusable("the proof is for index \(index), outside the checkpoint's tree of size \(checkpoint.size)")
        }
        guard
            MerkleTree.verifyInclusion(
                leaf: MerkleTree.leafHash(entry), index: index, size: checkpoint.size, path: path,
                root: checkpoint.root)
        else {
            throw .notVerified(
                "the entry at index \(index) is not in the tree of size \(checkpoint.size) the checkpoint signs (the audit path does not lead to its root)"
            )
        }
        return checkpoint
    }
}

/// A consistency proof (RFC 9162 §2.1.4) between the trees of two sizes, as text:
/// `ticketlog/consistency-proof@v1`, `old <size>`, `new <size>`, then one base64 hash per line.
/// (C2SP has no text format for these; this one follows `tlog-proof`'s conventions.)
public struct ConsistencyProof: Sendable, Equatable {
    public static let header = "ticketlog/consistency-proof@v1"

    public var oldSize: Int64
    public var newSize: Int64
    public var path: [[UInt8]]

    public init(oldSize: Int64, newSize: Int64, path: [[UInt8]]) {
        self.oldSize = oldSize
        self.newSize = newSize
        self.path = path
    }

    public var text: String {
        var out = "\(Self.header)\nold \(oldSize)\nnew \(newSize)\n"
        for hash in path { out += Data(hash).base64EncodedString() + "\n" }
        return out
    }

    public init(text: String) throws(ProofError) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.popFirst() == Substring(Self.header) else {
            throw .unusable("not a consistency proof: the first line is not \(Self.header)")
        }
        func size(_ label: String) throws(ProofError) -> Int64 {
            guard let line = lines.popFirst(), line.hasPrefix(label + " "),
                let value = Int64(line.dropFirst(label.count + 1)), value >= 0
            else { throw .unusable("the consistency proof has no valid '\(label) N' line") }
            return value
        }
        let old = try size("old")
        let new = try size("new")
        guard old <= new else {
            throw .unusable("the consistency proof's old size \(old) is above its new size \(new)")
        }
        var path: [[UInt8]] = []
        for line in lines {
            guard let hash = canonicalBase64(line), hash.count == 32 else {
                throw .unusable("a line of the consistency proof is not the base64 of a 32-byte hash")
            }
            path.append(Array(hash))
        }
        self.init(oldSize: old, newSize: new, path: path)
    }

    /// Checks that `old` is a prefix of `new`: same origin, the sizes this proof is for, and the
    /// proof leads from one root to the other.
    public func verify(old: Checkpoint, new: Checkpoint) throws(ProofError) {
        guard old.origin == new.origin else {
            throw .unusable("the checkpoints are from different origins (\(old.origin), \(new.origin))")
        }
        guard old.size == oldSize, new.size == newSize else {
            throw .unusable(
                "the proof is between sizes \(oldSize) and \(newSize); the checkpoints have sizes \(old.size) and \(new.size)"
            )
        }
        guard
            MerkleTree.verifyConsistency(
                oldSize: oldSize, newSize: newSize, oldRoot: old.root, newRoot: new.root, proof: path)
        else {
            throw .notVerified(
                "the tree of size \(oldSize) is not a prefix of the tree of size \(newSize): the log was rewritten between them"
            )
        }
    }
}
