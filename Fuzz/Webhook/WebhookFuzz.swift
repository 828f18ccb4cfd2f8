import Foundation
import FuzzSupport
import StreamChatSync
import Ticketlog

// libFuzzer target (issue 7): a Stream webhook delivery. Even first byte: the rest is signed with
// the app secret, so parsing, translation and the append run on it; odd: the rest as received,
// unsigned (gzip inflation and the signature check). The handler must answer with a result or an
// EventStoreError — never crash or hang — and a rejected or refused delivery must append nothing.
// The log holds the seed corpus's ticket (ticket-4711: brand-acme, creator-jane, agent-7), so
// deliveries about it get past "no such ticket" into authorisation and reconciliation.

private let secret = "fuzz-stream-secret-of-at-least-32-bytes"

private final class Fixture: @unchecked Sendable {
    // @unchecked Sendable: libFuzzer calls the target from one thread, one input at a time.
    var store: EventStore
    var handler: WebhookHandler
    var runs = 0

    init() {
        store = Self.makeStore()
        handler = WebhookHandler(store: store, apiSecret: secret)
    }

    static func makeStore() -> EventStore {
        let store = try! EventStore.inMemory()
        runToEnd {
            let ticket = StreamID.ticket("4711")!
            let admin = Actor(id: "ada", role: .admin)
            _ = try? await store.execute(
                .open(title: "Launch", brand: "brand-acme", creator: "creator-jane"), on: ticket, by: admin)
            _ = try? await store.execute(.assign(agent: "agent-7"), on: ticket, by: admin)
        }
        return store
    }

    /// A fresh log every 500 inputs, so memory stays flat over long runs.
    func next() -> (EventStore, WebhookHandler) {
        runs += 1
        if runs % 500 == 0 {
            store = Self.makeStore()
            handler = WebhookHandler(store: store, apiSecret: secret)
        }
        return (store, handler)
    }
}

private let fixture = Fixture()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebhook(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let selector = input.first else { return 0 }
    let body = Array(input.dropFirst())
    let signature = selector % 2 == 0 ? WebhookSignature.sign(body, secret: secret) : "00"
    let (store, handler) = fixture.next()
    runToEnd {
        let before = (try? await store.headPosition()) ?? -1
        do {
            let result = try await handler.handle(body: body, signature: signature, webhookID: "fuzz")
            switch result {
            case .rejected, .refused:
                if (try? await store.headPosition()) != before {
                    fatalError("a rejected or refused delivery appended events")
                }
            default:
                break
            }
        } catch is EventStoreError {
            // A storage or validation error with a message: acceptable.
        } catch {
            fatalError("the handler threw something other than EventStoreError: \(error)")
        }
    }
    return 0
}

@_cdecl("fuzz_webhook_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzzWebhook(UnsafeRawPointer($0), size) } ?? 0 }
}
