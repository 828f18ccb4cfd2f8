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
              damaged      the file's pages are damaged: SQLite cannot read on from here

            With --projections, also checks that the projections (membership, messages, ticket \
            summaries; the audit trail is the events table itself) are what the events say: a copy of the file is rebuilt from \
            its events in the temporary directory and compared table by table (about a minute \
            per million events; the log itself is not changed).

            Exit status: 0 when the log verifies, 1 when it does not (or a projection differs \
            from its rebuild), 2 when the file cannot be opened (missing, not a ticketlog log, \
            newer format).
            """
    )

    @OptionGroup var log: LogOptions

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @Flag(help: "Also rebuild the projections of a copy from the events and compare them with the log's.")
    var projections = false

    @Option(
        help: ArgumentHelp(
            "A head verify printed earlier, POSITION:HASH: the log must still reach it with that hash.",
            discussion:
                "Without an anchor, a log cut back to an earlier consistent state (a -wal file deleted after a crash, an old copy) verifies as that state."
        ))
    var anchor: String?

    func validate() throws {
        if let anchor, ChainAnchor(anchor) == nil {
            throw ValidationError(
                "--anchor '\(anchor)' is not POSITION:HASH (a position of 1 or more, a colon, 64 hex digits)")
        }
    }

    func run() async throws {
        let store = try log.open(readOnly: true)
        let progress = Terminal.progress(label: "verifying")
        let report = try await store.verify(anchor: anchor.flatMap(ChainAnchor.init)) { update in
            progress.update(done: update.eventsChecked, total: update.totalEvents)
        }
        progress.finish()
        for warning in report.warnings { Terminal.error("warning: \(warning)") }
        var check: ProjectionCheck?
        if projections, report.isValid {
            Terminal.status("checking projections: rebuilding a copy from the events")
            do {
                check = try await store.checkProjections()
            } catch let error as EventStoreError {
                Terminal.line("PROJECTIONS NOT CHECKED: \(error.message)")
                throw ExitCode(1)
            }
        }
        if json {
            print(try VerifyJSON(report: report, projections: check).jsonLine())
        } else {
            if let failure = report.failure {
                Terminal.line("FAILED at position \(failure.position): \(failure.kind.rawValue): \(failure.detail)")
                Terminal.line("\(report.eventsVerified) events verified before it")
            } else {
                Terminal.line(
                    "OK: \(report.eventsVerified) events, head position \(report.headPosition), head hash \(report.headHash)"
                )
            }
            if let check { Self.report(check) }
        }
        if !report.isValid || check?.holds == false { throw ExitCode(1) }
    }

    private static func report(_ check: ProjectionCheck) {
        for projection in check.projections where projection.checkpoint != check.headPosition {
            Terminal.line(
                "PROJECTION BEHIND: \(projection.name) has applied up to position \(projection.checkpoint) of \(check.headPosition)"
            )
        }
        for table in check.tables {
            if table.matches {
                Terminal.line("projection table \(table.name): OK (\(table.rows) rows equal their rebuild)")
            } else {
                Terminal.line(
                    "PROJECTION DIFFERS: \(table.name) holds \(table.rows) rows; rebuilt from the events it holds \(table.rebuiltRows) (or the rows differ)"
                )
            }
        }
    }
}

/// `verify --json`: the report's fields, and with `--projections` a `projections` object.
private struct VerifyJSON: Encodable {
    enum Key: String, CodingKey { case projections }
    let report: VerificationReport
    let projections: ProjectionCheck?

    func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        if let projections {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(projections, forKey: .projections)
        }
    }
}
