import ArgumentParser
import Foundation
import Hummingbird
import Logging
import StreamChatEmulator

@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-emulator",
        abstract: "A local stand-in for Stream Chat's REST API, to run the sync against.",
        discussion: """
            Implements what the sync uses, to the documented protocol: server auth, users, \
            channels, members, messages (with history paging), truncation, channel deletion, \
            Stream's error bodies and rate-limit headers. State lives in memory.

            With --webhook-url, every change is sent back as Stream's signed webhooks \
            (X-Signature, X-Webhook-Id, X-Webhook-Attempt; 3 attempts on 408/429/5xx). \
            --faults injects 5xx, 429 bursts and responses lost after the change was made; \
            --duplicate-webhooks and --reorder-webhooks make deliveries repeat and arrive out \
            of order.

            Example:
              stream-emulator --port 9090 --api-key dev-key --api-secret dev-stream-secret-of-at-least-32-bytes
              ticketlog sync --base-url http://127.0.0.1:9090 --stream-api-key dev-key \\
                --stream-api-secret dev-stream-secret-of-at-least-32-bytes --until-caught-up

              stream-emulator --faults 20 --latency-ms 0-30 \\
                --webhook-url http://127.0.0.1:8080/webhooks/stream --duplicate-webhooks 20 --reorder-webhooks 8
            """
    )

    @Option(help: "The port to listen on.")
    var port = 9090

    @Option(help: "The API key clients must send.")
    var apiKey = "dev-key"

    @Option(help: "The API secret server tokens must be signed with.")
    var apiSecret = "dev-stream-secret-of-at-least-32-bytes"

    @Option(
        help:
            "Percent of requests (0-100) that meet a fault: 5xx, a burst of 429s, or a response lost after the change.")
    var faults = 0

    @Option(help: "Latency added to each response, in milliseconds: a number or a range like 5-50.")
    var latencyMs = "0"

    @Option(help: "Seed of the fault and delivery sequences.")
    var seed: UInt64 = 1

    @Option(
        help: "Where to POST Stream's webhooks (e.g. http://127.0.0.1:8080/webhooks/stream). None are sent without it.")
    var webhookURL: String?

    @Option(help: "Percent of webhooks (0-100) delivered twice.")
    var duplicateWebhooks = 0

    @Option(help: "Shuffle webhook deliveries within windows of this many (1: in order).")
    var reorderWebhooks = 1

    @Flag(help: "Send webhooks gzip-compressed, as Stream does with payload compression on.")
    var gzipWebhooks = false

    func validate() throws {
        guard (0...100).contains(faults), (0...100).contains(duplicateWebhooks) else {
            throw ValidationError("--faults and --duplicate-webhooks are percentages (0-100)")
        }
        guard latency != nil else {
            throw ValidationError("--latency-ms takes a number or a range like 5-50, not '\(latencyMs)'")
        }
        guard reorderWebhooks >= 1 else { throw ValidationError("--reorder-webhooks must be at least 1") }
    }

    var latency: ClosedRange<Double>? {
        let bounds = latencyMs.split(separator: "-", omittingEmptySubsequences: false).map { Double($0) }
        switch bounds.count {
        case 1: return bounds[0].flatMap { $0 >= 0 ? ($0 / 1000)...($0 / 1000) : nil }
        case 2:
            guard let low = bounds[0], let high = bounds[1], low >= 0, low <= high else { return nil }
            return (low / 1000)...(high / 1000)
        default: return nil
        }
    }

    func run() async throws {
        var emulator = StreamEmulator(apiKey: apiKey, apiSecret: apiSecret)
        emulator.inject(.init(percent: faults, latency: latency ?? 0...0, seed: seed))
        let server = EmulatorServer(emulator)
        var logger = Logger(label: "stream-emulator")
        logger.logLevel = .notice
        let app = Application(
            router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        say(
            "stream-emulator on http://127.0.0.1:\(port) (api key \(apiKey))"
                + (faults > 0 ? ", \(faults)% faults" : ""))
        guard let webhookURL else {
            try await app.runService()
            return
        }
        say("webhooks to \(webhookURL)")
        let delivery = EmulatorServer.WebhookDelivery(
            url: webhookURL, duplicatePercent: duplicateWebhooks, reorderWindow: reorderWebhooks,
            compress: gzipWebhooks, seed: seed)
        let deliveries = Task { await server.runWebhookDelivery(delivery, logger: logger) }
        defer { deliveries.cancel() }
        try await app.runService()
    }

    /// A line on stdout, unbuffered (so it shows when stdout is a file).
    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
