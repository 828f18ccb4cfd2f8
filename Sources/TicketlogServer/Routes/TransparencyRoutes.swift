import Foundation
import HTTPTypes
import Hummingbird
import Ticketlog

/// `GET /api/checkpoint` (any caller): the newest signed checkpoint, or the one of `?size=`, as
/// the signed note's text. `GET /api/chat/tickets/:ticketId/evidence` (admins): the ticket's
/// evidence bundle against the newest checkpoint, as a tar archive (the files `ticketlog
/// evidence` writes).
struct TransparencyRoutes {
    let store: EventStore
    /// The key the server signs with: its checkpoints are the ones served (any key's otherwise).
    let keyID: UInt32?

    func register(on api: RouterGroup<TicketlogRequestContext>) {
        api.get("checkpoint") { request, context in
            _ = try context.requireCaller()
            let size = try request.uri.queryParameters.int64("size")
            let checkpoint = try await checkpoint(size: size)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: checkpoint.note)))
        }
        api.get("chat/tickets/:ticketId/evidence") { _, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "download evidence bundles")
            let stream = try TicketRoutes.stream(try context.parameters.require("ticketId"))
            try await AccessPolicy.access(stream, for: caller, in: store)
            let checkpoint = try await checkpoint(size: nil)
            let bundle = try await store.evidence(for: stream, in: checkpoint)
            let name = "\(stream.rawValue)-evidence-\(checkpoint.checkpoint.size)"
            let archive = bundle.tarArchive(name: name, verifierKey: checkpoint.verifierKey)
            var headers: HTTPFields = [:]
            headers[.contentType] = "application/x-tar"
            headers[.contentDisposition] = "attachment; filename=\"\(name).tar\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: archive)))
        }
    }

    private func checkpoint(size: Int64?) async throws -> StoredCheckpoint {
        guard let checkpoint = try await store.storedCheckpoint(size: size, keyID: keyID) else {
            throw APIError(
                .notFound, code: "not_found",
                size.map { "no checkpoint of size \($0) is stored" }
                    ?? "no checkpoint has been signed yet (serve --checkpoint-key, or ticketlog checkpoint)")
        }
        return checkpoint
    }
}
