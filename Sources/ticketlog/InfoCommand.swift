import ArgumentParser
import Foundation
import Ticketlog

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the size and content of a log: events, streams, dictionaries, bytes per event."
    )

    @OptionGroup var log: LogOptions

    func run() async throws {
        let store = try log.open()
        let head = try await store.headPosition()
        let usage = try await store.dictionaryUsage()
        let bytes = ["", "-wal"].compactMap { suffix in
            (try? FileManager.default.attributesOfItem(atPath: log.database + suffix)[.size] as? Int64) ?? nil
        }.reduce(0, +)
        print("log:           \(log.database)")
        print("events:        \(head)")
        print("file size:     \(bytes) bytes (with WAL)" + (head > 0 ? ", \(bytes / head) bytes per event" : ""))
        for (id, events) in usage {
            print(id == 0 ? "uncompressed:  \(events) events" : "dictionary \(id):  \(events) events")
        }
    }
}
