import Foundation
import ToolSupport

/// Instructions per event under valgrind's callgrind (issue 14): unlike seconds, the same on a
/// quiet machine and a busy one, so a regression shows even when timings wobble. Each count is
/// a run of `ticketlog-instructions` on a small corpus, less a run that does everything but the
/// work (generating the corpus; opening the log).
///
/// The program is copied and stripped first: valgrind 3.19 (Debian 12) gives up on the DWARF 5
/// debug information Swift 6 writes.
enum Instructions {
    struct Counts {
        var events: Int
        var append: Double
        /// The same append with a master key (issue 17's sealing).
        var appendEncrypted: Double
        var rebuild: Double
        var export: Double
    }

    static func measure(program: String, valgrind: String, work: String, events: Int) throws -> Counts {
        func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }
        let stripped = path("ticketlog-instructions")
        try? FileManager.default.removeItem(atPath: stripped)
        try FileManager.default.copyItem(atPath: program, toPath: stripped)
        _ = try LocalServer.run("/usr/bin/env", ["strip", stripped])
        let database = path("instructions.sqlite")
        func count(_ kind: String, database: String = database) throws -> Double {
            let output = path("callgrind-\(kind).out")
            try? FileManager.default.removeItem(atPath: output)
            _ = try LocalServer.run(
                valgrind,
                [
                    "--tool=callgrind", "--callgrind-out-file=\(output)", stripped, kind, database, String(events),
                ])
            let text = try String(contentsOfFile: output, encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
                if let value = Double(line.split(separator: " ").last ?? "") { return value }
            }
            throw ToolError("no instruction total in \(output)")
        }
        let corpus = try count("corpus")
        let appendEncrypted = try count("append-encrypted", database: path("instructions-encrypted.sqlite"))
        let append = try count("append")
        let open = try count("open")
        let rebuild = try count("rebuild")
        let export = try count("export")
        let n = Double(events)
        return Counts(
            events: events, append: (append - corpus) / n, appendEncrypted: (appendEncrypted - corpus) / n,
            rebuild: (rebuild - open) / n, export: (export - open) / n)
    }
}
