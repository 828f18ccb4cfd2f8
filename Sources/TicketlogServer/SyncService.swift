import ServiceLifecycle
import StreamChatSync

/// The Stream mirror as a service of the server: runs until the server shuts down.
struct SyncService: Service {
    let driver: OutboxDriver

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await driver.run()
        }
    }
}
