import Ticketlog

extension SyntheticDesk {
    /// Appends generated items: each stream's run of events as one append, all of them
    /// submitted together so that group commit writes the batch in few transactions.
    public static func append(_ items: [Item], to store: EventStore) async throws {
        var runs: [(StreamID, [ProposedEvent])] = []
        var index: [StreamID: Int] = [:]
        for item in items {
            if let at = index[item.stream] {
                runs[at].1.append(item.event)
            } else {
                index[item.stream] = runs.count
                runs.append((item.stream, [item.event]))
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (stream, events) in runs {
                group.addTask { try await store.append(events, to: stream) }
            }
            try await group.waitForAll()
        }
    }
}
