import Ticketlog

extension SyntheticDesk {
    /// Appends generated items in order: each stream's run of consecutive events is one append,
    /// and all of them are submitted together so that group commit writes few transactions.
    /// Returns how many of the items the log held already (same ids: the same seed again).
    @discardableResult
    public static func append(_ items: [Item], to store: EventStore) async throws -> Int {
        var alreadyStored = 0
        for result in await store.append(StreamAppend.runs(items.map { ($0.stream, $0.event) })) {
            let appended = try result.get()
            if appended.wasAlreadyStored { alreadyStored += appended.positions.count }
        }
        return alreadyStored
    }
}
