import Foundation
import Hummingbird

/// The framework's ceiling for the HTTP row (issue 14): a bare Hummingbird server with the
/// message route, which decodes the same body as `ticketlog serve` and answers 201 without
/// storing, authenticating or looking anything up. What `POST …/messages` reaches is measured
/// as a share of what this reaches on the same machine, in the same run.
enum Ceiling {
    struct MessageRequest: Decodable {
        var messageId: String?
        var text: String
        var expectedVersion: Int64?
    }

    struct Created: ResponseEncodable {
        var channelId: String
        var version: Int64
    }

    static func serve(port: Int) async throws {
        let router = Router()
        router.post("/api/chat/tickets/:ticketId/messages") { request, context -> EditedResponse<Created> in
            let body = try await request.decode(as: MessageRequest.self, context: context)
            let ticket = try context.parameters.require("ticketId")
            return EditedResponse(
                status: .created, response: Created(channelId: "ticket-\(ticket)", version: Int64(body.text.count)))
        }
        router.get("/api/chat/tickets/:ticketId/messages") { _, context -> Created in
            Created(channelId: "ticket-\(try context.parameters.require("ticketId"))", version: 0)
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "ceiling"))
        try await app.runService()
    }
}
