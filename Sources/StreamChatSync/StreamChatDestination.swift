/// The names under which the Stream Chat mirror keeps its state in the log file (`sync_cursors`,
/// `sync_dead_letters`, `sync_marks`). They are stored in every log that was ever mirrored, so
/// they never change, whatever the types around them are called.
public enum StreamChatDestination {
    /// The outbound mirror's cursor and dead letters.
    public static let mirror = "stream"
    /// The webhook path's marks: the newest Stream time seen per message, member and channel,
    /// and each channel's truncation.
    public static let webhooks = "stream-inbound"
}
