import ArgumentParser
import Foundation
import Ticketlog
import TicketlogPostgres

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show what a log holds: events by type, tickets, sizes, compression.",
        discussion: """
            Bytes per event count the events table and its indexes (the log itself) and, \
            separately, the whole file with projections and WAL. The compression ratio is \
            uncompressed canonical JSON over stored bodies. Content says whether personal content \
            is encrypted (and can be erased) or stored in plaintext.
            """
    )

    @OptionGroup var log: LogOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        let stats = try await store.statistics()
        let encryption = try await store.contentEncryption()
        if json {
            var object: [String: Any] = [
                "events": stats.events, "tickets": stats.tickets, "fileBytes": stats.fileBytes,
                "eventBytes": stats.eventBytes, "projectionBytes": stats.projectionBytes,
                "rawBodyBytes": stats.rawBodyBytes, "storedBodyBytes": stats.storedBodyBytes,
                "compressionRatio": stats.compressionRatio, "eventBytesPerEvent": stats.eventBytesPerEvent,
                "fileBytesPerEvent": stats.fileBytesPerEvent, "uncompressedEvents": stats.uncompressedEvents,
                "dictionaries": stats.dictionaries,
            ]
            object["contentEncryption"] =
                encryption.map {
                    [
                        "masterKeyFingerprint": $0.masterKeyFingerprint, "sealedFromPosition": $0.sealedFromPosition,
                        "contentKeys": $0.contentKeys, "erasedKeys": $0.erasedKeys,
                    ] as [String: Any]
                } ?? NSNull()
            object["eventsByType"] = Dictionary(uniqueKeysWithValues: stats.eventsByType.map { ($0.type, $0.count) })
            let data = try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        Terminal.line("log:               \(log.displayName)")
        Terminal.line("events:            \(stats.events)")
        Terminal.line("tickets:           \(stats.tickets)")
        for (type, count) in stats.eventsByType {
            let share = stats.events > 0 ? Double(count) * 100 / Double(stats.events) : 0
            Terminal.line(
                "  \(type.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(count).leftPadded(10))  \(String(format: "%5.1f", share))%"
            )
        }
        let whole = PostgresLocation.isURL(log.database) ? "the whole database" : "with projections and WAL"
        Terminal.line(
            "file:              \(megabytes(stats.fileBytes)) (\(String(format: "%.0f", stats.fileBytesPerEvent)) B/event, \(whole))"
        )
        Terminal.line(
            "events + indexes:  \(megabytes(stats.eventBytes)) (\(String(format: "%.0f", stats.eventBytesPerEvent)) B/event)"
        )
        Terminal.line("projections:       \(megabytes(stats.projectionBytes))")
        Terminal.line(
            "bodies:            \(megabytes(stats.rawBodyBytes)) JSON without the row columns -> \(megabytes(stats.storedBodyBytes)) stored, ratio \(String(format: "%.2f", stats.compressionRatio))"
        )
        Terminal.line(
            "dictionaries:      \(stats.dictionaries) (\(stats.uncompressedEvents) events stored uncompressed)")
        if let encryption {
            Terminal.line(
                "content:           encrypted from position \(encryption.sealedFromPosition) (master key \(encryption.masterKeyFingerprint)), \(encryption.contentKeys) content keys, \(encryption.erasedKeys) erased"
            )
        } else {
            Terminal.line("content:           plaintext (never given a master key: nothing can be erased by key)")
        }
    }

    private func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
