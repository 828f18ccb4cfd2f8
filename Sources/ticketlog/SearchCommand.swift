import ArgumentParser
import Foundation
import Ticketlog

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search message text: the messages with every word given, newest first.",
        discussion: """
            Words are matched whole, ignoring case and accents; a word ending in * matches as a \
            prefix (quote it for the shell). The current text of each message is searched: an \
            edit replaces what is found, deleted and erased messages are not found. Each hit \
            prints its ticket, position, time and author and a passage with the matches in \
            [brackets]; --format ndjson prints one JSON object per hit.

            Examples:
              ticketlog search invoice
              ticketlog search 'deliver*' draft --ticket 1001 --from 2026-11-01
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case ndjson
    }

    @OptionGroup var log: LogOptions

    @Argument(help: "The words to find.")
    var words: [String]

    @Option(help: "Only this ticket: 1001 or ticket-1001.")
    var ticket: String?

    @Option(help: "Only messages posted at or after this time (ISO 8601).")
    var from: String?

    @Option(help: "Only messages posted before this time (ISO 8601).")
    var to: String?

    @Option(help: "At most this many hits (1 to 1000).")
    var limit: Int = 20

    @Option(help: "text (default) or ndjson.")
    var format: Format = .text

    func validate() throws {
        _ = try search()
        guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000") }
    }

    private func search() throws -> MessageSearch {
        MessageSearch(
            words.joined(separator: " "), ticket: try ticket.map(StreamID.parseTicket),
            from: try from.map { try Timestamp.parse($0, option: "--from") },
            to: try to.map { try Timestamp.parse($0, option: "--to") }, limit: limit)
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        let hits: [SearchHit]
        do {
            hits = try await store.search(try search())
        } catch let error as EventStoreError where error.code == .invalidEvent {
            throw ValidationError(error.message)
        }
        for hit in hits {
            switch format {
            case .text:
                let passage = hit.snippet.map { $0.match ? "[\($0.text)]" : $0.text }.joined()
                Terminal.line(
                    "\(hit.ticket)  #\(hit.position)  \(hit.postedAt)  \(hit.author.id) (\(hit.author.role.rawValue))  \(passage)"
                )
            case .ndjson:
                print(try hit.jsonLine())
            }
        }
        if hits.isEmpty, format == .text { Terminal.status("no message has every word of the search") }
    }
}
