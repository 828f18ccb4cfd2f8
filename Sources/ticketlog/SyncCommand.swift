import ArgumentParser
import Foundation
import Logging
import StreamChatSync
import Synchronization
import Ticketlog

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract:
            "Mirror the log to Stream Chat, show how far the mirror is, re-drive dead letters, backfill a channel.",
        subcommands: [SyncRunCommand.self, SyncStatusCommand.self, SyncRedriveCommand.self, SyncImportCommand.self],
        defaultSubcommand: SyncRunCommand.self
    )
}

/// Stream credentials shared by the sync commands and `serve`. The secret comes from a file or
/// the environment, not the command line (where `ps` shows it).
struct StreamOptions: ParsableArguments {
    @Option(help: "Stream API key (default: $STREAM_API_KEY).")
    var streamAPIKey: String?

    @Option(
        help: ArgumentHelp(
            "A file holding the Stream API secret (default: $STREAM_API_SECRET).", valueName: "path"))
    var streamAPISecretFile: String?

    @Option(
        help:
            "Stream API base URL (default: $STREAM_BASE_URL, else https://chat.stream-io-api.com). Point it at the emulator to try things out."
    )
    var baseURL: String?

    /// The key and secret, when both are set.
    func credentials() throws -> (key: String, secret: String)? {
        let secret = try Secrets.read(
            file: streamAPISecretFile, option: "--stream-api-secret-file", variable: "STREAM_API_SECRET")
        guard let key = streamAPIKey ?? ProcessInfo.processInfo.environment["STREAM_API_KEY"], let secret else {
            return nil
        }
        return (key, secret)
    }

    var resolvedBaseURL: String {
        baseURL ?? ProcessInfo.processInfo.environment["STREAM_BASE_URL"] ?? StreamChatClient.defaultBaseURL
    }

    func client() throws -> StreamChatClient {
        guard let (key, secret) = try credentials() else {
            throw ValidationError(
                "set the Stream API key and secret: STREAM_API_KEY (or --stream-api-key) and STREAM_API_SECRET (or --stream-api-secret-file)"
            )
        }
        return .live(baseURL: resolvedBaseURL, auth: StreamChatAuth(apiKey: key, apiSecret: secret))
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
        let logger = Logger.process(label: "ticketlog.sync")
        let store = try await log.openOnEitherBackend(logger: logger)
        let driver = OutboxDriver(store: store, client: try stream.client(), logger: logger)
        if untilCaughtUp {
            let cursor = try await driver.runUntilCaughtUp()
            let dead = try await store.deadLetters(StreamChatDestination.mirror).count
            Terminal.line(
                "mirrored up to position \(cursor)" + (dead > 0 ? "; \(dead) dead letters (ticketlog sync status)" : "")
            )
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
        let store = try await log.openOnEitherBackend()
        let cursor = try await store.syncCursor(StreamChatDestination.mirror)
        let head = try await store.headPosition()
        let letters = try await store.deadLetters(StreamChatDestination.mirror)
        Terminal.line("mirrored up to position \(cursor) of \(head) (\(head - cursor) behind)")
        Terminal.line("dead letters: \(letters.count)")
        for letter in letters {
            Terminal.line("  #\(letter.position) \(letter.stream) \(letter.request): \(letter.reason) (\(letter.at))")
        }
    }
}

struct SyncRedriveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Send dead-lettered events to Stream again, once their cause is fixed.",
        discussion: """
            Each event's requests are sent again (network errors, 5xx and 429 retried a few \
            times); a delivered event leaves the dead letters, a refused one stays with the new \
            reason. Exits 1 when any is still refused.
            """
    )

    @OptionGroup var log: LogOptions
    @OptionGroup var stream: StreamOptions

    @Option(help: "The position of the dead letter to re-drive (see `ticketlog sync status`).")
    var position: Int64?

    @Flag(help: "Re-drive every dead letter.")
    var all = false

    func validate() throws {
        guard (position != nil) != all else { throw ValidationError("give either --position N or --all") }
    }

    func run() async throws {
        let logger = Logger.process(label: "ticketlog.sync")
        let store = try await log.openOnEitherBackend(logger: logger)
        let driver = OutboxDriver(store: store, client: try stream.client(), logger: logger)
        let positions = try await all ? store.deadLetters(StreamChatDestination.mirror).map(\.position) : [position!]
        var refused = 0
        for position in positions {
            do {
                switch try await driver.redrive(position: position) {
                case .delivered:
                    Terminal.line("#\(position) delivered")
                case .refused(let reason):
                    refused += 1
                    Terminal.line("#\(position) refused again: \(reason)")
                }
            } catch let error as StreamChatError {
                Terminal.error(error.message)
                throw ExitCode(2)
            }
        }
        if positions.isEmpty { Terminal.line("no dead letters") }
        if refused > 0 { throw ExitCode(1) }
    }
}

struct SyncImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Backfill a ticket from its Stream channel: append what the log misses.",
        discussion: """
            Pages through the channel's message history (newest first, 100 a page) and appends \
            the posts, edits and deletions made in Stream that the log does not have yet, e.g. \
            after webhooks were lost in an outage. Idempotent: running it again appends nothing, \
            and it never duplicates what a webhook brought. Edits of the engine's own messages, \
            membership, and the channel's status, agent, truncation and deletion are taken only \
            when the outbound mirror has caught up (else Stream may not have the engine's latest \
            change yet).

            Example:
              ticketlog sync import --channel ticket-1001 --database ticketlog.sqlite
            """
    )

    @OptionGroup var log: LogOptions
    @OptionGroup var stream: StreamOptions

    @Option(help: "The channel id: ticket-{id}.")
    var channel: String

    func validate() throws {
        guard StreamID(rawValue: channel)?.ticketID != nil else {
            throw ValidationError("--channel takes a ticket channel id like ticket-1001, not '\(channel)'")
        }
    }

    func run() async throws {
        let logger = Logger.process(label: "ticketlog.sync")
        let store = try await log.openOnEitherBackend(logger: logger)
        let ticket = StreamID(rawValue: channel)!
        let interactive = Terminal.isInteractive
        let refusals = Mutex<[WebhookHandler.Refusal]>([])
        let backfill = StreamChatBackfill(store: store, client: try stream.client(), logger: logger) { refusal in
            refusals.withLock { $0.append(refusal) }
        }
        do {
            let report = try await backfill.importChannel(ticket) { read in
                if interactive { FileHandle.standardError.write(Data("\rread \(read) messages".utf8)) }
            }
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            Terminal.line(
                "\(channel): \(report.messages) messages in \(report.pages) pages, \(report.appended) events appended"
                    + (report.reconciledOurChanges
                        ? ""
                        : " (edits of our messages and membership skipped: the mirror is behind; run `ticketlog sync` first)")
            )
            let refused = refusals.withLock { $0 }
            if !refused.isEmpty {
                Terminal.line(
                    "\(refused.count) changes found in Stream were refused (the rules do not let their author make them, or Stream does not say who did):"
                )
                for refusal in refused.prefix(20) { Terminal.line("  \(refusal.type): \(refusal.reason)") }
            }
        } catch let error as StreamChatError {
            Terminal.error(error.message)
            throw ExitCode(1)
        } catch let error as StreamChatAPIError {
            Terminal.error(error.description)
            throw ExitCode(1)
        }
    }
}
