import Logging
import ServiceLifecycle
import Ticketlog

/// Signs a checkpoint of the log whenever ``TicketlogServer/Configuration/Checkpoints/everyEvents``
/// events were appended since the last one, or ``TicketlogServer/Configuration/Checkpoints/interval``
/// passed with any new event, and once more at shutdown. Runs beside the server.
struct CheckpointService: Service {
    let store: EventStore
    let policy: TicketlogServer.Configuration.Checkpoints
    let logger: Logger

    func run() async throws {
        var signedSize = try await store.storedCheckpoint(keyID: policy.signer.keyID)?.checkpoint.size ?? -1
        var signedAt = ContinuousClock.now
        // Looks at the head at least once a second (a read of one meta row).
        let step = min(policy.interval, .seconds(1))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: step)
            let head = try await store.headPosition()
            let due =
                head - signedSize >= policy.everyEvents
                || (head > signedSize && signedAt.duration(to: .now) >= policy.interval)
            if due, let size = await sign() {
                signedSize = size
                signedAt = .now
            }
        }
        if try await store.headPosition() > signedSize { _ = await sign() }
    }

    private func sign() async -> Int64? {
        do {
            let checkpoint = try await store.signCheckpoint(with: policy.signer)
            logger.debug("Signed a checkpoint", metadata: ["ticketlog.size": "\(checkpoint.checkpoint.size)"])
            return checkpoint.checkpoint.size
        } catch {
            logger.error("Could not sign a checkpoint", metadata: ["ticketlog.error": "\(error)"])
            return nil
        }
    }
}
