import Foundation
import Hummingbird
import Ticketlog

/// `DELETE /api/admin/users/:userId/content` (admins): erases everything the user wrote
/// (issue 17) — their content keys destroyed, `erasure.performed` recorded, the file scrubbed.
/// Body `{"reason": "...", "requestedBy": "..."}` (`requestedBy` defaults to the user).
struct AdminRoutes {
    let store: EventStore
    /// The pages of messages kept, dropped after an erasure.
    let pages: MessagePageCache

    struct EraseRequest: Decodable {
        var reason: String
        var requestedBy: String?
    }

    struct EraseResponse: ResponseEncodable {
        var userId: String
        var keysDestroyed: Int
        var position: Int64
        var scrubbed: Bool
    }

    func register(on api: RouterGroup<TicketlogRequestContext>) {
        api.delete("admin/users/:userId/content") { request, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "erase a user's content")
            let user = try context.parameters.require("userId")
            if let problem = TextRule.problem(user, "the user id", limit: 255) {
                throw APIError(.badRequest, code: "bad_request", problem)
            }
            let body = try await request.decodeJSON(EraseRequest.self, context: context)
            let report: ErasureReport
            do {
                report = try await store.erase(
                    .subject(user), requestedBy: body.requestedBy ?? user, reason: body.reason, by: caller.actor)
            } catch {
                // It may have destroyed keys before failing (the scrub after them, say).
                pages.removeAll()
                throw error
            }
            pages.removeAll()
            return EraseResponse(
                userId: user, keysDestroyed: report.keys.count, position: report.position, scrubbed: report.scrubbed)
        }
    }
}
