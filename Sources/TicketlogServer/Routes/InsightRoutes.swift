import Foundation
import Hummingbird
import Ticketlog

/// What the dashboard (issue 18) shows beyond the chat: who could see a message, per-ticket
/// facts for the analytics charts, and the log's integrity.
///
/// - `GET /api/chat/tickets/:ticketId/messages/:messageId/audience`: who was in the channel
///   when the message was posted (anyone who may read the ticket).
/// - `GET /api/analytics/tickets`: response and resolution facts of the caller's tickets.
/// - `GET /api/integrity` (admins): the chain verified (cached per head), the newest checkpoint.
struct InsightRoutes {
    let store: EventStore
    let facts: FactsCache
    let integrity: IntegrityCache

    func register(on api: RouterGroup<TicketlogRequestContext>) {
        api.get("chat/tickets/:ticketId/messages/:messageId/audience") { _, context in
            let caller = try context.requireCaller()
            let stream = try TicketRoutes.stream(try context.parameters.require("ticketId"))
            try await AccessPolicy.access(stream, for: caller, in: store)
            let messageID = try context.parameters.require("messageId")
            guard let members = try await store.membersWhenPosted(messageID, in: stream) else {
                throw APIError(.notFound, code: "not_found", "\(stream) has no message \(messageID)")
            }
            return AudienceResponse(channelId: stream.rawValue, messageId: messageID, members: members)
        }
        api.get("analytics/tickets") { request, context in
            let caller = try context.requireCaller()
            let limit = try request.uri.queryParameters.integer("limit", default: 1_000, in: 1...10_000)
            let tickets = try await store.tickets(AccessPolicy.filter(for: caller), limit: limit)
            return AnalyticsResponse(
                tickets: try await facts.facts(of: tickets, in: store).map(AnalyticsResponse.Ticket.init))
        }
        api.get("integrity") { _, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "see the log's integrity")
            let (report, checkedAt) = try await integrity.report(of: store)
            let checkpoint = try await store.storedCheckpoint(size: nil, keyID: nil)
            return IntegrityResponse(report: report, checkedAt: checkedAt, checkpoint: checkpoint)
        }
    }
}

/// Each ticket's facts, folded from its events once per version of the ticket.
actor FactsCache {
    private var cached: [StreamID: (version: Int, facts: TicketFacts)] = [:]

    func facts(of tickets: [TicketSummary], in store: EventStore) async throws -> [TicketFacts] {
        var result: [TicketFacts] = []
        for ticket in tickets {
            if let hit = cached[ticket.stream], hit.version == ticket.events {
                result.append(hit.facts)
                continue
            }
            var facts = TicketFacts(stream: ticket.stream)
            for event in try await store.readStream(ticket.stream) { facts.apply(event) }
            cached[ticket.stream] = (facts.events, facts)
            result.append(facts)
        }
        return result
    }
}

/// The chain verified once per head: a dashboard asking again gets the same answer until the log
/// grows; one verification runs at a time.
actor IntegrityCache {
    private var last: (report: VerificationReport, checkedAt: Date)?
    private var running: Task<VerificationReport, any Error>?

    func report(of store: EventStore) async throws -> (VerificationReport, Date) {
        let head = try await store.headPosition()
        if let last, last.report.headPosition == head { return last }
        if let running { return (try await running.value, last?.checkedAt ?? Date()) }
        let task = Task { try await store.verify() }
        running = task
        defer { running = nil }
        let report = try await task.value
        last = (report, Date())
        return (report, last!.checkedAt)
    }
}

struct AudienceResponse: ResponseEncodable {
    var channelId: String
    var messageId: String
    /// Who was in the channel when it was posted, in joining order.
    var members: [TicketState.Member]
}

struct AnalyticsResponse: ResponseEncodable {
    struct Ticket: Encodable {
        var channelId: String
        var ticketId: String
        var brand: String?
        var creator: String?
        var agent: String?
        var status: String
        var openedAt: String?
        var firstAgentResponseAt: String?
        var firstAgentResponseSeconds: Double?
        var resolvedAt: String?
        var resolutionSeconds: Double?
        var messages: Int
        var deliverables: Int

        init(_ facts: TicketFacts) {
            channelId = facts.stream.rawValue
            ticketId = facts.stream.ticketID ?? facts.stream.rawValue
            brand = facts.header.brand
            creator = facts.header.creator
            agent = facts.header.agent
            status = facts.header.status
            openedAt = facts.header.openedAt?.description
            firstAgentResponseAt = facts.firstAgentResponseAt?.description
            firstAgentResponseSeconds = facts.firstAgentResponseSeconds
            resolvedAt = facts.resolvedAt?.description
            resolutionSeconds = facts.resolutionSeconds
            messages = facts.messages
            deliverables = facts.deliverables
        }
    }

    var tickets: [Ticket]
}

struct IntegrityResponse: ResponseEncodable {
    struct Verification: Encodable {
        var ok: Bool
        var eventsVerified: Int64
        var headPosition: Int64
        var headHash: String
        var failure: String?
        var warnings: [String]
        var checkedAt: String
    }

    struct SignedCheckpoint: Encodable {
        var origin: String
        var size: Int64
        var signedAt: String
        var note: String
    }

    var verification: Verification
    var checkpoint: SignedCheckpoint?

    init(report: VerificationReport, checkedAt: Date, checkpoint: StoredCheckpoint?) {
        verification = Verification(
            ok: report.isValid, eventsVerified: report.eventsVerified, headPosition: report.headPosition,
            headHash: report.headHash, failure: report.failure?.description, warnings: report.warnings,
            checkedAt: Timestamp(checkedAt).description)
        self.checkpoint = checkpoint.map {
            SignedCheckpoint(
                origin: $0.checkpoint.origin, size: $0.checkpoint.size, signedAt: $0.signedAt.description, note: $0.note
            )
        }
    }
}
