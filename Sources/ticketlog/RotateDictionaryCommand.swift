import ArgumentParser
import Ticketlog

struct RotateDictionaryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-dictionary",
        abstract: "Make a new LZ4 dictionary from a sample of the log; new events use it.",
        discussion:
            "Events written before keep their dictionary and stay readable. Useful after the kind of conversations changed. On PostgreSQL, the serving nodes go on with the dictionary they have until they restart."
    )

    @OptionGroup var log: LogOptions

    func run() async throws {
        let store = try await log.openOnEitherBackend()
        if let id = try await store.rotateDictionary() {
            Terminal.line("dictionary \(id) is now used for new events")
        } else {
            Terminal.line("the log is empty: nothing to sample, no dictionary made")
        }
    }
}
