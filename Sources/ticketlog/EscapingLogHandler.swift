import Logging
import Ticketlog
import TicketlogServer

/// The process's log output (standard error): every message and metadata value goes through
/// ``TextRule/escaped(_:)`` first. Log lines quote what callers and Stream sent (user ids,
/// reasons, webhook ids); an operator reading them in a terminal must not get a forged line or an
/// escape sequence from them.
struct EscapingLogHandler: LogHandler {
    private var inner: StreamLogHandler

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        inner = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
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
        var event = event
        event.message = "\(TextRule.escaped(event.message.description))"
        event.metadata = event.metadata.map(Self.escaped)
        inner.log(event: event)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.escaped) }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = Self.escaped(newValue) }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
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
