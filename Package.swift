// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Ticketlog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Ticketlog", targets: ["Ticketlog"]),
        .library(name: "TicketlogServer", targets: ["TicketlogServer"]),
        .library(name: "StreamChatSync", targets: ["StreamChatSync"]),
        .library(name: "TicketlogStreamChat", targets: ["TicketlogStreamChat"]),
        .library(name: "TicketlogPostgres", targets: ["TicketlogPostgres"]),
        .executable(name: "ticketlog", targets: ["ticketlog"]),
        .executable(name: "ticketlog-generate", targets: ["ticketlog-generate"]),
        .executable(name: "stream-emulator", targets: ["stream-emulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        // The dashboard's live chat over WebSocket (issue 18), in the server only.
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already under Hummingbird; named for the server's connection guard (a channel handler).
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // The log on PostgreSQL (issue 19), in its own target: the core stays free of NIO.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // TLS to PostgreSQL (sslmode): postgres-nio's own TLS stack, named for its configuration.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.25.0"),
        // `make docs`: the DocC catalogs of the library products (a plugin, not linked into anything).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System liblz4 (Debian: liblz4-dev). Block API with dictionaries; see ARCHITECTURE.md.
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // glibc's <malloc.h> (part of libc): the server's heap figure and its arena limit.
        .systemLibrary(name: "CMalloc"),
        // <sys/random.h> (part of libc): getrandom(2) for the nonces of sealed fields.
        .systemLibrary(name: "CSystemRandom"),
        // System libcrypto (OpenSSL 3; Debian: libssl-dev), on Linux: ChaCha20-Poly1305 with a
        // reusable context for sealing personal fields on the append path (ARCHITECTURE.md
        // "Dependencies"; swift-crypto's one-shot API costs five times the cipher per field).
        .systemLibrary(
            name: "CLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // System zlib (Debian: zlib1g-dev), to inflate gzip-compressed Stream webhooks.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The log's connections write their WAL through this VFS: the default one with a
        // commit's frames gathered into few writes (ARCHITECTURE.md "Append path"). C, ours, over
        // the system SQLite's documented VFS interface; nothing else.
        .target(
            name: "CSQLiteWAL",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // The embeddable core: events, codec, store, chain, reads. No network code.
        .target(
            name: "Ticketlog",
            dependencies: [
                "CLZ4",
                "CSQLiteWAL",
                "CSystemRandom",
                .target(name: "CLibcrypto", condition: .when(platforms: [.linux])),
                .product(name: "GRDB", package: "GRDB.swift"),
                // GRDB's module map of the system SQLite, for the C calls GRDB does not wrap
                // (sqlite3_memory_used).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The HTTP API (Hummingbird 2) over the core: auth, roles, errors, routes.
        .target(
            name: "TicketlogServer",
            dependencies: [
                "Ticketlog",
                "CMalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/Dashboard")]
        ),
        // Stream Chat in the server: the webhook route and the mirror service, mounted by the
        // composition root (the CLI), so the server knows nothing of Stream.
        .target(
            name: "TicketlogStreamChat",
            dependencies: [
                "Ticketlog", "TicketlogServer", "StreamChatSync",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The log in a PostgreSQL database (issue 19): the storage boundary's second backend.
        .target(
            name: "TicketlogPostgres",
            dependencies: [
                "Ticketlog",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Mirrors the log to Stream Chat (AsyncHTTPClient) and back (webhooks, backfill).
        .target(
            name: "StreamChatSync",
            dependencies: [
                "Ticketlog",
                "CZlib",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ticketlog",
            dependencies: [
                "Ticketlog",
                "TicketlogServer",
                "StreamChatSync",
                "TicketlogStreamChat",
                "TicketlogPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Seeded, realistic support-desk conversations for demos, tests and benchmarks.
        .target(
            name: "Synthetic",
            dependencies: ["Ticketlog"],
            path: "Tools/Synthetic"
        ),
        .executableTarget(
            name: "ticketlog-generate",
            dependencies: [
                "Synthetic", "Ticketlog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/Generate"
        ),
        // A Stream Chat stand-in built from the documented protocol, for the sync tests.
        .target(
            name: "StreamChatEmulator",
            dependencies: [
                "Ticketlog",
                "CZlib",
                "Synthetic",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tools/StreamEmulator"
        ),
        .executableTarget(
            name: "stream-emulator",
            dependencies: [
                "StreamChatEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/StreamEmulatorServer"
        ),
        // `make bench`: the log against a C baseline and Python eventsourcing (issue 6).
        .executableTarget(
            name: "ticketlog-bench",
            dependencies: [
                "Synthetic", "Ticketlog", "TicketlogPostgres", "ToolSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The HTTP row's ceiling: a bare route on the same framework.
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tools/BenchHarness"
        ),
        // The bench's instruction counts (valgrind cannot run Swift's async main).
        .executableTarget(
            name: "ticketlog-instructions",
            dependencies: ["Synthetic", "Ticketlog"],
            path: "Tools/Instructions"
        ),
        // Starting `ticketlog serve` from outside, for the bench's HTTP row and the load test.
        .target(name: "ToolSupport", path: "Tools/ToolSupport"),
        // Mixed load on `ticketlog serve` (issue 7).
        .executableTarget(
            name: "ticketlog-load",
            dependencies: [
                "Ticketlog", "TicketlogPostgres", "ToolSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tools/LoadTest"
        ),
        // Crash safety (issue 7): a writer killed with SIGKILL at random moments, checked after
        // each restart.
        .executableTarget(
            name: "ticketlog-crashtest",
            dependencies: [
                "Synthetic", "Ticketlog", "ToolSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/CrashTest"
        ),
        .testTarget(
            name: "TicketlogTests",
            // `ticketlog` so that the CLI is built before its end-to-end tests run it.
            dependencies: [
                "Ticketlog", "TicketlogServer", "StreamChatSync", "TicketlogStreamChat", "StreamChatEmulator",
                "Synthetic", "TicketlogPostgres", "CSQLiteWAL",
                "ticketlog",
                "ticketlog-generate", "stream-emulator", "ticketlog-crashtest", "ticketlog-load", "ToolSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ]
)

// Fuzzing (issue 7): `make fuzz` builds with TICKETLOG_FUZZ=1 in `.build-fuzz`, with
// `-sanitize=fuzzer,address -parse-as-library` on every Swift target, and runs these libFuzzer
// targets (each defines `LLVMFuzzerTestOneInput`; libFuzzer provides `main`).
if Context.environment["TICKETLOG_FUZZ"] == "1" {
    package.targets += [
        .target(name: "FuzzSupport", path: "Fuzz/Support"),
        .executableTarget(
            name: "fuzz-event-decoder", dependencies: ["Ticketlog", "FuzzSupport"], path: "Fuzz/EventDecoder"),
        .executableTarget(
            name: "fuzz-webhook", dependencies: ["Ticketlog", "StreamChatSync", "FuzzSupport"], path: "Fuzz/Webhook"),
        .executableTarget(
            name: "fuzz-http-request",
            dependencies: [
                "Ticketlog", "TicketlogServer", "FuzzSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Fuzz/HTTPRequest"),
    ]
}
