import ArgumentParser
import Foundation
import Ticketlog

/// Reading key, checkpoint and proof files: a refusal is one line naming the file, exit 2.
enum ProofFiles {
    /// The text of `path`, or exit 2 saying why not.
    static func text(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            Terminal.error("\(path): cannot read the \(what) (\(exists ? "permission denied" : "no such file"))")
            throw ExitCode(2)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            Terminal.error("\(path): the \(what) is not UTF-8 text")
            throw ExitCode(2)
        }
        return text
    }

    /// The signer key in `path`; refused when other users may read the file.
    static func signer(_ path: String) throws -> NoteSigner {
        try refuseIfOthersCanRead(path, what: "signer key")
        return try parse(path) { try NoteSigner(text: text(path, what: "signer key")) }
    }

    /// Exits with status 2 when users other than the owner may read the secret key in `path`.
    static func refuseIfOthersCanRead(_ path: String, what: String) throws {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
            mode & 0o077 != 0
        else { return }
        Terminal.error(
            "\(path): the \(what) is readable by other users (mode \(String(mode & 0o777, radix: 8))); run chmod 600 \(path)"
        )
        throw ExitCode(2)
    }

    static func verifier(_ path: String) throws -> NoteVerifier {
        try parse(path) { try NoteVerifier(text: text(path, what: "verifier key")) }
    }

    /// `body`'s result; a ``ProofError`` becomes one line naming `path` and exit 2 (unusable) or 1
    /// (does not verify).
    static func parse<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ProofError {
            fail(error.naming(path))
        }
    }

    static func fail(_ error: ProofError) -> Never {
        Terminal.error(error.message)
        exitWith(error.kind == .unusable ? 2 : 1)
    }

    private static func exitWith(_ status: Int32) -> Never {
        exit(status)
    }

    /// Writes `text` to a new file `path` with `mode`; refuses to replace an existing file.
    static func create(_ path: String, _ text: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard descriptor >= 0 else {
            Terminal.error("\(path): cannot create it (\(String(cString: strerror(errno))))")
            throw ExitCode(2)
        }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            Terminal.error("\(path): cannot write it (\(String(cString: strerror(errno))))")
            throw ExitCode(2)
        }
    }

    /// Writes machine-readable output (a note, a proof) as it is: our own text, whose names were
    /// checked to hold no control characters.
    static func output(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make the Ed25519 key pair that signs the log's checkpoints.",
        discussion: """
            Writes a signer key (private; file mode 0600) and its verifier key, in the text forms \
            of C2SP signed notes (Go's golang.org/x/mod/sumdb/note): \
            PRIVATE+KEY+<origin>+<key id>+<key> and <origin>+<key id>+<key>. The key name is the \
            origin, the first line of every checkpoint. Keep the signer key out of the log's \
            directory and its backups; hand the verifier key to auditors. Neither is written \
            into any log.

            Exit status: 0 when both files were written, 2 when either exists already or the \
            origin is not a valid key name.
            """
    )

    @Option(help: "The log's origin: a schema-less URL naming this log, e.g. example.com/ticketlog.")
    var origin: String

    @Option(help: "Where the signer key goes (created with mode 0600; never replaced).")
    var key: String = "checkpoint.key"

    @Option(help: "Where the verifier key goes (default: the signer key's path with .pub).")
    var verifier: String?

    func run() throws {
        let signer: NoteSigner
        do {
            signer = try NoteSigner(generatingFor: origin)
        } catch {
            ProofFiles.fail(error.naming("--origin"))
        }
        let verifierPath = verifier ?? (key.hasSuffix(".key") ? String(key.dropLast(4)) : key) + ".pub"
        if FileManager.default.fileExists(atPath: verifierPath) {
            Terminal.error("\(verifierPath): exists already; keygen never replaces a key")
            throw ExitCode(2)
        }
        try ProofFiles.create(key, signer.text + "\n", mode: 0o600)
        try ProofFiles.create(verifierPath, signer.verifier.text + "\n", mode: 0o644)
        Terminal.line("signer key:   \(key) (keep it secret)")
        Terminal.line("verifier key: \(verifierPath)")
        Terminal.line(signer.verifier.text)
    }
}

struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign the log's current Merkle tree head and store the checkpoint in the log.",
        discussion: """
            A checkpoint is a C2SP tlog-checkpoint (origin, number of events, base64 RFC 6962 \
            root) in a signed note, Ed25519-signed with the key from keygen. Kept outside the \
            log (by an auditor, in another system), it lets anyone check later that the log still \
            holds exactly those events: ticketlog verify --checkpoint.

            Refuses to sign when the log no longer holds what an earlier checkpoint of the same \
            key signed (it was rewritten since). Prints the signed checkpoint.

            Exit status: 0 when signed, 1 when refused for a rewritten log, 2 when the key or \
            the log cannot be used.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The signer key file (from keygen; must not be readable by other users).")
    var key: String

    @Option(help: "Also write the signed checkpoint to this file.")
    var out: String?

    func run() async throws {
        let signer = try ProofFiles.signer(key)
        let store = try await log.openOnEitherBackend()
        let stored: StoredCheckpoint
        do {
            stored = try await store.signCheckpoint(with: signer)
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(error.code == .corruptRecord ? 1 : 2)
        }
        if let out { try ProofFiles.create(out, stored.note, mode: 0o644) }
        ProofFiles.output(stored.note)
    }
}

struct ProveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print a Merkle proof: an event's inclusion, or one tree size's consistency with another.",
        discussion: """
            --position N prints a C2SP tlog-proof@v1: the event's leaf index (N - 1), its RFC \
            6962 audit path and the stored checkpoint it leads to (the newest, or the one of \
            --size). The event's entry is its line as ticketlog read prints it.

            --from OLD --to NEW prints an RFC 9162 consistency proof between the trees of the \
            first OLD and NEW events (format: ticketlog/consistency-proof@v1, then old and new \
            sizes, then one base64 hash per line).

            Exit status: 0 when printed, 2 when the log cannot be opened, has no checkpoint \
            covering the position, or the sizes are out of range.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The position of the event to prove.")
    var position: Int64?

    @Option(help: "With --position: the size of the stored checkpoint to prove against (default: the newest).")
    var size: Int64?

    @Option(help: "The older tree size of a consistency proof.")
    var from: Int64?

    @Option(help: "The newer tree size of a consistency proof (default: the log's size).")
    var to: Int64?

    func validate() throws {
        guard (position != nil) != (from != nil) else {
            throw ValidationError("give either --position N, or --from OLD [--to NEW]")
        }
        if position == nil && size != nil { throw ValidationError("--size goes with --position") }
        if from == nil && to != nil { throw ValidationError("--to goes with --from") }
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        do {
            if let position {
                guard let checkpoint = try await store.storedCheckpoint(size: size) else {
                    Terminal.error(
                        size.map { "the log has no checkpoint of size \($0)" }
                            ?? "the log has no checkpoint yet: sign one with ticketlog checkpoint --key FILE")
                    throw ExitCode(2)
                }
                guard position >= 1, position <= checkpoint.checkpoint.size else {
                    Terminal.error(
                        "position \(position) is not covered by the checkpoint of size \(checkpoint.checkpoint.size)"
                            + (size == nil ? "; sign a newer one with ticketlog checkpoint" : ""))
                    throw ExitCode(2)
                }
                ProofFiles.output(try await store.inclusionProof(position: position, in: checkpoint).text)
            } else if let from {
                let newSize: Int64
                if let to { newSize = to } else { newSize = try await store.treeHead().size }
                ProofFiles.output(try await store.consistencyProof(from: from, to: newSize).text)
            }
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(2)
        }
    }
}

struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Write a ticket's evidence bundle: its events, a proof for each, the signed checkpoint.",
        discussion: """
            The bundle (a new directory) holds entries.ndjson (the ticket's events, one entry \
            per line: the bytes each Merkle leaf hashes), proofs/<index>.tlog-proof (a C2SP \
            tlog-proof per event), checkpoint (the signed checkpoint), verifier.key and README.txt \
            saying how to check it, with ticketlog verify-evidence or any RFC 6962 / C2SP tool.

            The proofs are against the newest stored checkpoint, or, with --key, a checkpoint \
            signed now (so the bundle covers the ticket's latest events).

            Exit status: 0 when written, 2 when the log, the key or the ticket cannot be used or \
            the directory exists and is not empty.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The ticket: 1001 or ticket-1001.")
    var ticket: String

    @Option(help: "The directory to write (new, or empty).")
    var out: String

    @Option(help: "Sign a new checkpoint with this signer key first.")
    var key: String?

    func run() async throws {
        let stream = try StreamID.parseTicket(ticket)
        let signer = try key.map(ProofFiles.signer)
        let store = try await log.openOnEitherBackend(readOnly: signer == nil)
        do {
            let checkpoint: StoredCheckpoint
            if let signer {
                checkpoint = try await store.signCheckpoint(with: signer)
            } else if let stored = try await store.storedCheckpoint() {
                checkpoint = stored
            } else {
                Terminal.error("the log has no checkpoint yet: give --key to sign one, or run ticketlog checkpoint")
                throw ExitCode(2)
            }
            let bundle = try await store.evidence(for: stream, in: checkpoint)
            try bundle.write(to: out, verifierKey: checkpoint.verifierKey)
            Terminal.line(
                "wrote \(out): \(bundle.entries.count) events of \(stream) proved against the checkpoint of size \(checkpoint.checkpoint.size)"
            )
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(2)
        }
    }
}

struct VerifyEvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-evidence",
        abstract: "Check an evidence bundle offline, against a verifier key you trust.",
        discussion: """
            Checks the checkpoint's signature with --key (not with the key inside the bundle), \
            that every entry has a tlog-proof leading from its leaf hash to the signed root, that \
            all entries belong to one ticket and count its versions 1, 2, 3... without a gap. \
            Opens no log and writes nothing.

            Exit status: 0 when the bundle verifies, 1 when a signature or a proof does not \
            verify, 2 when the bundle or the key is malformed, foreign or truncated.
            """
    )

    @Argument(help: "The bundle directory.")
    var directory: String

    @Option(help: "The verifier key file.")
    var key: String

    func run() throws {
        let verifier = try ProofFiles.verifier(key)
        let verified: EvidenceBundle.Verified
        do {
            verified = try EvidenceBundle.verify(directory: directory, verifier: verifier)
        } catch {
            ProofFiles.fail(error)
        }
        Terminal.line(
            "OK: \(verified.events) events of \(verified.stream) are in the log \(verified.checkpoint.origin) at size \(verified.checkpoint.size), root \(Data(verified.checkpoint.root).base64EncodedString())"
        )
    }
}
