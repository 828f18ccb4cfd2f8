import Foundation

extension EventStore {
    /// How an ``EventStore`` opens and writes its file.
    public struct Configuration: Sendable {
        /// How hard each commit pushes to disk.
        public enum Durability: String, Sendable, CaseIterable {
            /// `synchronous=FULL`: an acknowledged append survives power loss (audit grade).
            case full
            /// `synchronous=NORMAL`: an acknowledged append survives a crash of the process; the
            /// newest commits may be lost on power loss. Faster.
            case normal
        }

        /// Default ``Durability/full``.
        public var durability: Durability = .full
        /// The key that wraps the content keys of an encrypted log (issue 17). Given to a new or
        /// plaintext log, personal fields of every event appended from then on are sealed; a log
        /// with sealed content refuses to open for writing without it, and refuses another key,
        /// before anything is written (``EventStoreError/Code/masterKey``). Read-only opening
        /// without it reads sealed fields as they are stored.
        public var masterKey: MasterKey?
        /// Opens a log with sealed content for writing without its master key, its sealed
        /// fields left as stored: only for the throw-away copy a projection check rebuilds
        /// (projections hold no content).
        var writesSealedContentWithoutKey = false
        /// The largest canonical event body accepted, in bytes (default 1 MiB).
        public var maximumEventSize: Int = 1 << 20
        /// The most events one append call may carry (default 10,000).
        public var maximumEventsPerAppend: Int = 10_000
        /// Group commit stops adding appends to one transaction beyond this many events.
        public var maximumEventsPerTransaction: Int = 20_000
        /// Once the log holds this many events and has no LZ4 dictionary yet, the store makes one
        /// from a sample of them. `nil`: only ``EventStore/rotateDictionary()`` makes one.
        public var dictionaryTrainingThreshold: Int64? = 1_000
        /// How hard event bodies are compressed against the LZ4 dictionary: `0` (the default),
        /// LZ4's fast compressor (~1.6 µs per event); `1...12`, LZ4 HC at that level (level 4:
        /// bodies ~27% smaller for ~14 µs more per event, measured in ARCHITECTURE.md). The stored
        /// format is the same LZ4 block either way, so the level can change at any time and every
        /// build reads what any level wrote.
        public var compressionLevel = 0
        /// Create the file when it does not exist (default). When `false`, opening a missing file
        /// fails, so tools such as `verify` never create an empty log by mistake.
        public var createIfMissing = true
        /// Open for reading only: nothing at all is written to the file, not even its journal
        /// mode, so checking a log cannot change it. Appends fail with
        /// ``EventStoreError/Code/storageFailure``; projections are not brought up to date; a
        /// file that is not yet a log is refused. For `verify`, `read`, `stats`.
        public var readOnly = false
        /// How long a subscriber waits for a commit notification before it looks at the file
        /// again (so it also sees appends made by another process).
        public var subscriptionPollInterval: Duration = .seconds(1)
        /// How many events a projection catch-up or rebuild reads and decodes at a time (a page).
        /// Its transactions on an SQLite log apply three pages each (one on PostgreSQL, and in the
        /// catch-up when a log opens). Smaller pages let appends in between more often; larger
        /// ones rebuild faster and take more memory.
        public var projectionBatchSize = 5_000
        /// Whether appends keep the projections in their own transaction (the default: a read
        /// after an append sees it). `false` writes events only, for bulk loads: the projections
        /// lag until ``EventStore/catchUpProjections(progress:)`` (or the next opening of the log
        /// with this `true`) brings them up to date.
        public var inlineProjections = true
        /// From how many events a catch-up of the message history from the first event (a
        /// rebuild) builds its search index beside the writer (``SearchIndexBuilder``), on a
        /// file. Tests set it to 1.
        package var searchIndexBesideFrom: Int64 = 20_000
        /// Where that index's scratch file goes (default: the temporary directory).
        package var searchScratchDirectory: URL?
        /// The page cache of the writing connection, in bytes (default 32 MiB). A transaction
        /// of many appends touches pages all over the events table, its indexes and the
        /// projections; when they do not fit, SQLite spills dirty pages to the WAL mid-transaction
        /// and writes them again when they change once more (measured: 19 WAL frames per event
        /// with SQLite's default 2 MB, see ARCHITECTURE.md). Past what a transaction dirties,
        /// more is memory for nothing: pages read again come from the system's file cache
        /// (1M events: batched append and rebuild as fast with 16, 32 or 64 MiB).
        public var writerCacheBytes = 32 << 20
        /// The WAL lengths (frames) from which a commit has the WAL checkpointed beside the
        /// writer, and from which it checkpoints what is left itself (``WALCheckpointer``).
        /// Tests set them small.
        package var walCheckpointFrames = WALCheckpointer.Thresholds()
        /// The page cache of each reading connection, in bytes (default 2 MiB, about SQLite's
        /// own default). A file-backed store keeps up to ``maximumReaders`` of them.
        public var readerCacheBytes = 2 << 20
        /// How many reads may run at once, each on a connection of its own (default 5, at least
        /// 1); more wait for a free one. On PostgreSQL these connections are opened as reads need
        /// them, beside the one that writes.
        public var maximumReaders = 5
        /// The clock that stamps `recordedAt` (and `occurredAt` of what commands append, and the
        /// times the sync records). Inject a fixed one for deterministic tests.
        public var clock: @Sendable () -> Timestamp = { .now }
        /// Where the ids of events that commands append, and of messages and deliverables the
        /// API names for its callers, come from. Inject a counter for deterministic tests.
        public var newID: @Sendable () -> UUID = { .timeOrdered() }

        public init() {}
    }
}
