import Foundation
import Logging
import Synchronization
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
/// Unicode categories included, was 4.8% of a `GET …/messages`' server time). A line gets the
/// handler's metadata, then the provider's, then the call's, each overriding the one before (and
/// the error's, `error.message` and `error.type`), all escaped.
///
/// Lines are spelled as swift-log's `StreamLogHandler` spells them (`2026-12-04T05:01:02+0000
/// info ticketlog: key=value [source] message`, keys sorted) and written with one `write` each,
/// under a lock, so lines from several threads never interleave. The time is spelled once a
/// second: `StreamLogHandler` calls `localtime` (which reads the time zone file again) for every
/// line, a third of its cost; with a line per request at `info`, the whole handler was a sixth of
/// the server's request-handling time under a `POST` load.
struct EscapingLogHandler: LogHandler {
    private let label: String
    private let output: LogOutput
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        self.init(label: label, metadataProvider: metadataProvider, output: .standardError)
    }

    init(label: String, metadataProvider: Logger.MetadataProvider?, output: LogOutput) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
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
        let event = written(event)
        output.write(line(event, timestamp: output.timestamp()))
    }

    /// `event` as it is written: the message escaped, and the metadata of the handler, its
    /// provider, the call and the error merged (each later one wins) and escaped.
    func written(_ event: LogEvent) -> LogEvent {
        var event = event
        event.message = "\(TextRule.escaped(event.message.description))"
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        event.metadata = merged.isEmpty ? nil : Self.escaped(merged)
        return event
    }

    /// The line of a written event (``written(_:)``), as `StreamLogHandler` spells it.
    func line(_ event: LogEvent, timestamp: String) -> String {
        var line = "\(timestamp) \(event.level)"
        if !label.isEmpty { line += " \(label)" }
        line += ":"
        if let metadata = event.metadata {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        }
        line += " [\(event.source)] \(event.message)\n"
        return line
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
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

/// Where the process's log lines go: a file descriptor (standard error), one `write` per line
/// under a lock, and the time spelled once a second (local time, `%Y-%m-%dT%H:%M:%S%z`).
final class LogOutput: Sendable {
    static let standardError = LogOutput(descriptor: STDERR_FILENO)

    private let descriptor: Int32
    private let timestampCache = Mutex<(second: Int, timestamp: String)>((-1, ""))
    private let writing = Mutex(())

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// The current time as lines spell it, spelled again only when the second changed.
    func timestamp() -> String {
        var now = time(nil)
        return timestampCache.withLock { cache in
            if cache.second != now { cache = (now, Self.timestamp(&now)) }
            return cache.timestamp
        }
    }

    /// Writes `line` whole (lines of other threads come before or after it). A failed write is
    /// dropped: there is nowhere left to report it.
    func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            writing.withLock { _ in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }
    }

    static func timestamp(_ time: inout time_t) -> String {
        var parts = tm()
        guard localtime_r(&time, &parts) != nil else { return "<unknown>" }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let count = strftime(buffer.baseAddress!, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count), as: UTF8.self)
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
