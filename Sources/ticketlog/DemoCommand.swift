import ArgumentParser
import Foundation
import Ticketlog

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Write a sample ticket conversation to a log, read it back and verify the chain.",
        discussion: """
            Creates the log when it does not exist. The sample events have fixed ids, so running \
            the demo again appends nothing new: re-appending a stored event id is idempotent.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "Durability of each commit: full (survives power loss) or normal (faster).")
    var durability: EventStore.Configuration.Durability = .full

    func run() async throws {
        let store = try await log.openOnEitherBackend(create: true) { $0.durability = durability }
        let stream = StreamID.ticket("1001")!
        let result = try await store.append(Self.conversation(), to: stream)
        Terminal.line(
            result.wasAlreadyStored
                ? "\(stream): already in the log at positions \(result.positions) (idempotent re-append)"
                : "\(stream): appended positions \(result.positions), stream version \(result.streamVersion)")
        for event in try await store.readStream(stream) {
            Terminal.line(
                "  #\(event.position) v\(event.version) \(event.occurredAt) \(event.actor.role.rawValue):\(event.actor.id) \(event.type)"
            )
        }
        let report = try await store.verify()
        Terminal.line(
            report.isValid
                ? "verify: OK, \(report.eventsVerified) events, head \(report.headHash)"
                : "verify: FAILED \(report.failure!)")
        Terminal.line("next: swift run ticketlog verify --database \(log.displayName)")
        Terminal.line("      swift run ticketlog read --database \(log.displayName) --stream \(stream)")
        if !report.isValid { throw ExitCode(1) }
    }

    /// A ticket's life: opened by a brand, assigned, joined, discussed, delivered, resolved.
    static func conversation() -> [ProposedEvent] {
        let admin = Actor(id: "ada", role: .admin)
        let brand = Actor(id: "acme", role: .brand)
        let creator = Actor(id: "kim", role: .creator)
        let agent = Actor(id: "sam", role: .agent)
        let start = Timestamp(microsecondsSinceEpoch: 1_795_000_000_000_000)
        let steps: [(Actor, EventPayload)] = [
            (
                brand,
                .ticketOpened(TicketOpened(title: "Launch video for the spring line", brand: "acme", creator: "kim"))
            ),
            (admin, .agentAssigned(AgentAssigned(agent: "sam"))),
            (brand, .memberJoined(MemberJoined(user: "acme", role: .brand))),
            (creator, .memberJoined(MemberJoined(user: "kim", role: .creator))),
            (agent, .memberJoined(MemberJoined(user: "sam", role: .agent))),
            (
                brand,
                .messagePosted(MessagePosted(messageID: "m-1", text: "Hi Kim! Can we get a 30 second cut by Friday?"))
            ),
            (
                agent,
                .messagePosted(
                    MessagePosted(messageID: "m-2", text: "I'll keep track of this one. Kim, does Friday work?"))
            ),
            (creator, .messagePosted(MessagePosted(messageID: "m-3", text: "Friday works, draft on Thursday."))),
            (creator, .messageEdited(MessageEdited(messageID: "m-3", text: "Friday works, draft on Wednesday."))),
            (agent, .statusChanged(StatusChanged(from: "open", to: "in_progress"))),
            (
                creator,
                .deliverablePushed(
                    DeliverablePushed(
                        deliverableID: "d-1", title: "Spring line, draft 1", url: "https://cdn.example.com/d-1.mp4",
                        kind: "video"))
            ),
            (brand, .messagePosted(MessagePosted(messageID: "m-4", text: "Love it. Approved."))),
            (agent, .statusChanged(StatusChanged(from: "in_progress", to: "resolved", note: "approved by brand"))),
            (agent, .memberLeft(MemberLeft(user: "sam"))),
        ]
        return steps.enumerated().map { index, step in
            ProposedEvent(
                id: UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", 1001_000 + index))!,
                actor: step.0,
                occurredAt: Timestamp(microsecondsSinceEpoch: start.microsecondsSinceEpoch + Int64(index) * 60_000_000),
                payload: step.1)
        }
    }
}

extension EventStore.Configuration.Durability: ExpressibleByArgument {}
