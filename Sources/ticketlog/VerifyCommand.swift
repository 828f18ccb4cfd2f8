import ArgumentParser
import Foundation
import Ticketlog
import TicketlogPostgres

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

            The chain proves nothing against someone who can write the file: they can change \
            an event and recompute every later hash. With --checkpoint and --key, the log is also \
            checked against a signed checkpoint kept elsewhere (ticketlog checkpoint): the Merkle \
            tree over its first events is recomputed from the events themselves and compared \
            with the signed root; a log cut back below the checkpoint, or changed anywhere in \
            it, fails, with the range of positions where the first difference is.

            The log may be in PostgreSQL (--database postgres://user:password@host:port/db): \
            the same chain check and --checkpoint run there on one snapshot; --projections \
            rebuilds the projections in a scratch schema (dropped afterwards) while the nodes \
            go on appending.

            Exit status: 0 when the log verifies, 1 when it does not (or a projection differs \
            from its rebuild, or it does not match the checkpoint), 2 when the file cannot be \
            opened (missing, not a ticketlog log, newer format) or the checkpoint or key cannot \
            be used.
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

    @Option(help: "A signed checkpoint kept outside the log (a file with the signed note).")
    var checkpoint: String?

    @Option(help: "With --checkpoint: the verifier key that signed it.")
    var key: String?

    func validate() throws {
        if (checkpoint == nil) != (key == nil) {
            throw ValidationError("--checkpoint and --key go together")
        }
        if let anchor, ChainAnchor(anchor) == nil {
            throw ValidationError(
                "--anchor '\(anchor)' is not POSITION:HASH (a position of 1 or more, a colon, 64 hex digits)")
        }
    }

    func run() async throws {
        var signed: (checkpoint: Checkpoint, verifier: NoteVerifier)?
        if let checkpoint, let key {
            let verifier = try ProofFiles.verifier(key)
            let note = try ProofFiles.text(checkpoint, what: "checkpoint")
            signed = (try ProofFiles.parse(checkpoint) { try Checkpoint.open(note, verifier: verifier) }, verifier)
        }
        let report: VerificationReport
        var comparison: CheckpointComparison?
        var check: ProjectionCheck?
        if PostgresLocation.isURL(log.database) {
            (report, comparison) = try await verifyOnPostgres(
                anchor: anchor.flatMap(ChainAnchor.init), signed: signed)
        } else {
            let store = try log.open(readOnly: true)
            let progress = Terminal.progress(label: "verifying")
            report = try await store.verify(anchor: anchor.flatMap(ChainAnchor.init)) { update in
                progress.update(done: update.eventsChecked, total: update.totalEvents)
            }
            progress.finish()
            (comparison, check) = try await checks(of: store, report: report, signed: signed)
        }
        for warning in report.warnings { Terminal.error("warning: \(warning)") }
        try show(report: report, comparison: comparison, check: check)
        if !report.isValid || check?.holds == false || comparison?.holds == false { throw ExitCode(1) }
    }

    /// `--checkpoint` and `--projections` on a file log.
    private func checks(
        of store: EventStore, report: VerificationReport, signed: (checkpoint: Checkpoint, verifier: NoteVerifier)?
    ) async throws -> (CheckpointComparison?, ProjectionCheck?) {
        var comparison: CheckpointComparison?
        if let signed {
            let progress = Terminal.progress(label: "checking against the checkpoint")
            comparison = try await store.verify(against: signed.checkpoint, verifier: signed.verifier) { update in
                progress.update(done: update.eventsChecked, total: update.totalEvents)
            }
            progress.finish()
        }
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
        return (comparison, check)
    }

    private func show(report: VerificationReport, comparison: CheckpointComparison?, check: ProjectionCheck?) throws {
        if json {
            print(try VerifyJSON(report: report, projections: check, checkpoint: comparison).jsonLine())
            return
        }
        if let failure = report.failure {
            Terminal.line("FAILED at position \(failure.position): \(failure.kind.rawValue): \(failure.detail)")
            Terminal.line("\(report.eventsVerified) events verified before it")
        } else {
            Terminal.line(
                "OK: \(report.eventsVerified) events, head position \(report.headPosition), head hash \(report.headHash)"
            )
        }
        if let comparison { Self.report(comparison) }
        if let check { Self.report(check) }
    }

    /// The chain check of a log in PostgreSQL (the same verifier, above the storage boundary).
    /// The chain and `--checkpoint` on PostgreSQL, the projections left as they are (a damaged
    /// log must still open to be verified), an encrypted log opened without its key.
    private func verifyOnPostgres(
        anchor: ChainAnchor?, signed: (checkpoint: Checkpoint, verifier: NoteVerifier)?
    ) async throws -> (VerificationReport, CheckpointComparison?) {
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        do {
            return try await EventStore.using(
                try PostgresLocation(url: log.database), createIfMissing: false, configuration: configuration,
                catchUpProjections: false
            ) {
                postgres in
                let progress = Terminal.progress(label: "verifying")
                let report = try await postgres.verify(anchor: anchor) { update in
                    progress.update(done: update.eventsChecked, total: update.totalEvents)
                }
                progress.finish()
                let (comparison, _) = try await checks(of: postgres, report: report, signed: signed)
                return (report, comparison)
            }
        } catch let failure as EventStoreError {
            Terminal.error(failure.message)
            throw ExitCode(2)
        }
    }

    private static func report(_ comparison: CheckpointComparison) {
        let size = comparison.checkpoint.size
        switch comparison.outcome {
        case .matches:
            Terminal.line(
                "checkpoint: OK, the first \(size) events have the root that \(comparison.checkpoint.origin) signed")
        case .cutBack(let events):
            Terminal.line(
                "CHECKPOINT FAILED at position \(events + 1): the log was cut back: it holds \(events) events in sequence, the checkpoint signed \(size)"
            )
        case .differs(let range):
            let span = range.count > 1 ? "\(range.lowerBound)–\(range.upperBound)" : "\(range.lowerBound)"
            Terminal.line(
                "CHECKPOINT FAILED at position \(span): the log's first \(size) events no longer have the signed root (\(comparison.detail))"
            )
        }
    }

    private static func report(_ check: ProjectionCheck) {
        for projection in check.projections where projection.checkpoint != check.headPosition {
            Terminal.line(
                "PROJECTION BEHIND: \(projection.name) has applied up to position \(projection.checkpoint) of \(check.headPosition)"
            )
        }
        for table in check.tables {
            if !table.checked {
                Terminal.line(
                    "projection table \(table.name): NOT CHECKED (it indexes encrypted text: give the master key to check it)"
                )
            } else if table.matches {
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
    enum Key: String, CodingKey { case projections, checkpoint }
    let report: VerificationReport
    let projections: ProjectionCheck?
    let checkpoint: CheckpointComparison?

    /// `verify --json --checkpoint`: whether it holds, the size, and where the first difference is.
    struct CheckpointJSON: Encodable {
        var ok: Bool
        var size: Int64
        var firstDifferingPosition: Int64?
        var lastPossiblePosition: Int64?
        var detail: String
    }

    func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        if let projections {
            try container.encode(projections, forKey: .projections)
        }
        if let checkpoint {
            var json = CheckpointJSON(ok: checkpoint.holds, size: checkpoint.checkpoint.size, detail: checkpoint.detail)
            switch checkpoint.outcome {
            case .matches: break
            case .cutBack(let events):
                json.firstDifferingPosition = events + 1
                json.lastPossiblePosition = events + 1
            case .differs(let range):
                json.firstDifferingPosition = range.lowerBound
                json.lastPossiblePosition = range.upperBound
            }
            try container.encode(json, forKey: .checkpoint)
        }
    }
}
