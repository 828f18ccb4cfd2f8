import Foundation
import Ticketlog

/// What must hold after every restart: the log verifies, every acknowledged event is in it
/// exactly once at its acknowledged position, and the projections equal a rebuild.
struct Checker {
    let database: String
    let seed: UInt64

    /// Opens the log as a restarted writer would (recovery included) and checks it; a summary,
    /// or ``CrashTestFailure`` saying what is wrong and where.
    func check(_ acks: Acknowledgements) async throws -> String {
        var configuration = EventStore.Configuration()
        configuration.durability = .full
        let store: EventStore
        do {
            store = try EventStore(path: database, configuration: configuration)
        } catch {
            throw CrashTestFailure("the log does not open after the kill: \(error)")
        }

        let report = try await store.verify()
        if let failure = report.failure {
            throw CrashTestFailure(
                "verify failed at position \(failure.position): \(failure.kind.rawValue): \(failure.detail)")
        }

        // Where each event id is, and how often: the whole log, a page at a time.
        var found: [UUID: [Int64]] = [:]
        var position: Int64 = 1
        while true {
            let page = try await store.readAll(from: position, limit: 5_000)
            for event in page { found[event.proposed.id, default: []].append(event.position) }
            guard let last = page.last else { break }
            position = last.position + 1
        }

        var acknowledgedEvents = 0
        var problems: [String] = []
        let highest = acks.positions.keys.max() ?? -1
        for batch in Workload(seed: seed).batches() {
            if batch.number > highest { break }
            guard let range = acks.positions[batch.number] else { continue }
            guard range.count == batch.events.count else {
                problems.append(
                    "append \(batch.number) has \(batch.events.count) events but was acknowledged at \(range.count) positions \(range)"
                )
                continue
            }
            for (event, expected) in zip(batch.events, range) {
                acknowledgedEvents += 1
                let positions = found[event.id] ?? []
                if positions != [expected] {
                    let id = event.id.uuidString.lowercased()
                    problems.append(
                        positions.isEmpty
                            ? "event \(id) (append \(batch.number)) was acknowledged at position \(expected) and is missing"
                            : "event \(id) (append \(batch.number)) was acknowledged at position \(expected) and is at \(positions.map(String.init).joined(separator: ", "))"
                    )
                }
            }
        }
        if !problems.isEmpty {
            throw CrashTestFailure(
                "\(problems.count) acknowledged events are not where they were acknowledged: "
                    + problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; …" : ""))
        }

        let projections = try await store.checkProjections()
        if !projections.holds {
            let behind = projections.projections.filter { $0.checkpoint != projections.headPosition }.map(\.name)
            let differing = projections.tables.filter { !$0.matches }.map {
                "\($0.name) (\($0.rows) rows, rebuilt \($0.rebuiltRows))"
            }
            throw CrashTestFailure(
                "the projections are not what the events say: behind: \(behind.isEmpty ? "none" : behind.joined(separator: ", ")); "
                    + "differing from a rebuild: \(differing.isEmpty ? "none" : differing.joined(separator: ", "))")
        }
        let unacknowledged = report.eventsVerified - Int64(acknowledgedEvents)
        return
            "verify OK (\(report.eventsVerified) events, \(unacknowledged) of them committed but never acknowledged), "
            + "\(acknowledgedEvents) acknowledged events each present once, projections equal a rebuild"
    }
}
