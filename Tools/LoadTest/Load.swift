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
    /// One base URL per node; each client prefers one, as a load balancer would spread them.
    let bases: [String]
    let token: String
    let streams: [StreamID]
    /// The nodes a disruption took down: their clients go to the next node.
    let down = Down()

    final class Down: Sendable {
        private let nodes = Mutex<Set<Int>>([])
        func insert(_ node: Int) { _ = nodes.withLock { $0.insert(node) } }
        func contains(_ node: Int) -> Bool { nodes.withLock { $0.contains(node) } }
    }

    enum Kind: String, CaseIterable {
        case post = "POST messages"
        case page = "GET messages"
        case audit = "GET audit"
        case state = "GET state"
    }

    /// Something done to the system once during the load: a node killed, the database restarted.
    struct Disruption: Sendable {
        var after: Duration
        /// The node it takes down for good, if any.
        var node: Int?
        var name: String
        /// Run on a thread of its own (it may block, e.g. on a restart script).
        var action: @Sendable () -> Void
    }

    /// Everything the tasks record, under one lock.
    final class Stats: Sendable {
        struct State {
            var latencies: [Kind: [Double]] = [:]
            var failures: [String] = []
            var acknowledgedWrites = 0
            /// Requests sent again: after a 503 with Retry-After, or to another node after theirs
            /// went down.
            var resent = 0
            var delivered: [Int64]
            /// Once set, the position after which subscribers stop reading.
            var target: Int64?
            var disruptions: [String] = []
        }

        let state: Mutex<State>

        init(subscribers: Int) { state = Mutex(State(delivered: Array(repeating: 0, count: subscribers))) }

        func record(_ kind: Kind, milliseconds: Double) {
            state.withLock { state in state.latencies[kind, default: []].append(milliseconds) }
        }

        func acknowledged() {
            state.withLock { $0.acknowledgedWrites += 1 }
        }

        func resent() {
            state.withLock { $0.resent += 1 }
        }

        func fail(_ failure: String) {
            state.withLock { state in if state.failures.count < 100 { state.failures.append(failure) } }
        }

        func delivered(_ subscriber: Int, upTo position: Int64) {
            state.withLock { $0.delivered[subscriber] = position }
        }
    }

    func run(
        duration: Duration, writers: Int, readers: Int, subscribers: Int, sampleEvery: Duration, serverPID: Int32,
        disruptions: [Disruption] = []
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
        let disrupting = Task {
            for disruption in disruptions.sorted(by: { $0.after < $1.after }) {
                try? await Task.sleep(until: start + disruption.after)
                if let node = disruption.node { down.insert(node) }
                let began = ContinuousClock.now
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    Thread {
                        disruption.action()
                        done.resume()
                    }.start()
                }
                stats.state.withLock {
                    $0.disruptions.append(
                        String(
                            format: "%@ at %.1f s (took %.1f s)", disruption.name, (began - start).seconds,
                            (ContinuousClock.now - began).seconds))
                }
            }
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
                            #"{"messageId":"load-\#(writer)-\#(count)","text":"\#(text)"}"#, .post, stats,
                            node: writer)
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
                                stats, node: reader)
                        case 1:
                            await call(
                                .GET, "/api/chat/tickets/\(ticket)/audit?limit=100", nil, .audit, stats, node: reader)
                        default: await call(.GET, "/api/chat/tickets/\(ticket)/state", nil, .state, stats, node: reader)
                        }
                    }
                }
            }
        }
        let loadSeconds = (ContinuousClock.now - start).seconds
        await disrupting.value

        // Every subscriber must reach the head: the tickets, every acknowledged post, and one
        // last post made now, which also wakes every feed to notice that it is done.
        let head = Int64(streams.count + stats.state.withLock { $0.acknowledgedWrites }) + 1
        stats.state.withLock { $0.target = head }
        let marker = streams[0].rawValue.dropFirst(7)
        await call(
            .POST, "/api/chat/tickets/\(marker)/messages", #"{"messageId":"load-over","text":"Load run over."}"#,
            .post, stats, node: 0)
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
                acknowledgedWrites: state.acknowledgedWrites, delivered: state.delivered, memory: samples,
                resent: state.resent, disruptions: state.disruptions)
        }
    }

    /// The node a client that prefers `preferred` uses now: the next one up.
    private func node(_ preferred: Int) -> Int {
        (0..<bases.count).map { (preferred + $0) % bases.count }.first { !down.contains($0) } ?? 0
    }

    /// The largest answer read: a bound for the tool, not a limit of the server's.
    static let largestResponse = 256 << 20

    /// Sends a request until it gets an answer that is not a passing outage: after a 503 it
    /// waits the Retry-After the server gave (a database restarting) and sends it again; when
    /// its node went down (a disruption of this run), it goes to the next node. A post sent
    /// again whose first sending was stored after all is answered 409 "already posted": it is
    /// acknowledged then, since the log holds it. Anything else that is not 2xx is a failure.
    private func call(
        _ method: HTTPMethod, _ path: String, _ body: String?, _ kind: Kind, _ stats: Stats, node preferred: Int
    ) async {
        let giveUp = ContinuousClock.now + .seconds(60)
        var attempt = 0
        while true {
            attempt += 1
            let node = node(preferred)
            var request = HTTPClientRequest(url: bases[node] + path)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let started = ContinuousClock.now
            let status: UInt
            let text: String
            let retryAfter: Int?
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                // A ticket's state holds every message it has: on a fast machine the load's 50
                // tickets pass 1 MiB each within the ten minutes of `make soak` (~5k messages).
                text = String(buffer: try await response.body.collect(upTo: Self.largestResponse))
                status = response.status.code
                retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0) }
            } catch {
                if down.contains(node), ContinuousClock.now < giveUp {
                    stats.resent()
                    continue
                }
                stats.fail("\(kind.rawValue) to node \(node + 1) failed: \(error)")
                return
            }
            stats.record(kind, milliseconds: (ContinuousClock.now - started).seconds * 1_000)
            if status == 503, let retryAfter, ContinuousClock.now < giveUp {
                stats.resent()
                try? await Task.sleep(for: .seconds(max(1, retryAfter)))
                continue
            }
            if (200..<300).contains(status) {
                if kind == .post { stats.acknowledged() }
            } else if kind == .post && status == 409 && attempt > 1 && text.contains("exists already") {
                stats.acknowledged()
            } else {
                stats.fail("\(kind.rawValue) answered \(status) by node \(node + 1): \(text.prefix(200))")
            }
            return
        }
    }

    /// The server's memory gauges (name: bytes) from its `/metrics`; empty when not answered.
    private func memoryGauges() async -> [String: Int] {
        guard
            let response = try? await client.execute(
                HTTPClientRequest(url: bases[0] + "/metrics"), timeout: .seconds(10)),
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
    /// When its node goes down (a disruption of this run), it reads on from the next node,
    /// after the last position it got.
    private func subscribe(_ index: Int, stats: Stats) async {
        var last: Int64 = 0
        while !Task.isCancelled {
            let node = node(index)
            var request = HTTPClientRequest(url: bases[node] + "/api/events?after=\(last)")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            do {
                let response = try await client.execute(request, timeout: .hours(24))
                guard response.status == .ok else {
                    stats.fail(
                        "subscriber \(index + 1): the event feed of node \(node + 1) answered \(response.status)")
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
                if down.contains(node) { continue }
                stats.fail("subscriber \(index + 1): the feed of node \(node + 1) ended after \(last)")
                return
            } catch is CancellationError {
                return
            } catch let error as HTTPClientError where error == .cancelled {
                return
            } catch {
                if Task.isCancelled { return }
                if down.contains(node) { continue }
                stats.fail("subscriber \(index + 1) lost the feed of node \(node + 1) after \(last): \(error)")
                return
            }
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
    var resent = 0
    var disruptions: [String] = []

    func summary(seconds requested: Int) -> String {
        var lines: [String] = []
        let total = latencies.values.map(\.count).reduce(0, +)
        lines.append(
            String(
                format: "%d requests in %.1f s (%.0f/s), %d failures, %d sent again", total, seconds,
                Double(total) / seconds, failures.count, resent))
        for disruption in disruptions { lines.append("  \(disruption)") }
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
