import ArgumentParser
import Ticketlog

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append NDJSON events from a file; events already in the log are skipped.",
        discussion: """
            Each line is one event: stream, id, type, actor, occurredAt, origin, payload \
            (the lines of `ticketlog read`, of an NDJSON export's events file, and of \
            `ticketlog-generate`). position, version and recordedAt, when present, are ignored: \
            this log assigns its own.

            Every line is checked before anything is written; a bad line stops the import \
            with its line number and the log unchanged. Importing the same file twice appends \
            nothing the second time. Creates the log when it does not exist.
            """
    )

    @OptionGroup var log: LogOptions

    @Argument(help: "The NDJSON file to import.")
    var file: String

    @Option(help: "Durability of the import's commits: full or normal.")
    var durability: EventStore.Configuration.Durability = .normal

    func run() async throws {
        let store = try await log.openOnEitherBackend(create: true) { $0.durability = durability }
        let progress = Terminal.progress(label: "importing")
        let report: ImportReport
        do {
            report = try await store.importEvents(fromNDJSON: file) { step in
                progress.update(done: step.bytesRead, total: step.totalBytes, unit: "bytes \(step.phase)")
            }
        } catch let error as EventStoreError {
            progress.finish()
            Terminal.error(error.message)
            throw ExitCode(1)
        }
        progress.finish()
        Terminal.line(
            "imported \(report.events) events: \(report.appended) appended, \(report.alreadyStored) already in the log")
    }
}
