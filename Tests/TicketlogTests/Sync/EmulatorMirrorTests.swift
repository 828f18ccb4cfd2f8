import Foundation
import StreamChatEmulator
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// The outbound mapping applied to the emulator, in process: Stream ends up holding what the
/// projections hold, and sending everything again changes nothing.
@Suite(.timeLimit(.minutes(10))) struct EmulatorMirrorTests {
    static let auth = StreamChatAuth(apiKey: "emulator-key", apiSecret: "emulator-secret")

    static func send(_ request: StreamChatRequest, to emulator: inout StreamEmulator, auth: StreamChatAuth = Self.auth)
        -> StreamEmulator.Response
    {
        emulator.handle(
            .init(
                method: request.method.rawValue, path: request.path, query: auth.query, headers: auth.headers,
                body: request.body))
    }

    @Test func serverAuthIsCheckedAsStreamDoes() {
        var emulator = StreamEmulator(apiKey: "emulator-key", apiSecret: "emulator-secret")
        let request = StreamChatRequest(
            .post, "/users", body: .object(["users": .object(["u": .object(["id": .string("u")])])]))
        #expect(Self.send(request, to: &emulator).status == 201)
        let wrongKey = Self.send(
            request, to: &emulator, auth: StreamChatAuth(apiKey: "other", apiSecret: "emulator-secret"))
        #expect(wrongKey.status == 401)
        #expect(wrongKey.body.objectValue?["code"] == .integer(2))
        let wrongSecret = Self.send(
            request, to: &emulator, auth: StreamChatAuth(apiKey: "emulator-key", apiSecret: "guess"))
        #expect(wrongSecret.status == 401)
        #expect(wrongSecret.body.objectValue?["code"] == .integer(43))
        #expect(wrongSecret.body.objectValue?["StatusCode"] == .integer(401))
        #expect(wrongSecret.headers["X-RateLimit-Reset"] != nil)
    }

    @Test func aMirroredDeskEqualsTheProjectionsAndAReplayChangesNothing() async throws {
        let store = try EventStore.inMemory()
        let desk = Array(SyntheticDesk(.init(tickets: 6, seed: 3, meanMessagesPerTicket: 15)).events())
        try await SyntheticDesk.append(desk, to: store)
        var emulator = StreamEmulator(apiKey: "emulator-key", apiSecret: "emulator-secret")
        let events = try await store.readAll(limit: 100_000)
        var alreadyExists = 0
        for pass in 0..<2 {
            for event in events {
                for request in OutboundMapper.requests(for: event) {
                    let response = Self.send(request, to: &emulator)
                    let message = response.body.objectValue?["message"]
                    if case .string(let text)? = message, response.status == 400, text.contains("already exists") {
                        alreadyExists += 1  // a re-sent message: counts as delivered
                        continue
                    }
                    #expect((200..<300).contains(response.status), "pass \(pass): \(request): \(response.body)")
                }
            }
        }
        #expect(
            alreadyExists
                == events.filter {
                    $0.type == .messagePosted || $0.type == .statusChanged || $0.type == .deliverablePushed
                }.count)

        for ticket in try await store.tickets() {
            let id = ticket.stream.rawValue
            let channel = try #require(emulator.channels[id])
            #expect(channel.custom["ticket_status"] == .string(ticket.status))
            #expect(Set(channel.members) == Set(try await store.members(of: ticket.stream).map(\.user)))
            let mirrored = (emulator.channelMessages[id] ?? []).compactMap { emulator.messages[$0] }.filter {
                $0.type != "system"
            }
            let projected = try await store.messages(of: ticket.stream, limit: 10_000)
            #expect(mirrored.map(\.id) == projected.map { StreamChatIDs.message($0.messageID, in: ticket.stream) })
            #expect(mirrored.map(\.deleted) == projected.map(\.isDeleted))
            // Soft-deleted messages keep their text in Stream; the projection drops it.
            #expect(
                mirrored.filter { !$0.deleted }.map(\.text) == projected.filter { !$0.isDeleted }.map { $0.text ?? "" })
        }
    }
}
