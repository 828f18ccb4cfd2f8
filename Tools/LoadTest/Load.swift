import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Ticketlog
import ToolSupport

/// The clients of one load run and what they saw.
struct Load {
    let client: HTTPClient
    let base: String
    let token: String
    let streams: [StreamID]

    enum Kind: String, CaseIterable {
        case post = "POST messages"
        case page = "GET messages"
        case audit = "GET audit"
        case state = "GET state"
    }

    /// Everything the tasks record, under one lock.
    final class Stats: Sendable {
        struct State {
            var latencies: [Kind: [Double]] = [:]
            var failures: [String] = []
            var acknowledgedWrites = 0
            var delivered: [Int64]
            /// Once set, the position after which subscribers stop reading.
            var target: Int64?
        }

        let state: Mutex<State>

        init(subscribers: Int) { state = Mutex(State(delivered: Array(repeating: 0, count: subscribers))) }

        func record(_ kind: Kind, status: UInt, milliseconds: Double, body: String) {
            state.withLock { state in
                state.latencies[kind, default: []].append(milliseconds)
                if (200..<300).contains(status) {
                    if kind == .post { state.acknowledgedWrites += 1 }
                } else if state.failures.count < 100 {
                    state.failures.append("\(kind.rawValue) answered \(status): \(body.prefix(200))")
                }
            }
        }

        func fail(_ failure: String) {
            state.withLock { state in if state.failures.count < 100 { state.failures.append(failure) } }
        }

        func delivered(_ subscriber: Int, upTo position: Int64) {
            state.withLock { $0.delivered[subscriber] = position }
        }
    }

    func run(
        duration: Duration, writers: Int, readers: Int, subscribers: Int, sampleEvery: Duration, serverPID: Int32
    ) async throws -> LoadReport {
        let stats = Stats(subscribers: subscribers)
        let start = ContinuousClock.now
        let deadline = start + duration
        let feeds = (0..<subscribers).map { index in
            Task { await subscribe(index, stats: stats) }
        }
        let sampler = Task {
            var samples: [MemorySample] = []
            while !Task.isCancelled {
                if let bytes = ProcessMemory.bytes("VmRSS", of: String(serverPID)) {
                    let gauges = await memoryGauges()
                    samples.append(
                        MemorySample(
                            seconds: (ContinuousClock.now - start).seconds, resident: bytes,
                            heap: gauges["process_heap_in_use_bytes"], sqlite: gauges["ticketlog_sqlite_memory_bytes"]))
                }
                try? await Task.sleep(for: sampleEvery)
            }
            return samples
        }
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        count += 1
                        let stream = streams[(writer * 7_919 + count) % streams.count]
                        let text =
                            "Load message \(count) from writer \(writer): the draft is in review, notes by Friday."
                        await call(
                            .POST, "/api/chat/tickets/\(stream.rawValue.dropFirst(7))/messages",
                            #"{"text":"\#(text)"}"#, .post, stats)
                    }
                }
            }
            for reader in 0..<readers {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        count += 1
                        let ticket = streams[(reader * 31 + count) % streams.count].rawValue.dropFirst(7)
                        switch count % 3 {
                        case 0:
                            await call(
                                .GET, "/api/chat/tickets/\(ticket)/messages?limit=50&direction=backwards", nil, .page,
                                stats)
                        case 1: await call(.GET, "/api/chat/tickets/\(ticket)/audit?limit=100", nil, .audit, stats)
                        default: await call(.GET, "/api/chat/tickets/\(ticket)/state", nil, .state, stats)
                        }
                    }
                }
            }
        }
        let loadSeconds = (ContinuousClock.now - start).seconds

        // Every subscriber must reach the head: the tickets, every acknowledged post, and one
        // last post made now, which also wakes every feed to notice that it is done.
        let head = Int64(streams.count + stats.state.withLock { $0.acknowledgedWrites }) + 1
        stats.state.withLock { $0.target = head }
        let marker = streams[0].rawValue.dropFirst(7)
        await call(.POST, "/api/chat/tickets/\(marker)/messages", #"{"text":"Load run over."}"#, .post, stats)
        let catchUp = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < catchUp, stats.state.withLock({ $0.delivered.contains { $0 < head } }) {
            try await Task.sleep(for: .milliseconds(100))
        }
        for feed in feeds { feed.cancel() }
        for feed in feeds { await feed.value }
        sampler.cancel()
        let samples = await sampler.value
        return stats.state.withLock { state in
            LoadReport(
                seconds: loadSeconds, latencies: state.latencies, failures: state.failures,
                acknowledgedWrites: state.acknowledgedWrites, delivered: state.delivered, memory: samples)
        }
    }

    private func call(_ method: HTTPMethod, _ path: String, _ body: String?, _ kind: Kind, _ stats: Stats) async {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let text = try await response.body.collect(upTo: 1 << 20)
            stats.record(
                kind, status: response.status.code, milliseconds: (ContinuousClock.now - started).seconds * 1_000,
                body: String(buffer: text))
        } catch {
            stats.fail("\(kind.rawValue) failed: \(error)")
        }
    }

    /// The server's memory gauges (name: bytes) from its `/metrics`; empty when not answered.
    private func memoryGauges() async -> [String: Int] {
        guard
            let response = try? await client.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(10)),
            response.status == .ok, let body = try? await response.body.collect(upTo: 4 << 20)
        else { return [:] }
        var gauges: [String: Int] = [:]
        for line in String(buffer: body).split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0].hasSuffix("_bytes"), let value = Double(parts[1]) else { continue }
            gauges[String(parts[0])] = Int(value)
        }
        return gauges
    }

    /// Reads the live event feed from the start: positions must come one by one, in order.
    private func subscribe(_ index: Int, stats: Stats) async {
        var request = HTTPClientRequest(url: base + "/api/events?after=0")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        var last: Int64 = 0
        do {
            let response = try await client.execute(request, timeout: .hours(24))
            guard response.status == .ok else {
                stats.fail("subscriber \(index + 1): the event feed answered \(response.status)")
                return
            }
            var pending = ""
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = pending[..<newline]
                    if line.hasPrefix("id: "), let position = Int64(line.dropFirst(4)) {
                        if position != last + 1 {
                            stats.fail("subscriber \(index + 1) got position \(position) after \(last)")
                        }
                        last = position
                        stats.delivered(index, upTo: position)
                    }
                    pending.removeSubrange(...newline)
                }
                if let target = stats.state.withLock({ $0.target }), last >= target { return }
            }
        } catch is CancellationError {
        } catch let error as HTTPClientError where error == .cancelled {
        } catch {
            if !Task.isCancelled { stats.fail("subscriber \(index + 1) lost the feed after \(last): \(error)") }
        }
    }
}

/// The server's resident memory at one moment, its heap in use and how much of that SQLite held
/// (the last two from its `/metrics`, `nil` when it did not say).
struct MemorySample {
    var seconds: Double
    var resident: Int
    var heap: Int?
    var sqlite: Int?
}

/// A load run's figures.
struct LoadReport {
    var seconds: Double
    var latencies: [Load.Kind: [Double]]
    var failures: [String]
    var acknowledgedWrites: Int
    var delivered: [Int64]
    var memory: [MemorySample]

    func summary(seconds requested: Int) -> String {
        var lines: [String] = []
        let total = latencies.values.map(\.count).reduce(0, +)
        lines.append(
            String(
                format: "%d requests in %.1f s (%.0f/s), %d failures", total, seconds, Double(total) / seconds,
                failures.count))
        for kind in Load.Kind.allCases {
            let sorted = (latencies[kind] ?? []).sorted()
            guard !sorted.isEmpty else { continue }
            lines.append(
                String(
                    format: "  %@: %d (%.0f/s), p50 %.1f ms, p99 %.1f ms", kind.rawValue, sorted.count,
                    Double(sorted.count) / seconds,
                    sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)]))
        }
        if let first = memory.first, let last = memory.last {
            let peak = memory.map(\.resident).max() ?? 0
            lines.append(
                String(
                    format: "server memory: %.0f MiB at start, %.0f MiB at the end, peak %.0f MiB (%d samples)",
                    mib(first.resident), mib(last.resident), mib(peak), memory.count))
            func figure(_ bytes: Int?) -> String { bytes.map { String(format: "%.1f", mib($0)) } ?? "?" }
            lines.append(
                "  curve (s: resident / heap in use / of it SQLite, MiB): "
                    + memory.enumerated()
                    .filter { $0.offset % max(1, memory.count / 12) == 0 || $0.offset == memory.count - 1 }
                    .map {
                        String(
                            format: "%.0f: %.0f/%@/%@", $0.element.seconds, mib($0.element.resident),
                            figure($0.element.heap), figure($0.element.sqlite))
                    }
                    .joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// Whether resident memory stopped growing: the median of the last fifth is within 20%
    /// (+16 MiB) of the median of the second fifth (the first fifth is the caches warming up).
    /// Resident memory also holds what malloc keeps after frees, so it may drift a little.
    var residentIsFlat: (flat: Bool, early: Int, late: Int) {
        Self.fifths(memory.map(\.resident), tolerance: 0.2, slack: 16 << 20)
    }

    /// Whether the heap in use stopped growing, the sharper test for a leak: the same medians
    /// within 25% (+4 MiB), over the samples for which the server reported its heap.
    var heapIsFlat: (flat: Bool, early: Int, late: Int) {
        Self.fifths(memory.compactMap(\.heap), tolerance: 0.25, slack: 4 << 20)
    }

    private static func fifths(_ values: [Int], tolerance: Double, slack: Int) -> (flat: Bool, early: Int, late: Int) {
        guard values.count >= 10 else { return (true, 0, 0) }
        func median(_ slice: ArraySlice<Int>) -> Int { slice.sorted()[slice.count / 2] }
        let fifth = values.count / 5
        let early = median(values[fifth..<(2 * fifth)])
        let late = median(values[(values.count - fifth)...])
        return (Double(late) <= Double(early) * (1 + tolerance) + Double(slack), early, late)
    }

    private func mib(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }
}
