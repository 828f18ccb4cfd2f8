import ArgumentParser
import Ticketlog

@main
struct TicketlogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticketlog",
        abstract: "An event-sourced, tamper-evident log of support-ticket conversations.",
        discussion: """
            Every join, leave, message, status change and deliverable of a ticket is an immutable \
            event in one SQLite file (LZ4-compressed, hash-chained). These commands inspect and \
            check such a file.
            """,
        subcommands: [DemoCommand.self, VerifyCommand.self, ReadCommand.self, InfoCommand.self, RotateDictionaryCommand.self]
    )
}

/// The options every command that opens a log shares.
struct LogOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "The log file (SQLite).")
    var database: String = "ticketlog.sqlite"
}

extension LogOptions {
    /// Opens the log, or exits with status 2 and a one-line error. Only `create` makes a new file.
    func open(create: Bool = false, _ configure: (inout EventStore.Configuration) -> Void = { _ in }) throws -> EventStore {
        var configuration = EventStore.Configuration()
        configuration.createIfMissing = create
        configure(&configuration)
        do {
            return try EventStore(path: database, configuration: configuration)
        } catch let failure as EventStoreError {
            Terminal.error(failure.message)
            throw ExitCode(2)
        }
    }
}
