import ArgumentParser
import Foundation
import Ticketlog

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that nothing in the log was altered.",
        discussion: """
            Recomputes the SHA-256 hash chain over every event, in position order, and checks \
            that each event decodes, that positions and stream versions have no gaps, and that \
            the log ends where its last commit left it.

            Prints OK with the number of events and the head hash, or the first bad position \
            and what is wrong there:
              edited       the event's content or columns differ from what was chained
              missing      events were removed (a gap, or the newest events are gone)
              reordered    events were moved to other positions
              undecodable  the event no longer decompresses or parses

            Exit status: 0 when the log verifies, 1 when it does not, 2 when the file cannot \
            be opened (missing, not a ticketlog log, newer format).
            """
    )

    @OptionGroup var log: LogOptions

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func run() async throws {
        let store = try log.open(readOnly: true)
        let progress = Terminal.progress(label: "verifying")
        let report = try await store.verify { update in
            progress.update(done: update.eventsChecked, total: update.totalEvents)
        }
        progress.finish()
        for warning in report.warnings { Terminal.error("warning: \(warning)") }
        if json {
            print(try report.jsonLine())
        } else if let failure = report.failure {
            print("FAILED at position \(failure.position): \(failure.kind.rawValue): \(failure.detail)")
            print("\(report.eventsVerified) events verified before it")
        } else {
            print("OK: \(report.eventsVerified) events, head position \(report.headPosition), head hash \(report.headHash)")
        }
        if !report.isValid { throw ExitCode(1) }
    }
}
