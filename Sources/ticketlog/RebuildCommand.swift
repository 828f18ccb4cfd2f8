import ArgumentParser
import Ticketlog

struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild projections from the first event.",
        discussion: """
            Drops the rows of the named projections (all of them by default) and applies every \
            event again, in batches. The result is the same as keeping them up incrementally. \
            Appends by other processes may continue meanwhile.

            On a file of 20,000 events or more, message_history's search index is built on a \
            second thread in a scratch file in the temporary directory ($TMPDIR; about 33 MB \
            per million events, removed at the end) and copied into the log when the rest \
            is done.

            Projections: \(EventStore.projectionNames.joined(separator: ", ")).
            """
    )

    @OptionGroup var log: LogOptions

    @Option(name: .customLong("projection"), help: "A projection to rebuild; repeat for several. Default: all.")
    var projections: [String] = []

    func validate() throws {
        for name in projections where !EventStore.projectionNames.contains(name) {
            throw ValidationError(
                "no projection named '\(name)'; choose from \(EventStore.projectionNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend()
        let head = try await store.headPosition()
        let progress = Terminal.progress(label: "rebuilding")
        let clock = ContinuousClock()
        let elapsed = try await clock.measure {
            try await store.rebuildProjections(projections.isEmpty ? nil : projections) { step in
                progress.update(done: step.position, total: step.headPosition)
            }
        }
        progress.finish()
        let names = projections.isEmpty ? EventStore.projectionNames : projections
        Terminal.line(
            "rebuilt \(names.joined(separator: ", ")) from \(head) events in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds])))"
        )
    }
}
