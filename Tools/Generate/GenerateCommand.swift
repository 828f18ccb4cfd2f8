import ArgumentParser
import Foundation
import Synthetic
import Ticketlog

@main
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticketlog-generate",
        abstract: "Generate realistic, seeded support-desk conversations.",
        discussion: """
            Tickets are opened by brands for creators, assigned to agents, discussed (about 80% \
            of events are messages of 20-600 characters), delivered, reviewed and resolved, \
            interleaved as on a real desk. The same --seed gives the same events, ids included.

            Writes NDJSON (one event per line, the format `ticketlog import` reads) to --out, \
            or appends straight into a log with --database.

            Examples:
              ticketlog-generate --tickets 2000 --out desk.ndjson
              ticketlog-generate --tickets 10000 --messages 80 --database big.sqlite
            """
    )

    @Option(help: "How many tickets.")
    var tickets: Int = 1_000

    @Option(help: "Mean messages per ticket.")
    var messages: Int = 80

    @Option(help: "The seed: the same seed gives the same events.")
    var seed: UInt64 = 1

    @Option(help: "The first ticket's number (ticket-N); the others follow it.")
    var firstTicket: Int = 0

    @Option(help: "Write NDJSON to this file ('-' for standard output).")
    var out: String?

    @Option(help: "Append the events to this log (created when missing), with NORMAL durability.")
    var database: String?

    func validate() throws {
        if (out == nil) == (database == nil) { throw ValidationError("give exactly one of --out and --database") }
        if tickets < 1 { throw ValidationError("--tickets must be at least 1") }
        if messages < 1 { throw ValidationError("--messages must be at least 1") }
        if firstTicket < 0 || firstTicket > 1_000_000_000_000 - tickets {
            throw ValidationError("--first-ticket must be 0 or more, and the last ticket's number under 10^12")
        }
    }

    func run() async throws {
        let desk = SyntheticDesk(
            .init(tickets: tickets, seed: seed, meanMessagesPerTicket: messages, firstTicket: firstTicket))
        let estimate = Int64(tickets * (messages * 100 / 86 + 8))
        let interactive = isatty(STDERR_FILENO) == 1 && out != "-"
        var written: Int64 = 0
        var alreadyStored = 0
        var lastDraw = ContinuousClock.now
        func progress() {
            guard interactive, ContinuousClock.now - lastDraw > .milliseconds(100) else { return }
            lastDraw = .now
            FileHandle.standardError.write(
                Data("\rgenerating: \(written) events (~\(min(99, written * 100 / max(1, estimate)))%)".utf8))
        }
        if let out {
            let handle: FileHandle
            if out == "-" {
                handle = .standardOutput
            } else {
                guard FileManager.default.createFile(atPath: out, contents: nil) else {
                    throw ValidationError("cannot create \(out)")
                }
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            }
            var buffer: [UInt8] = []
            for item in desk.events() {
                buffer += try EventLine(stream: item.stream, event: item.event).json()
                buffer.append(UInt8(ascii: "\n"))
                written += 1
                if buffer.count > 1 << 20 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                    progress()
                }
            }
            try handle.write(contentsOf: buffer)
            try handle.close()
        } else if let database {
            var configuration = EventStore.Configuration()
            configuration.durability = .normal
            let store = try EventStore(path: database, configuration: configuration)
            var batch: [SyntheticDesk.Item] = []
            for item in desk.events() {
                batch.append(item)
                if batch.count == 2_000 {
                    alreadyStored += try await SyntheticDesk.append(batch, to: store)
                    written += Int64(batch.count)
                    batch.removeAll(keepingCapacity: true)
                    progress()
                }
            }
            alreadyStored += try await SyntheticDesk.append(batch, to: store)
            written += Int64(batch.count)
            await store.close()
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(
            Data(
                ("generated \(written) events over \(tickets) tickets (seed \(seed))"
                    + (alreadyStored > 0 ? "; \(alreadyStored) of them were in the log already\n" : "\n")).utf8))
    }
}
