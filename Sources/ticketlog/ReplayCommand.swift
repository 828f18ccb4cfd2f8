import ArgumentParser
import Foundation
import Ticketlog

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Show a ticket as it was at a position or a time.",
        discussion: """
            Folds the ticket's events up to --at and prints its state then: title, status, \
            assigned agent, members, messages (edits and deletes applied) and deliverables. \
            --at is a log position (a number: the state after that event) or an ISO 8601 time \
            (the events the log had recorded by then). Without --at: the state now.

            --messages N prints only the ticket's last N messages (and how many came before): a \
            long ticket has thousands.

            --message ID instead answers "who could see this message": the members of the \
            channel when it was posted.

            Examples:
              ticketlog replay --ticket 1001 --at 9
              ticketlog replay --ticket 1001 --at 2026-11-18T11:12:00Z --json
              ticketlog replay --ticket 1001 --messages 20
              ticketlog replay --ticket 1001 --message m-3
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The ticket: 1001 or ticket-1001.")
    var ticket: String

    @Option(help: "A position (e.g. 120) or an ISO 8601 time (e.g. 2026-11-27T14:30:00Z).")
    var at: String?

    @Option(help: "A message id: print who was in the channel when it was posted.")
    var message: String?

    @Option(help: "Print only the ticket's last this many messages (0 to 10000).")
    var messages: Int?

    @Flag(help: "Print the state as one JSON object.")
    var json = false

    func validate() throws {
        _ = try StreamID.parseTicket(ticket)
        _ = try point()
        if message != nil && at != nil {
            throw ValidationError("--message and --at do not combine: a message has its own moment")
        }
        let counts = TicketState.keptMessageCounts
        if let messages, !counts.contains(messages) {
            throw ValidationError(
                "--messages must be from \(counts.lowerBound) to \(counts.upperBound), not \(messages)")
        }
        if message != nil && messages != nil {
            throw ValidationError("--message and --messages do not combine: --message prints who saw one message")
        }
    }

    private func point() throws -> PointInTime? {
        guard let at else { return nil }
        if let position = Int64(at) {
            guard position >= 0 else { throw ValidationError("--at position must not be negative") }
            return .position(position)
        }
        return .time(try Timestamp.parse(at, option: "--at"))
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        let stream = try StreamID.parseTicket(ticket)
        if let message {
            guard let members = try await store.membersWhenPosted(message, in: stream) else {
                Terminal.error("\(stream) has no message \(message)")
                throw ExitCode(1)
            }
            if json {
                print(try members.jsonLine())
            } else {
                Terminal.line(
                    "\(message) in \(stream) was visible to: "
                        + members.map { "\($0.user) (\($0.role.rawValue))" }.joined(separator: ", "))
            }
            return
        }
        let whole = try await store.ticketState(stream, at: try point())
        let state = messages.map(whole.keepingLastMessages) ?? whole
        if json {
            print(try state.jsonLine())
            return
        }
        guard state.version > 0 else {
            Terminal.line("\(stream) has no events\(at.map { " at \($0)" } ?? "")")
            return
        }
        Terminal.line("\(stream) after position \(state.position) (version \(state.version))")
        Terminal.line("  title:    \(state.title ?? "-")")
        Terminal.line(
            "  brand:    \(state.brand ?? "-")   creator: \(state.creator ?? "-")   agent: \(state.agent ?? "-")")
        Terminal.line("  status:   \(state.status)")
        let members = state.members.values.sorted { $0.joinedPosition < $1.joinedPosition }
        Terminal.line(
            "  members:  "
                + (members.isEmpty ? "-" : members.map { "\($0.user) (\($0.role.rawValue))" }.joined(separator: ", ")))
        Terminal.line(
            "  messages: \(whole.visibleMessages.count) visible, \(whole.messages.count - whole.visibleMessages.count) deleted"
        )
        if state.messagesOmitted > 0 { Terminal.line("    (\(state.messagesOmitted) earlier message(s) not shown)") }
        for message in state.messages {
            let text = message.text.map { "\"\($0)\"" } ?? "[deleted]"
            let edited = message.edits > 0 ? " (edited \(message.edits)x)" : ""
            Terminal.line("    #\(message.position) \(message.postedAt) \(message.author.id): \(text)\(edited)")
        }
        if !state.deliverables.isEmpty {
            Terminal.line("  deliverables:")
            for item in state.deliverables {
                Terminal.line(
                    "    #\(item.position) \(item.deliverable.kind) \(item.deliverable.deliverableID) \"\(item.deliverable.title)\" \(item.deliverable.url)"
                )
            }
        }
    }
}
