import Foundation

/// Every row of one run, and the issue's targets as ratios.
struct Report {
    var events: Int
    var rawJSONBytes = 0
    var cBriefed: [String: Double] = [:]
    var cLimit: [String: Double] = [:]
    var cSingleFull: [String: Double] = [:]
    var python: [String: Double] = [:]
    var batched = Rate(events: 0, seconds: 0)
    var eventBytes: Int64 = 0
    var concurrent = Rate(events: 0, seconds: 0)
    var rebuild: (rate: Rate, peakRSSBytes: Int) = (Rate(events: 0, seconds: 0), 0)
    var export: (rate: Rate, peakRSSBytes: Int) = (Rate(events: 0, seconds: 0), 0)
    var latency: (p50: Double, p99: Double) = (0, 0)
    var http: HTTPLoad.Result?

    func markdown() -> String {
        func rate(_ value: Double?) -> String { value.map { String(format: "%.0f", $0) } ?? "–" }
        func ratio(_ a: Double, _ b: Double?) -> Double { (b ?? 0) > 0 ? a / b! : 0 }
        func mib(_ bytes: Int) -> String { String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
        func perEvent(_ bytes: Double?) -> String { bytes.map { String(format: "%.0f", $0 / Double(events)) } ?? "–" }
        var lines: [String] = []
        lines.append("# ticketlog bench: \(events) events, \(ISO8601DateFormatter().string(from: Date()))")
        lines.append("")
        lines.append(
            "Corpus: synthetic desk, seed 42, \(max(1, events / 100)) tickets, mean event JSON \(rawJSONBytes / max(1, events)) B."
        )
        lines.append("")
        lines.append("| run | events/s | first 10% | last 10% | bytes/event | peak RSS |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        lines.append(
            "| C-as-briefed (1000/tx, NORMAL, UNIQUE(stream TEXT, version)) | \(rate(cBriefed["rate"])) | \(rate(cBriefed["first10"])) | \(rate(cBriefed["last10"])) | \(perEvent(cBriefed["bytes"])) | |"
        )
        lines.append(
            "| C-limit (no secondary index) | \(rate(cLimit["rate"])) | \(rate(cLimit["first10"])) | \(rate(cLimit["last10"])) | \(perEvent(cLimit["bytes"])) | |"
        )
        lines.append("| C one commit per event, FULL | \(rate(cSingleFull["rate"])) | | | | |")
        lines.append(
            "| Python eventsourcing, batched append | \(rate(python["rate"])) | \(rate(python["first10"])) | \(rate(python["last10"])) | | |"
        )
        lines.append("| Python eventsourcing, replay | \(rate(python["replay_rate"])) | | | | |")
        lines.append(
            "| ticketlog batched append (1000/tx, NORMAL, projections inline) | \(rate(batched.perSecond)) | \(rate(batched.first10)) | \(rate(batched.last10)) | \(perEvent(Double(eventBytes))) (events + indexes) | |"
        )
        lines.append("| ticketlog 16 concurrent single appends, FULL | \(rate(concurrent.perSecond)) | | | | |")
        lines.append(
            "| ticketlog rebuild of all projections | \(rate(rebuild.rate.perSecond)) | | | | \(mib(rebuild.peakRSSBytes)) |"
        )
        lines.append("| ticketlog NDJSON export | \(rate(export.rate.perSecond)) | | | | \(mib(export.peakRSSBytes)) |")
        lines.append("| raw event JSON | | | | \(rawJSONBytes / max(1, events)) | |")
        lines.append("")
        lines.append(
            "Append → subscriber latency (5,000 single appends, NORMAL): p50 \(String(format: "%.2f", latency.p50)) ms, p99 \(String(format: "%.2f", latency.p99)) ms."
        )
        lines.append("")
        if let http {
            let errors = http.socketErrors.map { "; \($0)" } ?? ""
            lines.append(
                "HTTP `POST /api/chat/tickets/{id}/messages` (release `ticketlog serve`, FULL, wrk \(http.connections) connections, \(http.seconds) s, 100 tickets): "
                    + "\(rate(http.requestsPerSecond)) requests/s, latency p50 \(http.p50) p99 \(http.p99); "
                    + "\(http.responses) responses, \(http.failures) not 2xx\(errors); \(http.appended) messages in the log."
            )
        } else {
            lines.append("HTTP `POST .../messages`: not measured (no --server/--wrk).")
        }
        lines.append("")
        let targets: [(String, Double, Double, Bool)] = [
            ("1a batched append ≥ 3.0× C-as-briefed", ratio(batched.perSecond, cBriefed["rate"]), 3.0, true),
            ("1a′ … first 10% vs C first 10%", ratio(batched.first10 ?? 0, cBriefed["first10"]), 3.0, true),
            ("1a″ … last 10% vs C last 10%", ratio(batched.last10 ?? 0, cBriefed["last10"]), 3.0, true),
            ("1b batched append ≥ 7× Python batched", ratio(batched.perSecond, python["rate"]), 7.0, true),
            (
                "2 16 concurrent FULL ≥ 5× C one-commit-per-event FULL",
                ratio(concurrent.perSecond, cSingleFull["rate"]), 5.0, true
            ),
            ("3 rebuild ≥ 9× Python replay", ratio(rebuild.rate.perSecond, python["replay_rate"]), 9.0, true),
            ("4 events on disk ≤ 0.5× raw JSON", Double(eventBytes) / Double(max(1, rawJSONBytes)), 0.5, false),
            ("5a rebuild peak RSS ≤ 150 MB", Double(rebuild.peakRSSBytes) / 1_000_000, 150, false),
            ("5b export peak RSS ≤ 150 MB", Double(export.peakRSSBytes) / 1_000_000, 150, false),
        ]
        lines.append("| target | measured | goal | holds |")
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
