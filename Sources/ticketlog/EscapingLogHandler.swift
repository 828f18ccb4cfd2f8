import Logging
import Ticketlog
import TicketlogServer

/// The process's log output (standard error): every message and metadata value goes through
/// ``TextRule/escaped(_:)`` first. Log lines quote what callers and Stream sent (user ids,
/// reasons, webhook ids); an operator reading them in a terminal must not get a forged line or an
/// escape sequence from them.
///
/// Metadata is kept as set and escaped when a line is written, not when it is set: a server
/// sets request metadata (Hummingbird's request id, the caller) on every request, and at the
/// usual `warning` level almost none of it is ever written (escaping it eagerly, description and
/// Unicode categories included, was 4.8% of a `GET …/messages`' server time). The inner handler
/// gets every line's metadata — the handler's, then the provider's, then the call's, each
/// overriding the one before, as swift-log's own handler merges them — all escaped, and holds
/// none of its own.
struct EscapingLogHandler: LogHandler {
    private var inner: StreamLogHandler
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        inner = StreamLogHandler.standardError(label: label, metadataProvider: nil)
        self.metadataProvider = metadataProvider
    }

    /// Makes this the handler of every `Logger` the process creates from now on (ours and the
    /// libraries': Hummingbird, AsyncHTTPClient), with the id of the request being handled on
    /// every line written while one is (`ticketlog.request`). Once per process; later calls do
    /// nothing.
    static func bootstrap() {
        _ = bootstrapOnce
    }

    private static let bootstrapOnce: Void = LoggingSystem.bootstrap(
        EscapingLogHandler.init(label:metadataProvider:), metadataProvider: TicketlogServer.requestMetadataProvider)

    func log(event: LogEvent) {
        inner.log(event: written(event))
    }

    /// `event` as the inner handler writes it: the message escaped, and the metadata of the
    /// handler, its provider and the call merged (the call's wins, then the provider's) and
    /// escaped.
    func written(_ event: LogEvent) -> LogEvent {
        var event = event
        event.message = "\(TextRule.escaped(event.message.description))"
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        event.metadata = merged.isEmpty ? nil : Self.escaped(merged)
        return event
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    static func escaped(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.mapValues(escaped)
    }

    static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(TextRule.escaped(text))
        case .stringConvertible(let convertible): .string(TextRule.escaped(convertible.description))
        case .array(let values): .array(values.map(escaped))
        case .dictionary(let dictionary): .dictionary(escaped(dictionary))
        }
    }
}

extension Logger {
    /// A logger of this process (stderr, escaped, with request ids), at `level`: for the
    /// long-running commands (`serve`, `sync`), which pass it to every part they open.
    static func process(label: String, level: Logger.Level = .info) -> Logger {
        EscapingLogHandler.bootstrap()
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
