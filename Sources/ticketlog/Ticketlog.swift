import ArgumentParser
import Foundation
import Logging
import Ticketlog
import TicketlogPostgres

@main
struct TicketlogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticketlog",
        abstract: "An event-sourced, tamper-evident log of support-ticket conversations.",
        discussion: """
            Every join, leave, message, status change and deliverable of a ticket is an immutable \
            event in one log (LZ4-compressed, hash-chained): an SQLite file, or a PostgreSQL \
            database that several servers share. These commands write, read, check, prove, erase, \
            copy, serve and mirror such a log; --database names it (default ticketlog.sqlite).
            """,
        subcommands: [
            DemoCommand.self, VerifyCommand.self, ReadCommand.self, AuditCommand.self, ReplayCommand.self,
            RebuildCommand.self, ExportCommand.self, ImportCommand.self, StatsCommand.self, SearchCommand.self,
            RotateDictionaryCommand.self, MigrateCommand.self, CopyCommand.self,
            KeygenCommand.self, CheckpointCommand.self, ProveCommand.self, EvidenceCommand.self,
            VerifyEvidenceCommand.self, MasterKeyCommand.self, EraseCommand.self, RotateMasterKeyCommand.self,
            ServeCommand.self, TokenCommand.self, SyncCommand.self,
        ]
    )
}

/// The options every command that opens a log shares.
struct LogOptions: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp(
            "The log: an SQLite file, or postgres://user:password@host:port/database.",
            discussion:
                "On PostgreSQL, serve (several processes may serve one log), demo, verify, copy, read, audit, replay, rebuild, search, export, import, stats, sync, checkpoint, prove, evidence, erase, rotate-master-key and rotate-dictionary run there; migrate (files of older builds) refuses a URL (ARCHITECTURE.md, \"Storage boundary\"). The password may come from PGPASSWORD instead of the URL. TLS: ?sslmode=verify-full (with &sslrootcert=CA.pem for a private authority), verify-ca or require; without sslmode the connection is not encrypted."
        ))
    var database: String = "ticketlog.sqlite"

    @Option(
        help: ArgumentHelp(
            "A file holding the log's master key (ticketlog master-key makes one); or set TICKETLOG_MASTER_KEY.",
            discussion:
                "With it, personal content appended is encrypted and encrypted content reads in the clear; a log with encrypted content cannot be written without it. The file must not be readable by other users."
        ))
    var masterKeyFile: String?
}

extension LogOptions {
    /// Opens the log, or exits with status 2 and a one-line error. Only `create` makes a new
    /// file; `readOnly` opens without writing anything to it.
    func open(
        create: Bool = false, readOnly: Bool = false, logger: Logger = .disabled,
        _ configure: (inout EventStore.Configuration) -> Void = { _ in }
    ) throws -> EventStore {
        if PostgresLocation.isURL(database) {
            Terminal.error(
                "this command takes an SQLite file, not \(PostgresLocation.redacted(database)) (`ticketlog --help` says which run on PostgreSQL): copy the log to a file with `ticketlog copy` and run it there"
            )
            throw ExitCode(2)
        }
        var configuration = EventStore.Configuration()
        configuration.createIfMissing = create
        configuration.readOnly = readOnly
        configuration.masterKey = try masterKey()
        configure(&configuration)
        do {
            return try EventStore(path: database, configuration: configuration, logger: logger)
        } catch let failure as EventStoreError {
            Terminal.error(failure.message)
            throw ExitCode(2)
        }
    }
}

extension LogOptions {
    /// Opens the log on either backend — a file as ``open(create:readOnly:logger:_:)`` does, or
    /// a PostgreSQL database — or exits with status 2 and a one-line error. For the commands
    /// that run on PostgreSQL (the others refuse a URL). On PostgreSQL `create` makes the
    /// log's tables in an empty database, and `readOnly` leaves the projections uncaught-up and
    /// opens an encrypted log without its master key (its sealed fields read as stored).
    func openOnEitherBackend(
        create: Bool = false, readOnly: Bool = false, logger: Logger = .disabled,
        _ configure: (inout EventStore.Configuration) -> Void = { _ in }
    ) async throws -> EventStore {
        guard PostgresLocation.isURL(database) else {
            return try open(create: create, readOnly: readOnly, logger: logger, configure)
        }
        var configuration = EventStore.Configuration()
        configuration.createIfMissing = create
        configuration.readOnly = readOnly
        configuration.masterKey = try masterKey()
        configure(&configuration)
        do {
            // Reading commands leave the projections as they are (the serving nodes keep them).
            return try await EventStore.open(
                try PostgresLocation(url: database), createIfMissing: create, configuration: configuration,
                catchUpProjections: !readOnly, logger: logger)
        } catch let failure as EventStoreError {
            Terminal.error(failure.message)
            throw ExitCode(2)
        }
    }

    /// The log as messages name it: a URL without its password.
    var displayName: String {
        PostgresLocation.isURL(database) ? PostgresLocation.redacted(database) : database
    }
}

extension LogOptions {
    /// The master key from `--master-key-file` or `TICKETLOG_MASTER_KEY`; exits with status 2
    /// and a one-line error for a key file others can read or text that is not a master key.
    func masterKey() throws -> MasterKey? {
        try Self.masterKey(file: masterKeyFile)
    }

    /// The master key from `file` or `TICKETLOG_MASTER_KEY`, as ``masterKey()``.
    static func masterKey(file masterKeyFile: String?) throws -> MasterKey? {
        let text: String
        let source: String
        if let masterKeyFile {
            try ProofFiles.refuseIfOthersCanRead(masterKeyFile, what: "master key")
            text = try ProofFiles.text(masterKeyFile, what: "master key")
            source = masterKeyFile
        } else if let value = ProcessInfo.processInfo.environment["TICKETLOG_MASTER_KEY"], !value.isEmpty {
            text = value
            source = "TICKETLOG_MASTER_KEY"
        } else {
            return nil
        }
        do {
            return try MasterKey(text: text)
        } catch {
            Terminal.error("\(source): \(error.message)")
            throw ExitCode(2)
        }
    }
}

extension StreamID {
    /// A ticket as typed on the command line: `1001` or `ticket-1001`.
    static func parseTicket(_ text: String) throws -> StreamID {
        let name = text.hasPrefix("ticket-") ? text : "ticket-\(text)"
        guard let stream = StreamID(rawValue: name) else {
            throw ValidationError("'\(text)' is not a ticket id (1-57 characters of a-z, A-Z, 0-9, _ and -)")
        }
        return stream
    }
}

extension Timestamp {
    /// A time as typed on the command line (ISO 8601), or a validation error saying what is expected.
    static func parse(_ text: String, option: String) throws -> Timestamp {
        guard let time = Timestamp(iso8601: text) else {
            throw ValidationError(
                "\(option) '\(text)' is not a time: use ISO 8601, e.g. 2026-11-27T14:30:00Z or 2026-11-27")
        }
        return time
    }
}

extension Encodable {
    /// One line of JSON with sorted keys and unescaped slashes, for `--json` and NDJSON output.
    func jsonLine() throws -> String {
        String(decoding: try CanonicalJSON.encoder().encode(self), as: UTF8.self)
    }
}
