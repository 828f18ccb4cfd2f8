import ArgumentParser
import Ticketlog

struct ReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Print events as NDJSON, one per line.",
        discussion: """
            Without --stream, reads the whole log in position order from --from. With --stream, \
            reads one ticket's stream by version. --follow keeps printing new events as they \
            are appended (whole log only) until interrupted.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "A stream id such as ticket-42; reads that stream only.")
    var stream: String?

    @Option(help: "First position (whole log) or version (--stream) to print.")
    var from: Int64?

    @Flag(help: "Read a stream newest first.")
    var backwards = false

    @Option(help: "Print at most this many events.")
    var limit: Int = .max

    @Flag(help: "After the stored events, wait for new ones and print them as they come.")
    var follow = false

    func validate() throws {
        if follow && stream != nil { throw ValidationError("--follow reads the whole log; drop --stream") }
        if backwards && stream == nil { throw ValidationError("--backwards needs --stream") }
        if limit < 0 { throw ValidationError("--limit must not be negative") }
        if let stream, StreamID(rawValue: stream) == nil {
            throw ValidationError("'\(stream)' is not a stream id (1-64 characters of a-z, A-Z, 0-9, _ and -)")
        }
    }

    func run() async throws {
        let store = try await log.openOnEitherBackend(readOnly: true)
        var printed = 0
        if let stream = stream.flatMap(StreamID.init(rawValue:)) {
            var next = from
            while printed < limit {
                let page = try await store.readStream(
                    stream, from: next, direction: backwards ? .backwards : .forwards,
                    limit: min(1_000, limit - printed))
                guard let last = page.last else { break }
                for event in page { print(try event.jsonLine()) }
                printed += page.count
                next = backwards ? last.version - 1 : last.version + 1
                if let next, next < 1 { break }
            }
        } else if follow {
            for try await event in store.subscribe(from: from ?? 1) {
                print(try event.jsonLine())
                printed += 1
                if printed >= limit { break }
            }
        } else {
            var next = from ?? 1
            while printed < limit {
                let page = try await store.readAll(from: next, limit: min(1_000, limit - printed))
                guard let last = page.last else { break }
                for event in page { print(try event.jsonLine()) }
                printed += page.count
                next = last.position + 1
            }
        }
    }
}
