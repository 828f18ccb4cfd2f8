import ArgumentParser
import Foundation
import Ticketlog
import TicketlogPostgres

struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a log between an SQLite file and PostgreSQL, keeping its head hash.",
        discussion: """
            Copies every event row as it is stored — the same canonical bodies, LZ4 codecs and \
            dictionaries, chain checks, event ids and positions — and the log's Merkle nodes, \
            signed checkpoints, content keys (still wrapped) and sync state, so both logs have \
            the same head hash. Projections are not copied but built from the copied events: \
            on PostgreSQL once the copy verifies, in a file when it is opened. The copy reads one \
            snapshot of the source and writes one transaction into the target, so a failure \
            leaves the target as it was; then the target is verified.

              ticketlog copy --from desk.sqlite --to postgres://ticketlog@127.0.0.1:5432/desk
              ticketlog copy --from postgres://ticketlog@127.0.0.1:5432/desk --to restored.sqlite

            The target must be a new file, or a PostgreSQL database that is empty (its log \
            tables are created) or holds an empty log. The password may come from PGPASSWORD. \
            Nothing is decrypted: a log with encrypted content is copied as ciphertext.

            Exit status: 0 when the copy was made and verifies, 1 when the copy does not verify, \
            2 when either side cannot be used (missing, not a ticketlog log, not empty, \
            unreachable).
            """
    )

    @Option(help: "The log to copy: an SQLite file or a postgres:// URL.")
    var from: String

    @Option(help: "Where to copy it: a new SQLite file or a postgres:// URL.")
    var to: String

    @Option(
        help: ArgumentHelp(
            "The log's master key file, to build the target's projections of an encrypted log with its texts (or set TICKETLOG_MASTER_KEY)."
        ))
    var masterKeyFile: String?

    func validate() throws {
        if PostgresLocation.isURL(from) && PostgresLocation.isURL(to) {
            throw ValidationError("one side of a copy must be an SQLite file (copy through a file, or use pg_dump)")
        }
        if !PostgresLocation.isURL(from) && !PostgresLocation.isURL(to) {
            throw ValidationError(
                "one side of a copy must be a postgres:// URL (a file is copied with cp while no process writes it)")
        }
    }

    func run() async throws {
        let progress = Terminal.progress(label: "copying")
        let report: @Sendable (String, Int) -> Void = { _, rows in
            progress.update(done: Int64(rows), total: 0, unit: "rows")
        }
        do {
            let summary: LogCopy.Summary
            let verification: VerificationReport
            if PostgresLocation.isURL(to) {
                let store = try EventStore(path: from, configuration: Self.readOnly)
                let location = try PostgresLocation(url: to)
                let masterKey = try LogOptions.masterKey(file: masterKeyFile)
                func build(_ target: EventStore) async throws {
                    let building = Terminal.progress(label: "building the projections")
                    try await target.catchUpProjections { step in
                        building.update(done: step.position, total: step.headPosition, unit: "events")
                    }
                    building.finish()
                }
                (summary, verification) = try await EventStore.using(location, catchUpProjections: false) { target in
                    let summary = try await target.copy(from: store, progress: report)
                    progress.finish()
                    let verification = try await target.verify()
                    // Without the master key the projections are built here, encrypted texts
                    // left out of the search index; with it, below, by a store that opens them.
                    if verification.isValid && masterKey == nil { try await build(target) }
                    return (summary, verification)
                }
                if verification.isValid, let masterKey {
                    var configuration = EventStore.Configuration()
                    configuration.createIfMissing = false
                    configuration.masterKey = masterKey
                    try await EventStore.using(
                        location, createIfMissing: false, configuration: configuration, catchUpProjections: false,
                        build)
                }
            } else {
                summary = try await EventStore.using(
                    try PostgresLocation(url: from), createIfMissing: false, configuration: Self.readOnly,
                    catchUpProjections: false
                ) {
                    try await $0.copy(toFile: to, progress: report)
                }
                progress.finish()
                Terminal.status("building the projections of \(to)")
                var configuration = EventStore.Configuration()
                configuration.createIfMissing = false
                configuration.masterKey = try LogOptions.masterKey(file: masterKeyFile)
                let store: EventStore
                do {
                    store = try EventStore(path: to, configuration: configuration)
                } catch let failure as EventStoreError where failure.code == .masterKey {
                    Terminal.error(
                        "the copy is made, but its projections are not built: \(failure.message)")
                    store = try EventStore(path: to, configuration: Self.readOnly)
                }
                verification = try await store.verify()
            }
            let events = summary.rows.first { $0.table == "events" }?.count ?? 0
            Terminal.line(
                "copied \(events) events (\(summary.rows.map { "\($0.table) \($0.count)" }.joined(separator: ", "))) "
                    + "to \(PostgresLocation.isURL(to) ? PostgresLocation.redacted(to) : to)")
            if let failure = verification.failure {
                Terminal.line(
                    "THE COPY DOES NOT VERIFY at position \(failure.position): \(failure.kind.rawValue): \(failure.detail)"
                )
                throw ExitCode(1)
            }
            Terminal.line(
                "verified: head position \(verification.headPosition), head hash \(verification.headHash)")
        } catch let failure as EventStoreError {
            progress.finish()
            Terminal.error(failure.message)
            throw ExitCode(2)
        }
    }

    private static var readOnly: EventStore.Configuration {
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        configuration.createIfMissing = false
        return configuration
    }
}
