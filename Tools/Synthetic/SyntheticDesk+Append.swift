import Ticketlog

extension SyntheticDesk {
    /// Appends generated items in order: each stream's run of consecutive events is one append,
    /// and all of them are submitted together so that group commit writes few transactions.
    public static func append(_ items: [Item], to store: EventStore) async throws {
        for result in await store.append(StreamAppend.runs(items.map { ($0.stream, $0.event) })) {
            _ = try result.get()
        }
    }
}
