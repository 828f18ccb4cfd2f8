import ArgumentParser
import Foundation
import Logging
import StreamChatSync
import Ticketlog

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Mirror the log to Stream Chat, or show how far the mirror is.",
        subcommands: [SyncRunCommand.self, SyncStatusCommand.self],
        defaultSubcommand: SyncRunCommand.self
    )
}

/// Stream credentials shared by the sync commands.
struct StreamOptions: ParsableArguments {
    @Option(help: "Stream API key (default: $STREAM_API_KEY).")
    var streamAPIKey: String?

    @Option(help: "Stream API secret (default: $STREAM_API_SECRET).")
    var streamAPISecret: String?

    @Option(help: "Stream API base URL (default: $STREAM_BASE_URL, else https://chat.stream-io-api.com). Point it at the emulator to try things out.")
    var baseURL: String?

    func client() throws -> StreamClient {
        let environment = ProcessInfo.processInfo.environment
        guard let key = streamAPIKey ?? environment["STREAM_API_KEY"],
            let secret = streamAPISecret ?? environment["STREAM_API_SECRET"]
        else {
            throw ValidationError("set --stream-api-key and --stream-api-secret (or STREAM_API_KEY and STREAM_API_SECRET)")
        }
        return .live(
            baseURL: baseURL ?? environment["STREAM_BASE_URL"] ?? StreamClient.defaultBaseURL,
            auth: StreamAuth(apiKey: key, apiSecret: secret))
    }
}

struct SyncRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Send the log's events to Stream Chat from where the last run stopped.",
        discussion: """
            Each ticket is the channel messaging:ticket-{id}. Channels are mirrored in parallel, \
            each in order; network errors, 5xx and 429 are retried with backoff; other refusals \
            are dead letters (see `ticketlog sync status`). The cursor is kept in the log file, \
            so a stopped run resumes where it was. Runs until interrupted, or with \
            --until-caught-up until the head at start is mirrored.
            """
    )

    @OptionGroup var log: LogOptions
    @OptionGroup var stream: StreamOptions

    @Flag(help: "Stop once everything up to the current head is mirrored.")
    var untilCaughtUp = false

    func run() async throws {
        let store = try log.open()
        var logger = Logger(label: "ticketlog.sync")
        logger.logLevel = .info
        let driver = OutboxDriver(store: store, client: try stream.client(), logger: logger)
        if untilCaughtUp {
            let cursor = try await driver.runUntilCaughtUp()
            let dead = try await store.deadLetters("stream").count
            print("mirrored up to position \(cursor)" + (dead > 0 ? "; \(dead) dead letters (ticketlog sync status)" : ""))
        } else {
            try await driver.run()
        }
    }
}

struct SyncStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "How far the Stream mirror is, and what it gave up on."
    )

    @OptionGroup var log: LogOptions

    func run() async throws {
        let store = try log.open()
        let cursor = try await store.syncCursor("stream")
        let head = try await store.headPosition()
        let letters = try await store.deadLetters("stream")
        print("mirrored up to position \(cursor) of \(head) (\(head - cursor) behind)")
        print("dead letters: \(letters.count)")
        for letter in letters {
            print("  #\(letter.position) \(letter.stream) \(letter.request): \(letter.reason) (\(letter.at))")
        }
    }
}
