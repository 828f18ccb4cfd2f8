import Foundation

/// A ticket's events with a proof for each that it is in the log a signed checkpoint commits
/// to: what `ticketlog evidence` writes and an auditor checks offline (`ticketlog
/// verify-evidence`, or any RFC 6962 / C2SP tool).
///
/// Layout (a directory, or the same files in a tar archive):
/// - `entries.ndjson`: the ticket's events, one entry per line (each exactly what `ticketlog
///   read` prints: the bytes its Merkle leaf hashes), oldest first;
/// - `proofs/<index>.tlog-proof`: a C2SP `tlog-proof@v1` per entry, `index` = position − 1;
/// - `checkpoint`: the signed checkpoint every proof is against;
/// - `verifier.key`: the log's verifier key (for convenience: an auditor checks against the key
///   they were given, not the one in the bundle);
/// - `README.txt`: how to check it.
public struct EvidenceBundle: Sendable {
    public struct Entry: Sendable {
        public var position: Int64
        /// The entry bytes (no newline).
        public var line: [UInt8]
        public var proof: InclusionProof?
    }

    public var stream: StreamID
    public var checkpointNote: String
    public var entries: [Entry]

    /// The files of the bundle, by relative path.
    public func files(verifierKey: String?) -> [(path: String, bytes: [UInt8])] {
        var files: [(String, [UInt8])] = [
            ("README.txt", Array(readme.utf8)),
            ("checkpoint", Array(checkpointNote.utf8)),
            ("entries.ndjson", entries.flatMap { $0.line + [0x0a] }),
        ]
        if let verifierKey { files.append(("verifier.key", Array((verifierKey + "\n").utf8))) }
        for entry in entries {
            if let proof = entry.proof {
                files.append(("proofs/\(entry.position - 1).tlog-proof", Array(proof.text.utf8)))
            }
        }
        return files
    }

    /// Writes the bundle into `directory` (created; it must not exist or be empty).
    public func write(to directory: String, verifierKey: String?) throws {
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: directory), !existing.isEmpty {
            throw EventStoreError.invalid("\(directory) exists and is not empty; give a new directory")
        }
        try manager.createDirectory(atPath: directory + "/proofs", withIntermediateDirectories: true)
        for (path, bytes) in files(verifierKey: verifierKey) {
            guard manager.createFile(atPath: directory + "/" + path, contents: Data(bytes)) else {
                throw EventStoreError(code: .storageFailure, message: "cannot write \(directory)/\(path)")
            }
        }
    }

    /// The bundle as a POSIX `ustar` archive under the folder `name`.
    public func tarArchive(name: String, verifierKey: String?) -> [UInt8] {
        var archive = Tar()
        archive.directory(name + "/")
        archive.directory(name + "/proofs/")
        for (path, bytes) in files(verifierKey: verifierKey) { archive.file(name + "/" + path, bytes) }
        return archive.finish()
    }

    private var readme: String {
        """
        Evidence for \(stream.rawValue): \(entries.count) events, each proved to be in the log the
        checkpoint in `checkpoint` signs.

        Check it with the verifier key you were given (not only the one in this folder):

            ticketlog verify-evidence <this folder> --key <verifier key file>

        or with any tool that knows these open formats:
        1. `checkpoint` is a C2SP signed note (https://c2sp.org/signed-note) holding a C2SP
           tlog-checkpoint (https://c2sp.org/tlog-checkpoint): origin, tree size, base64 root
           hash. Check its Ed25519 signature with the verifier key; the key name is the origin.
        2. Each line of `entries.ndjson` is one event, exactly the bytes of its Merkle leaf: the
           leaf hash is SHA-256(0x00 || line), the line without its newline (RFC 6962 §2.1).
        3. `proofs/N.tlog-proof` (https://c2sp.org/tlog-proof) is the inclusion proof of the
           event at position N + 1: its audit path (RFC 6962 §2.1.1) leads from that leaf hash
           to the checkpoint's root (RFC 9162 §2.1.3.2). Its checkpoint is the same signed note.
        4. The events' "version" fields count the ticket's events 1, 2, 3, ... with no gap.

        What this proves: these events, with these exact contents, are at these positions of the
        log whose head the key's holder signed. It does not show events of this ticket recorded
        after the checkpoint.

        """
    }

    /// What ``verify(directory:verifier:)`` found: the ticket, its events, the checkpoint.
    public struct Verified: Sendable {
        public var stream: String
        public var events: Int
        public var checkpoint: Checkpoint
    }

    /// Checks a bundle directory offline against `verifier` (the key the auditor trusts).
    ///
    /// - Throws: ``ProofError``, its message naming the file: ``ProofError/Kind/unusable`` for a
    ///   malformed or truncated bundle, ``ProofError/Kind/notVerified`` when a signature or a
    ///   proof does not verify, or the ticket's versions have a gap.
    public static func verify(directory: String, verifier: NoteVerifier) throws(ProofError) -> Verified {
        func read(_ path: String) throws(ProofError) -> String {
            guard let data = FileManager.default.contents(atPath: directory + "/" + path) else {
                throw .unusable("\(directory)/\(path): missing or unreadable (a truncated bundle?)")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw .unusable("\(directory)/\(path): not UTF-8 text")
            }
            return text
        }
        let note = try read("checkpoint")
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.open(note, verifier: verifier)
        } catch {
            throw error.naming("\(directory)/checkpoint")
        }
        let entries = try read("entries.ndjson")
        guard entries.hasSuffix("\n") else {
            throw .unusable("\(directory)/entries.ndjson: the last line has no newline (a truncated bundle?)")
        }
        var stream: String?
        var expectedVersion: Int64 = 1
        var count = 0
        var proved = Set<String>()
        for line in entries.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            count += 1
            let bytes = Array(line.utf8)
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                let position = (object["position"] as? NSNumber)?.int64Value,
                let version = (object["version"] as? NSNumber)?.int64Value,
                let name = object["stream"] as? String
            else {
                throw .unusable(
                    "\(directory)/entries.ndjson: line \(count) is not an event with a position, a version and a stream"
                )
            }
            let proofPath = "proofs/\(position - 1).tlog-proof"
            let proof: InclusionProof
            do {
                proof = try InclusionProof(text: read(proofPath))
            } catch {
                throw error.message.hasPrefix(directory) ? error : error.naming("\(directory)/\(proofPath)")
            }
            guard proof.index == position - 1 else {
                throw .unusable("\(directory)/\(proofPath): the proof is for index \(proof.index), not \(position - 1)")
            }
            guard proof.checkpointNote == note else {
                throw .unusable(
                    "\(directory)/\(proofPath): the proof is against another checkpoint than \(directory)/checkpoint (another tree size?)"
                )
            }
            do {
                _ = try proof.verify(entry: bytes, verifier: verifier)
            } catch {
                throw error.naming("\(directory)/\(proofPath) (entry at position \(position))")
            }
            if stream == nil { stream = name }
            guard name == stream else {
                throw .notVerified(
                    "\(directory)/entries.ndjson: line \(count) is an event of \(name), not of \(stream!)")
            }
            guard version == expectedVersion else {
                throw .notVerified(
                    "\(directory)/entries.ndjson: line \(count) has version \(version) where \(expectedVersion) was due: the ticket's events have a gap"
                )
            }
            expectedVersion += 1
            proved.insert(proofPath)
        }
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/proofs")) ?? []
        if let stray = listed.map({ "proofs/" + $0 }).first(where: { !proved.contains($0) }) {
            throw .unusable("\(directory)/\(stray): a proof with no entry in entries.ndjson (a truncated bundle?)")
        }
        guard let stream else { throw .unusable("\(directory)/entries.ndjson: no entries") }
        return Verified(stream: stream, events: count, checkpoint: checkpoint)
    }
}

/// A minimal POSIX ustar writer: regular files and directories, names up to 100 bytes.
struct Tar {
    private var bytes: [UInt8] = []

    mutating func directory(_ name: String) {
        header(name, size: 0, type: UInt8(ascii: "5"), mode: 0o755)
    }

    mutating func file(_ name: String, _ content: [UInt8]) {
        header(name, size: content.count, type: UInt8(ascii: "0"), mode: 0o644)
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    mutating func finish() -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: 1024)
    }

    private mutating func header(_ name: String, size: Int, type: UInt8, mode: Int) {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(mode, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(0, at: 136, width: 12)
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        block[156] = type
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        let checksum = block.reduce(0) { $0 + Int($1) }
        octal(checksum, at: 148, width: 7)
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        bytes += block
    }
}
