import Foundation

/// Every row of one run, and the targets of issue 14 as ratios measured in that run.
struct Report {
    var events: Int
    var rawJSONBytes = 0
    var cBriefed: [String: Double] = [:]
    var cLimit: [String: Double] = [:]
    var cExact: [String: Double] = [:]
    var cSingleFull: [String: Double] = [:]
    var python: [String: Double] = [:]
    /// Python's replay in each round of target 4 (the first is `python`'s), and the engine's
    /// rebuild, export and verify in the same rounds: the fastest of each are compared.
    var pythonReplays: [Double] = []
    var replayRounds: [(rebuild: Double, export: Double, verify: Double)] = []
    /// The fastest of Python's replays.
    var bestReplay: Double? { pythonReplays.max() ?? python["replay_rate"] }
    /// Python's batched append again in each later round of target 4 (the peer appends before it
    /// replays). Target 1 compares the fastest of these and `python` with the fastest of the
    /// engine's batched appends (``fastestBatched``), as every other ratio row compares.
    var pythonAppends: [[String: Double]] = []
    /// Every batched append of Python's: its first run, then one in each later round.
    var pythonBatchedRuns: [[String: Double]] { [python] + pythonAppends }
    var fastestPython: [String: Double] {
        pythonBatchedRuns.max { ($0["rate"] ?? 0) < ($1["rate"] ?? 0) } ?? python
    }
    /// Every batched append of the engine's: the bench's own, then the plain child runs of the
    /// encryption pairs (the same corpus, append and configuration).
    var batchedRuns: [Rate] { [batched] + encryption.plain }
    var fastestBatched: Rate { batchedRuns.max { $0.perSecond < $1.perSecond } ?? batched }
    var batched = Rate(events: 0, seconds: 0)
    /// Target 2: the events-only append and C-limit, alternating child processes.
    var eventsOnly = PairedMeasurements.Rows()
    var catchUp = Rate(events: 0, seconds: 0)
    var eventBytes: Int64 = 0
    var fileBytes: Int64 = 0
    /// Target 3: 16 concurrent FULL appenders and C's one commit per event, alternating.
    var concurrent = PairedMeasurements.Rows()
    var rebuild: (rate: Rate, peakRSSBytes: Int) = (Rate(events: 0, seconds: 0), 0)
    var export: (rate: Rate, peakRSSBytes: Int) = (Rate(events: 0, seconds: 0), 0)
    var verify: (rate: Rate, peakRSSBytes: Int) = (Rate(events: 0, seconds: 0), 0)
    var latency: (p50: Double, p99: Double) = (0, 0)
    var http: HTTPLoad.Rows?
    var instructions: Instructions.Counts?
    var transparency: TransparencyMeasurements.Rows?
    var encryption = EncryptionMeasurements.Rows()
    var encryptedEventBytes: Int64 = 0
    var erasure = ErasureMeasurements.Rows()
    var search = SearchMeasurements.Rows()
    var postgres: PostgresMeasurements.Rows?

    func markdown() -> String {
        func rate(_ value: Double?) -> String { value.map { String(format: "%.0f", $0) } ?? "–" }
        func ratio(_ a: Double?, _ b: Double?) -> Double { (b ?? 0) > 0 ? (a ?? 0) / b! : 0 }
        func fastest(_ first: Double?, _ more: [Double]) -> Double? { ([first].compactMap { $0 } + more).max() }
        func mib(_ bytes: Int) -> String { String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
        func perEvent(_ bytes: Double?) -> String {
            bytes.map { String(format: "%.0f", $0 / Double(events)) } ?? "–"
        }
        var lines: [String] = []
        lines.append("# ticketlog bench: \(events) events, \(ISO8601DateFormatter().string(from: Date()))")
        lines.append("")
        lines.append(
            "Corpus: synthetic desk, seed 42, \(max(1, events / 100)) tickets, mean event JSON \(rawJSONBytes / max(1, events)) B."
        )
        lines.append("")
        lines.append("| run | events/s | first 10% | last 10% | bytes/event | peak RSS |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        func row(_ name: String, _ values: [String: Double], bytes: Bool = false) {
            lines.append(
                "| \(name) | \(rate(values["rate"])) | \(rate(values["first10"])) | \(rate(values["last10"])) | \(bytes ? perEvent(values["bytes"]) : "") | |"
            )
        }
        row("C-as-briefed (1000/tx, NORMAL, UNIQUE(stream TEXT, version))", cBriefed, bytes: true)
        row("C-limit (no secondary index)", cLimit, bytes: true)
        lines.append(
            "| C-exact in commits (the engine's own rows, every table and index, written again by C, 1000 events' rows per transaction; best of \(encryption.limit.count) runs beside the plain append's) | \(rate(encryption.bestLimit)) | | | | |"
        )
        row("C-exact as a bulk load (the same rows, each table whole in its stored order)", cExact)
        lines.append("| C one commit per event, FULL | \(rate(cSingleFull["rate"])) | | | | |")
        row("Python eventsourcing, batched append", python)
        lines.append(
            "| Python eventsourcing, replay (fastest of \(max(1, pythonReplays.count)) rounds) | \(rate(bestReplay)) | | | | |"
        )
        lines.append(
            "| ticketlog batched append (1000/tx, NORMAL, projections inline) | \(rate(batched.perSecond)) | \(rate(batched.first10)) | \(rate(batched.last10)) | \(perEvent(Double(eventBytes))) events + indexes, \(perEvent(Double(fileBytes))) whole file | |"
        )
        lines.append(
            "| ticketlog batched append, content encrypted (issue 17; best of \(encryption.encrypted.count) child runs) | \(rate(encryption.bestEncrypted?.perSecond)) | \(rate(encryption.bestEncrypted?.first10)) | \(rate(encryption.bestEncrypted?.last10)) | \(perEvent(Double(encryptedEventBytes))) events + indexes | |"
        )
        lines.append(
            "| ticketlog events-only append (projections caught up afterwards; best of \(eventsOnly.engine.count) child runs) | \(rate(eventsOnly.bestEngine?.perSecond)) | \(rate(eventsOnly.bestEngine?.first10)) | \(rate(eventsOnly.bestEngine?.last10)) | | |"
        )
        lines.append("| ticketlog projections caught up after it | \(rate(catchUp.perSecond)) | | | | |")
        lines.append(
            "| ticketlog 16 concurrent single appends, FULL (best of \(concurrent.engine.count) child runs) | \(rate(concurrent.bestEngine?.perSecond)) | | | | |"
        )
        lines.append(
            "| ticketlog rebuild of all projections | \(rate(rebuild.rate.perSecond)) | | | | \(mib(rebuild.peakRSSBytes)) |"
        )
        lines.append("| ticketlog NDJSON export | \(rate(export.rate.perSecond)) | | | | \(mib(export.peakRSSBytes)) |")
        lines.append("| ticketlog verify | \(rate(verify.rate.perSecond)) | | | | \(mib(verify.peakRSSBytes)) |")
        lines.append("| raw event JSON | | | | \(rawJSONBytes / max(1, events)) | |")
        lines.append("")
        lines.append(
            "Batched append against C-exact as a bulk load (each table written whole in its stored order, which no append can do; not a target): \(String(format: "%.2f", ratio(batched.perSecond, cExact["rate"])))×."
        )
        lines.append("")
        lines.append(
            "Targets 2 and 3, alternating child processes (events/s; the fastest of each side compared, the C run at the start included): C-limit \(cLimit["rate"].map { rate($0) } ?? "–") then \(eventsOnly.limit.map { rate($0) }.joined(separator: ", ")), events-only \(eventsOnly.engine.map { rate($0.perSecond) }.joined(separator: ", ")); C one commit per event FULL \(cSingleFull["rate"].map { rate($0) } ?? "–") then \(concurrent.limit.map { rate($0) }.joined(separator: ", ")), 16 concurrent FULL \(concurrent.engine.map { rate($0.perSecond) }.joined(separator: ", "))."
        )
        lines.append("")
        lines.append(
            "Target 1, the fastest of each side (events/s): ticketlog's batched append \(batchedRuns.map { rate($0.perSecond) }.joined(separator: ", ")) (this run's, then the plain child runs of the encryption pairs); Python's \(pythonBatchedRuns.map { rate($0["rate"]) }.joined(separator: ", ")) (its first run, then one in each later round of target 4)."
        )
        lines.append("")
        if !replayRounds.isEmpty {
            lines.append(
                "Target 4's rounds, alternating (events/s): Python replay \(pythonReplays.map { rate($0) }.joined(separator: ", ")); rebuild \(replayRounds.map { rate($0.rebuild) }.joined(separator: ", ")); export \(replayRounds.map { rate($0.export) }.joined(separator: ", ")); verify \(replayRounds.map { rate($0.verify) }.joined(separator: ", "))."
            )
            lines.append("")
        }
        lines.append(
            "Append → subscriber latency (5,000 single appends, NORMAL): p50 \(String(format: "%.2f", latency.p50)) ms, p99 \(String(format: "%.2f", latency.p99)) ms."
        )
        lines.append("")
        if let http {
            lines.append(
                "HTTP, wrk \(http.post.connections) connections, \(http.post.seconds) s each, 100 tickets, release builds, `ticketlog serve` at FULL; \(http.posts.count) rounds of the three runs, the fastest of each shown and compared:"
            )
            lines.append("")
            lines.append("| route | requests/s | p50 | p99 | server CPU µs/request | not 2xx (all rounds) |")
            lines.append("|---|---:|---:|---:|---:|---:|")
            for (name, result, all) in [
                ("ceiling: a bare route on the same framework, same body, nothing stored", http.ceiling, http.ceilings),
                ("`POST /api/chat/tickets/{id}/messages`", http.post, http.posts),
                ("`GET /api/chat/tickets/{id}/messages?limit=50`", http.get, http.gets),
            ] {
                let errors = all.compactMap(\.socketErrors).map { " (\($0))" }.joined()
                lines.append(
                    "| \(name) | \(rate(result.requestsPerSecond)) | \(result.p50) | \(result.p99) | \(String(format: "%.0f", result.cpuMicrosecondsPerRequest)) | \(all.map(\.failures).reduce(0, +))\(errors) |"
                )
            }
            lines.append("")
            lines.append(
                "Rounds (requests/s): ceiling \(http.ceilings.map { rate($0.requestsPerSecond) }.joined(separator: ", ")); `POST` \(http.posts.map { rate($0.requestsPerSecond) }.joined(separator: ", ")) (p99 \(http.posts.map(\.p99).joined(separator: ", "))); `GET` \(http.gets.map { rate($0.requestsPerSecond) }.joined(separator: ", "))."
            )
            lines.append("")
            lines.append(
                "\(http.postResponses) 2xx POST responses in all rounds; \(http.appended) messages in the log afterwards."
            )
        } else {
            lines.append("HTTP rows: not measured (no --server/--wrk).")
        }
        lines.append("")
        if let instructions {
            lines.append(
                "Instructions per event (callgrind, \(instructions.events) events, start-up subtracted): append \(String(format: "%.0f", instructions.append)) (with content encrypted: \(String(format: "%.0f", instructions.appendEncrypted))), rebuild \(String(format: "%.0f", instructions.rebuild)), export \(String(format: "%.0f", instructions.export))."
            )
        } else {
            lines.append("Instructions per event: not measured (no --valgrind).")
        }
        lines.append("")
        if search.queries > 0 {
            lines.append(
                "Search (issue 18), on the appended log: \(search.queries) queries of one or two words from its own messages (a quarter as prefixes), 20 hits each: p50 \(String(format: "%.2f", search.p50Milliseconds)) ms, p99 \(String(format: "%.2f", search.p99Milliseconds)) ms (\(String(format: "%.1f", search.meanHits)) hits on average)."
            )
            lines.append("")
        }
        if erasure.keys > 0 {
            lines.append(
                "Erasure (issue 17), on the encrypted log: \(erasure.subject), who wrote \(erasure.messages) messages, erased in \(String(format: "%.2f", erasure.seconds)) s (\(erasure.keys) content keys; scrubbing the file included). Encrypted append: \(String(format: "%.2f", encryption.ratio))× the plain batched append (goal: ≥ 0.85×, i.e. at most 15% slower), the best of \(encryption.plain.count) alternating child runs each: plain \(encryption.plain.map { rate($0.perSecond) }.joined(separator: ", ")), encrypted \(encryption.encrypted.map { rate($0.perSecond) }.joined(separator: ", ")) events/s; C-exact in commits after each plain run (target 1b) \(encryption.limit.map { rate($0) }.joined(separator: ", ")) events/s."
            )
            lines.append("")
        }
        if let transparency {
            lines.append(
                "Transparency (issue 16), on this log grown to \(transparency.events) events: signing a checkpoint \(String(format: "%.2f", transparency.signMilliseconds)) ms (median of 10, consistency with the previous one checked); an inclusion proof for one event p50 \(String(format: "%.2f", transparency.proofMillisecondsP50)) ms, p99 \(String(format: "%.2f", transparency.proofMillisecondsP99)) ms, \(transparency.proofBytes) B as tlog-proof text; the evidence bundle of a \(transparency.ticketEvents)-event ticket spread over 10,000 events \(String(format: "%.2f", transparency.ticketBundleSeconds)) s, \(transparency.ticketBundleBytes / 1024) KiB; verify --checkpoint \(rate(transparency.verifyAgainstCheckpoint.perSecond)) events/s."
            )
            lines.append("")
            let appendNanoseconds = batched.perSecond > 0 ? 1e9 / batched.perSecond : 0
            lines.append(
                "The tree's work per appended event, measured alone (a leaf hash over the line and a node hash): \(String(format: "%.0f", transparency.treeNanosecondsPerEvent)) ns, \(String(format: "%.1f", 100 * transparency.treeNanosecondsPerEvent / max(1, appendNanoseconds)))% of the batched append's \(String(format: "%.0f", appendNanoseconds)) ns per event (goal: ≤ 10%)."
            )
            lines.append("")
        }
        if let postgres {
            lines.append(
                "PostgreSQL (issue 19), a throw-away \(postgres.server) cluster on this machine, the same corpus, each row in a database of its own:"
            )
            lines.append("")
            lines.append("| run | events/s | first 10% | last 10% |")
            lines.append("|---|---:|---:|---:|")
            lines.append(
                "| Python eventsourcing[postgres], batched append (1000/call) | \(rate(postgres.python["rate"])) | \(rate(postgres.python["first10"])) | \(rate(postgres.python["last10"])) |"
            )
            lines.append("| Python eventsourcing[postgres], replay | \(rate(postgres.python["replay_rate"])) | | |")
            for (name, value) in [
                ("ticketlog batched append (1000/tx, projections inline)", postgres.batched),
                ("ticketlog events-only append (projections caught up afterwards)", postgres.eventsOnly),
                ("ticketlog 16 concurrent single appends, one connection", postgres.concurrent),
            ] {
                lines.append("| \(name) | \(rate(value.perSecond)) | \(rate(value.first10)) | \(rate(value.last10)) |")
            }
            lines.append("")
            if let nodes = postgres.nodes {
                lines.append(
                    "`POST …/messages` on the PostgreSQL log, release `ticketlog serve`, wrk 16 connections for \(nodes.one.seconds) s (all nodes on this one machine, sharing its cores with each other and the server):"
                )
                lines.append("")
                lines.append("| nodes | req/s | responses (non-2xx) | p50 | p99 | server CPU µs/request |")
                lines.append("|---|---:|---:|---:|---:|---:|")
                lines.append(
                    "| one | \(rate(nodes.one.requestsPerSecond)) | \(nodes.one.responses) (\(nodes.one.failures)) | \(nodes.one.p50) | \(nodes.one.p99) | \(String(format: "%.0f", nodes.one.cpuMicrosecondsPerRequest)) |"
                )
                lines.append(
                    "| three (6 + 5 + 5 connections) | \(rate(nodes.three)) | \(nodes.threeResponses) (\(nodes.threeFailures)) | | \(nodes.threeP99) (worst node) | |"
                )
                lines.append("")
                lines.append(
                    "Three nodes against one: \(String(format: "%.2f", nodes.three / max(1, nodes.one.requestsPerSecond)))×."
                )
                lines.append("")
            }
        }
        func p99Milliseconds(_ text: String?) -> Double? {
            guard let text else { return nil }
            if text.hasSuffix("ms") { return Double(text.dropLast(2)) }
            if text.hasSuffix("us") { return Double(text.dropLast(2)).map { $0 / 1_000 } }
            if text.hasSuffix("s") { return Double(text.dropLast(1)).map { $0 * 1_000 } }
            return nil
        }
        var targets: [(String, Double, Double, Bool)] = [
            (
                "1 batched append ≥ 2.5× Python batched (fastest of the runs each)",
                ratio(fastestBatched.perSecond, fastestPython["rate"]), 2.5, true
            ),
            ("1′ … first 10% vs Python first 10%", ratio(fastestBatched.first10, fastestPython["first10"]), 2.5, true),
            ("1″ … last 10% vs Python last 10%", ratio(fastestBatched.last10, fastestPython["last10"]), 2.5, true),
            (
                "1b batched append ≥ 0.7× C-exact in commits (fastest of the alternating runs each)",
                ratio(encryption.bestPlain?.perSecond, encryption.bestLimit), 0.7, true
            ),
            (
                "2 events-only append ≥ 0.5× C-limit (fastest of the alternating runs each)",
                ratio(eventsOnly.bestEngine?.perSecond, fastest(cLimit["rate"], eventsOnly.limit)), 0.5, true
            ),
            (
                "3 16 concurrent FULL ≥ 5× C one commit per event FULL (fastest of the alternating runs each)",
                ratio(concurrent.bestEngine?.perSecond, fastest(cSingleFull["rate"], concurrent.limit)), 5, true
            ),
            (
                "4 rebuild ≥ 2× Python replay (fastest of the rounds each)", ratio(rebuild.rate.perSecond, bestReplay),
                2, true
            ),
            ("4′ NDJSON export ≥ 1.5× Python replay", ratio(export.rate.perSecond, bestReplay), 1.5, true),
            ("4″ verify ≥ 3× Python replay", ratio(verify.rate.perSecond, bestReplay), 3, true),
        ]
        if let http {
            targets += [
                (
                    "5 POST messages ≥ 0.3× the ceiling (fastest of the rounds each)",
                    ratio(http.post.requestsPerSecond, http.ceiling.requestsPerSecond), 0.3, true
                ),
                (
                    "5′ POST p99 ≤ 20 ms (the worst of the rounds)",
                    http.posts.map { p99Milliseconds($0.p99) ?? .infinity }.max() ?? .infinity, 20, false
                ),
                (
                    "5″ GET messages ≥ 0.5× the ceiling",
                    ratio(http.get.requestsPerSecond, http.ceiling.requestsPerSecond), 0.5, true
                ),
            ]
        }
        targets += [
            ("6 whole file ≤ 0.8× raw JSON", Double(fileBytes) / Double(max(1, rawJSONBytes)), 0.8, false),
            ("6′ events + indexes ≤ 0.45× raw JSON", Double(eventBytes) / Double(max(1, rawJSONBytes)), 0.45, false),
            ("7 rebuild peak RSS ≤ 150 MB", Double(rebuild.peakRSSBytes) / 1_000_000, 150, false),
            ("7′ export peak RSS ≤ 150 MB", Double(export.peakRSSBytes) / 1_000_000, 150, false),
            ("7″ verify peak RSS ≤ 150 MB", Double(verify.peakRSSBytes) / 1_000_000, 150, false),
        ]
        if let postgres {
            targets += [
                (
                    "19 PostgreSQL batched append ≥ 2× eventsourcing[postgres]",
                    ratio(postgres.batched.perSecond, postgres.python["rate"]), 2, true
                ),
                (
                    "19′ … events only (not the target's row, for the profile)",
                    ratio(postgres.eventsOnly.perSecond, postgres.python["rate"]), 2, true
                ),
            ]
        }
        lines.append("| target (issue 14; 19 for PostgreSQL) | measured | goal | holds |")
        lines.append("|---|---:|---:|:---:|")
        for (name, value, goal, atLeast) in targets {
            let holds = atLeast ? value >= goal : value <= goal
            lines.append(
                "| \(name) | \(String(format: "%.3f", value)) | \(atLeast ? "≥" : "≤") \(String(format: "%g", goal)) | \(holds ? "yes" : "**no**") |"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
