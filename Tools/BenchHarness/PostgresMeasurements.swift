import Foundation
import Ticketlog
import TicketlogPostgres

/// Issue 19's PostgreSQL append, on a server the caller started (the `make bench` row against
/// `eventsourcing[postgres]` comes with a cluster the bench starts itself):
/// `ticketlog-bench --child postgres-append --database postgres://… --events N` on an empty
/// database.
enum PostgresMeasurements {
    static func batchedAppend(events: Int, url: String, inlineProjections: Bool = true) async throws -> Rate {
        var configuration = EventStore.Configuration()
        configuration.dictionaryTrainingThreshold = nil
        configuration.inlineProjections = inlineProjections
        let log = try await PostgresLog.open(try PostgresLocation(url: url), configuration: configuration)
        do {
            let rate = try await Measurements.timedBatches(events: events) { appends in
                for result in try await log.append(appends) { _ = try result.get() }
            }
            await log.close()
            return rate
        } catch {
            await log.close()
            throw error
        }
    }
}
