import Foundation
import StreamChatEmulator
import Synchronization
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// The outbound sync end to end, in process: a generated desk mirrored into the emulator through
/// a client that fails a fifth of the time, with the adapter restarted midway.
// Six minutes: the faulty-stream run mirrors ~2,400 events through retries; alone it takes
// seconds, beside the whole suite on two cores it took 155–185 s.
@Suite(.timeLimit(.minutes(6))) struct OutboxDriverTests {
    /// The emulator in process, with its faults (``StreamEmulator/Faults``): 5xx before
    /// applying, bursts of 429 with a reset, and responses lost after the emulator applied the
    /// request (the client throws, as on a timeout).
    final class FaultyStream: Sendable {
        let emulator: Mutex<StreamEmulator>
        let sent = Mutex(0)
        let auth = StreamChatAuth(apiKey: "k", apiSecret: "emulator-secret")

        init(seed: UInt64, faultPercent: Int) {
            var emulator = StreamEmulator(apiKey: "k", apiSecret: "emulator-secret")
            emulator.inject(.init(percent: faultPercent, seed: seed))
            self.emulator = Mutex(emulator)
        }

        struct ResponseLost: Error {}

        var faults: Int { emulator.withLock { $0.injected.values.reduce(0, +) } }

        var client: StreamChatClient {
            StreamChatClient { request in
                self.sent.withLock { $0 += 1 }
                let served = self.emulator.withLock { emulator in
                    emulator.serve(
                        .init(
                            method: request.method.rawValue, path: request.path, query: self.auth.query,
                            headers: self.auth.headers,
                            body: request.body))
                }
                if served.responseLost { throw ResponseLost() }
                let response = served.response
                return .init(
                    status: response.status, body: response.plainText == nil ? response.body : nil,
                    headers: response.headers)
            }
        }
    }

    @Test func aFaultyStreamWithARestartEndsEqualToTheProjections() async throws {
        let directory = try TemporaryDirectory()
        var storeConfiguration = EventStore.Configuration()
        storeConfiguration.durability = .normal
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: storeConfiguration)
        let desk = Array(SyntheticDesk(.init(tickets: 50, seed: 21, meanMessagesPerTicket: 36)).events())
        for start in stride(from: 0, to: desk.count, by: 500) {
            try await SyntheticDesk.append(Array(desk[start..<min(start + 500, desk.count)]), to: store)
        }
        let head = try await store.headPosition()
        #expect(head >= 2_000)

        let stream = FaultyStream(seed: 5, faultPercent: 20)
        var configuration = OutboxDriver.Configuration()
        configuration.stateMachine = .init(baseBackoff: 0.005, maximumBackoff: 0.05)
        // First run: stopped midway, as a crash or a deploy would.
        let first = Task {
            try await OutboxDriver(store: store, client: stream.client, configuration: configuration).run()
        }
        try await waitUntil("2,000 requests reach Stream", within: .seconds(120)) {
            stream.sent.withLock { $0 } >= 2_000
        }
        first.cancel()
        _ = try? await first.value
        let midway = try await store.syncCursor(StreamChatDestination.mirror)
        #expect(midway > 0 && midway < head, "cursor after the first run: \(midway)")

        // Second run from the durable cursor.
        let cursor = try await OutboxDriver(store: store, client: stream.client, configuration: configuration)
            .runUntilCaughtUp()
        #expect(cursor == head)
        #expect(try await store.syncCursor(StreamChatDestination.mirror) == head)
        #expect(try await store.deadLetters(StreamChatDestination.mirror).isEmpty)
        let injected = stream.emulator.withLock { $0.injected }
        #expect(stream.faults > 300, "faults injected: \(injected)")
        #expect(injected.count == 3, "every kind of fault: \(injected)")

        let emulator = stream.emulator.withLock { $0 }
        for ticket in try await store.tickets() {
            let id = ticket.stream.rawValue
            let channel = try #require(emulator.channels[id])
            #expect(channel.custom["ticket_status"] == .string(ticket.status), "\(id)")
            #expect(Set(channel.members) == Set(try await store.members(of: ticket.stream).map(\.user)), "\(id)")
            let sent = (emulator.channelMessages[id] ?? []).compactMap { emulator.messages[$0] }.filter {
                $0.type != "system"
            }
            let projected = try await store.messages(of: ticket.stream, limit: 10_000)
            // Every message exactly once, in the ticket's order, with its edits and deletes.
            #expect(sent.map(\.id) == projected.map { StreamChatIDs.message($0.messageID, in: ticket.stream) }, "\(id)")
            #expect(sent.map(\.deleted) == projected.map(\.isDeleted), "\(id)")
            #expect(
                sent.filter { !$0.deleted }.map(\.text) == projected.filter { !$0.isDeleted }.map { $0.text ?? "" },
                "\(id)")
        }
    }

    @Test func permanentRefusalsAreDeadLetteredAndTheCursorMovesOn() async throws {
        let store = try EventStore.inMemory()
        var factory = EventFactory()
        // A message by a user Stream does not know (never joined, never upserted... the mapper
        // upserts authors, so refuse differently): a channel that was never opened.
        try await store.append(factory.message("orphan"), to: .ticket("never-opened")!)
        let stream = FaultyStream(seed: 1, faultPercent: 0)
        let cursor = try await OutboxDriver(store: store, client: stream.client).runUntilCaughtUp()
        #expect(cursor == 1)
        let letters = try await store.deadLetters(StreamChatDestination.mirror)
        #expect(letters.count == 1)
        #expect(letters.first?.reason.contains("404 code 16") == true)
        #expect(letters.first?.request == "POST /channels/messaging/ticket-never-opened/message")
    }
}
