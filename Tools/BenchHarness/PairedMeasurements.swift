import Foundation
import ToolSupport

/// A run of this executable as a child process whose rate it prints on its standard output.
enum ChildRate {
    /// One child run, after the kernel wrote back what the previous one left dirty; its rate as
    /// the child prints it: `N events/s (first 10% F, last 10% L)`.
    static func run(_ bench: String, _ arguments: [String]) throws -> Rate {
        sync()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ToolError("\(arguments.prefix(2).joined(separator: " ")) failed: \(text)")
        }
        let numbers = text.split(whereSeparator: { !$0.isNumber && $0 != "." }).compactMap { Double($0) }
        guard let events = arguments.firstIndex(of: "--events").map({ Int(arguments[$0 + 1])! }),
            numbers.count == 1 || numbers.count >= 4, numbers[0] > 0
        else { throw ToolError("cannot read the rate in \(text.debugDescription)") }
        // numbers: rate, then (when the run has them) 10 (of "first 10%"), first, 10, last.
        return Rate(
            events: events, seconds: Double(events) / numbers[0], first10: numbers.count >= 4 ? numbers[2] : nil,
            last10: numbers.count >= 5 ? numbers[4] : nil)
    }
}

/// Targets 2 and 3: the engine against its C limit (C-limit for the events-only append, C's one
/// commit per event at FULL for the 16 concurrent appenders), each in a fresh child process,
/// alternating (C, engine, C, engine, …) as the encryption pairs and target 4's rounds are.
/// A single C run early in the bench and the engine's run in the bench's own process, minutes
/// and gigabytes of writes later, gave C-limit anywhere between 255k and 507k events/s on one
/// machine in one day, and the ratio with it (0.25–0.48×). Noise only slows a run down, so
/// the fastest of each side is compared; every run is reported.
enum PairedMeasurements {
    struct Rows {
        var engine: [Rate] = []
        var limit: [Double] = []

        var bestEngine: Rate? { engine.max { $0.perSecond < $1.perSecond } }
    }

    /// `pairs` rounds of `limit` then `engine`, each after the kernel wrote back what the
    /// previous run left dirty.
    static func measure(pairs: Int, limit: () throws -> Double, engine: () throws -> Rate) throws -> Rows {
        var rows = Rows()
        for _ in 0..<pairs {
            sync()
            rows.limit.append(try limit())
            rows.engine.append(try engine())
        }
        return rows
    }
}
