import ArgumentParser
import Foundation
import Ticketlog

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Print the audit trail: who did what to which ticket, when, from where.",
        discussion: """
            One line per event, oldest first. Filters combine: --ticket, --actor, --type \
            (repeatable), and --from / --to on the time the event happened (ISO 8601; --to \
            is exclusive). --format ndjson prints one JSON object per line for machines.

            Examples:
              ticketlog audit --ticket 1001
              ticketlog audit --actor kim --type message.posted --from 2026-11-01 --format ndjson
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case ndjson
    }

    @OptionGroup var log: LogOptions

    @Option(help: "Only this ticket: 1001 or ticket-1001.")
    var ticket: String?

    @Option(help: "Only events by this user id.")
    var actor: String?

    @Option(name: .customLong("type"), help: "Only events of this type (e.g. message.posted); repeatable.")
    var types: [String] = []

    @Option(help: "Only events that happened at or after this time (ISO 8601).")
    var from: String?

    @Option(help: "Only events that happened before this time (ISO 8601).")
    var to: String?

    @Option(help: "text (default) or ndjson.")
    var format: Format = .text

    @Option(help: "Print at most this many entries.")
    var limit: Int = .max

    func validate() throws {
        _ = try query()
        if limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    private func query() throws -> AuditQuery {
        AuditQuery(
            stream: try ticket.map(StreamID.parseTicket),
            actor: actor,
            types: types.isEmpty ? nil : Set(types.map(EventType.init(rawValue:))),
            from: try from.map { try Timestamp.parse($0, option: "--from") },
            to: try to.map { try Timestamp.parse($0, option: "--to") })
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        var query = try query()
        var printed = 0
        while printed < limit {
            query.limit = min(1_000, limit - printed)
            let page = try await store.auditTrail(query)
            guard let last = page.last else { break }
            for entry in page {
                switch format {
                case .text:
                    Terminal.line(
                        "#\(entry.position)  \(entry.occurredAt)  \(entry.stream)  \(entry.origin)  \(entry.summary)")
                case .ndjson:
                    print(try entry.jsonLine())
                }
            }
            printed += page.count
            query.afterPosition = last.position
        }
    }
}
