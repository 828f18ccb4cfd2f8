import ArgumentParser
import Foundation
import Ticketlog
import TicketlogPostgres

struct MasterKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "master-key",
        abstract: "Make a master key: the key that encrypts a log's personal content.",
        discussion: """
            Writes 32 random bytes as ticketlog-master-key-v1:<base64> to a new file of mode \
            0600 and prints the key's fingerprint (what a log records, so that another key is \
            refused). Give it to every command and server that uses the log with \
            --master-key-file or TICKETLOG_MASTER_KEY. Keep it apart from the log and its \
            backups: whoever has both reads everything that is not erased; losing it loses the \
            content of the log (the events, their order and every proof remain).

            Exit status: 0 when written, 2 when the file exists.
            """
    )

    @Option(help: "Where to write the key (a new file).")
    var out: String

    func run() throws {
        let key = MasterKey.generate()
        try ProofFiles.create(out, key.text + "\n", mode: 0o600)
        Terminal.line("master key: \(out) (fingerprint \(key.fingerprint))")
    }
}

struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Erase personal content: a person's, a ticket's, or everything before a date.",
        discussion: """
            Destroys the content keys that encrypt it (crypto-shredding) and records an \
            erasure.performed event (who asked, who did it, why, what: never the content) in one \
            transaction, then scrubs the file (WAL checkpointed and truncated, VACUUM with \
            secure_delete) so no copy of a destroyed key remains in it. On PostgreSQL the key \
            table and the search index are vacuumed and the index rebuilt; WAL, replicas and \
            backups may keep the destroyed keys wrapped under the master key: rotate it \
            afterwards (rotate-master-key). From then on every read \
            shows that content as erased. The chain, the Merkle tree, every checkpoint and proof \
            still verify: they commit to the encrypted content, which stays.

            Needs the log's master key. A log that stores content in plaintext (never given a \
            master key) has nothing to erase this way and is refused. --before rounds down to a \
            month (content keys are per person, ticket and month).

            Exit status: 0 when erased, 1 when refused, 2 when the log or the key cannot be used.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "Erase everything this user wrote.")
    var user: String?

    @Option(help: "Erase everything written in this ticket (1001 or ticket-1001).")
    var ticket: String?

    @Option(help: "Erase everything written in the months before this date's month (ISO 8601).")
    var before: String?

    @Option(
        help: ArgumentHelp(
            "On a restored backup: destroy every key the erasures of this (live) log destroyed.",
            discussion:
                "A backup made before an erasure still holds the keys; the live log's erasure.performed events name them."
        ))
    var replayFrom: String?

    @Option(help: "Why (kept in the log): a request reference, a retention rule.")
    var reason: String?

    @Option(help: "Who asked for it (default: the user named by --user, else the operator).")
    var requestedBy: String?

    @Option(help: "Who performs it, as the log records the actor (an admin).")
    var by: String = ProcessInfo.processInfo.environment["USER"] ?? "operator"

    func validate() throws {
        guard [user != nil, ticket != nil, before != nil, replayFrom != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --user, --ticket, --before and --replay-from")
        }
        if replayFrom == nil && reason == nil { throw ValidationError("--reason is required: say why") }
    }

    func run() async throws {
        if let replayFrom {
            try await replay(from: replayFrom)
            return
        }
        let scope: ErasureScope
        if let user {
            scope = .subject(user)
        } else if let ticket {
            scope = .ticket(try StreamID.parseTicket(ticket))
        } else {
            scope = .before(try Timestamp.parse(before!, option: "--before"))
        }
        // A plaintext log is refused before it is opened for writing (which, with a master key,
        // would start encrypting it).
        let reading = try await log.openOnEitherBackend(readOnly: true)
        let plaintext = reading.sealedFromPosition == nil
        await reading.close()
        if plaintext {
            Terminal.error(
                "\(log.displayName) stores its content in plaintext (it was never opened with a master key): there are no keys to destroy. Nothing was erased"
            )
            throw ExitCode(1)
        }
        let store = try await log.openOnEitherBackend()
        let progress = Terminal.progress(label: "erasing")
        defer { progress.finish() }
        let onPostgres = PostgresLocation.isURL(log.database)
        do {
            let report = try await store.erase(
                scope, requestedBy: requestedBy ?? user ?? by, reason: reason ?? "", by: Actor(id: by, role: .admin))
            let scrub =
                switch (onPostgres, report.scrubbed) {
                case (false, true): "; the file is scrubbed"
                case (false, false): "; other processes held the WAL: it is scrubbed at their next checkpoint"
                case (true, true): "; the key table and the search index are vacuumed"
                case (true, false):
                    "; vacuuming failed (see the log): run VACUUM content_keys, VACUUM message_search and REINDEX INDEX CONCURRENTLY message_search_documents"
                }
            Terminal.line(
                "erased: \(report.keys.count) content key(s) destroyed; erasure.performed at position \(report.position)"
                    + scrub)
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(error.code == .rejected ? 1 : 2)
        }
    }

    private func replay(from live: String) async throws {
        var source = LogOptions()
        source.database = live
        let liveLog = try await source.openOnEitherBackend(readOnly: true)
        let store = try await log.openOnEitherBackend()
        do {
            let report = try await store.replayErasures(from: liveLog, by: Actor(id: by, role: .admin))
            Terminal.line(
                report.keys.isEmpty
                    ? "nothing to erase: every key the erasures of \(live) name is gone here already"
                    : "erased: \(report.keys.count) content key(s) the erasures of \(live) name; erasure.performed at position \(report.position)"
            )
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(error.code == .rejected ? 1 : 2)
        }
    }
}

struct RotateMasterKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-master-key",
        abstract: "Re-wrap every content key of an encrypted log with a new master key.",
        discussion: """
            Unwraps each live content key with the current master key (--master-key-file or \
            TICKETLOG_MASTER_KEY) and wraps it with the new one, in one transaction, and records \
            the new key's fingerprint; then scrubs the file (on PostgreSQL, vacuums the key \
            table). No event changes: the chain, the \
            Merkle tree, checkpoints and proofs are untouched. Stop every process using the log \
            first, and give them the new key afterwards.

            Exit status: 0 when rotated, 1 when the log stores plaintext, 2 when a key or the \
            log cannot be used.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The new master key's file (ticketlog master-key makes one).")
    var newKeyFile: String

    func run() async throws {
        guard let old = try log.masterKey() else {
            Terminal.error("give the current master key: --master-key-file or TICKETLOG_MASTER_KEY")
            throw ExitCode(2)
        }
        var next = log
        next.masterKeyFile = newKeyFile
        let new = try next.masterKey()!
        do {
            let count =
                PostgresLocation.isURL(log.database)
                ? try await EventStore.rotateMasterKey(try PostgresLocation(url: log.database), from: old, to: new)
                : try EventStore.rotateMasterKey(path: log.database, from: old, to: new)
            Terminal.line("rotated: \(count) content key(s) re-wrapped; the log's master key is now \(new.fingerprint)")
        } catch let error as EventStoreError {
            Terminal.error(error.message)
            throw ExitCode(error.code == .rejected ? 1 : 2)
        }
    }
}
