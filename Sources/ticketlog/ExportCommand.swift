import ArgumentParser
import Ticketlog

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export events and per-ticket analytics facts as NDJSON, CSV or SQLite.",
        discussion: """
            Writes two tables: `events` (one row per event: position, stream, ticket_id, \
            version, event_id, type, actor, actor_role, occurred_at, recorded_at, origin, \
            message_id, text, payload) and `ticket_facts` (per ticket: opened_at, \
            first_agent_response_at/_seconds, resolved_at, resolution_seconds, messages by \
            role, edits, deletes, deliverables...). Facts describe the exported events.

            --format ndjson and csv write a directory (events.ndjson / events.csv and \
            ticket_facts.*); sqlite writes one file. In NDJSON, events are whole (the lines of \
            `ticketlog read`, which `ticketlog import` reads back). CSV is RFC 4180 and loads in \
            pandas (pd.read_csv) and duckdb (read_csv_auto). Times are ISO 8601 UTC.

            Examples:
              ticketlog export --format csv --out desk-csv
              ticketlog export --format sqlite --ticket 1001 --from 2026-11-01 --out t1001.sqlite
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "ndjson, csv or sqlite.")
    var format: ExportFormat

    @Option(help: "Where to write: a directory (ndjson, csv) or a file (sqlite).")
    var out: String

    @Option(help: "Only this ticket: 1001 or ticket-1001.")
    var ticket: String?

    @Option(help: "Only events that happened at or after this time (ISO 8601).")
    var from: String?

    @Option(help: "Only events that happened before this time (ISO 8601).")
    var to: String?

    @Flag(help: "Replace export files that exist.")
    var overwrite = false

    func validate() throws {
        _ = try options()
    }

    private func options() throws -> ExportOptions {
        ExportOptions(
            format: format, stream: try ticket.map(StreamID.parseTicket),
            from: try from.map { try Timestamp.parse($0, option: "--from") },
            to: try to.map { try Timestamp.parse($0, option: "--to") }, overwrite: overwrite)
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        let progress = Terminal.progress(label: "exporting")
        let report: ExportReport
        do {
            report = try await store.export(to: out, try options()) { step in
                progress.update(done: step.position, total: step.headPosition)
            }
        } catch let error as EventStoreError {
            progress.finish()
            Terminal.error(error.message)
            throw ExitCode(1)
        }
        progress.finish()
        Terminal.line(
            "exported \(report.events) events of \(report.tickets) tickets to \(report.files.joined(separator: ", "))")
    }
}

extension ExportFormat: ExpressibleByArgument {}
