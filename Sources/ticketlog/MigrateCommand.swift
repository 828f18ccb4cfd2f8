import ArgumentParser
import Foundation
import Ticketlog
import TicketlogPostgres

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Upgrade a log written by an older build to this build's file format.",
        discussion: """
            Format 1 (builds before format 2) stored each event's whole canonical JSON and full \
            hash per row and a separate audit-trail table. Format 2 keeps the same events, ids, \
            positions, versions and canonical bodies, so the same hash chain and head hash, in \
            leaner rows (ARCHITECTURE.md, "File format").

            Every event is checked on the way (its chain hash recomputed, its new row spliced back \
            to exactly its old body); the first event that fails stops the migration and nothing \
            is written. The rewrite is one transaction: a crash leaves the file as it was. \
            The projections whose tables changed are rebuilt before it ends. Stop every process \
            using the file first; keep a copy if you want to go back to an older build.

            Exit status: 0 when the file is (now) in the current format, 1 when an event does not \
            verify, 2 when the file cannot be used (missing, not a ticketlog log, a newer format).
            """
    )

    @OptionGroup var log: LogOptions

    func run() async throws {
        if PostgresLocation.isURL(log.database) {
            // A log on PostgreSQL was created in the current format (format 1 never existed there).
            Terminal.error(
                "\(log.displayName): migrate upgrades a file written by an older build; a log on PostgreSQL is written in the current format"
            )
            throw ExitCode(2)
        }
        let progress = Terminal.progress(label: "migrating")
        let report: LogMigration.Report
        do {
            report = try LogMigration.migrate(path: log.database) { update in
                progress.update(done: update.events, total: update.totalEvents)
            }
        } catch let failure as EventStoreError {
            progress.finish()
            Terminal.error(failure.message)
            throw ExitCode(failure.code == .corruptRecord ? 1 : 2)
        }
        progress.finish()
        guard report.fromVersion != EventStore.formatVersion else {
            Terminal.line("\(log.database) is already format \(report.fromVersion): nothing to do")
            return
        }
        Terminal.line(
            "migrated \(report.events) events from format \(report.fromVersion) to \(EventStore.formatVersion): "
                + "\(megabytes(report.bytesBefore)) -> \(megabytes(report.bytesAfter)); "
                + "head position \(report.headPosition), head hash \(report.headHash) (unchanged)")
    }

    private func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}
