import AsyncHTTPClient
import CZlib
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Synthetic
import Ticketlog

/// The emulator on HTTP: every request goes through ``StreamEmulator/serve(_:)`` under a lock,
/// with its latency and lost responses played out on the wire, and the webhooks Stream would send
/// POSTed, signed, to a URL.
public final class EmulatorServer: Sendable {
    public let state: Mutex<StreamEmulator>
    /// How many of `state.webhooks` were handed to delivery.
    private let webhooksTaken = Mutex(0)

    public init(_ emulator: StreamEmulator) {
        state = Mutex(emulator)
    }

    struct ResponseLost: Error {}

    /// A router answering every path like Stream would.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            let buffer = try await request.body.collect(upTo: 16 << 20)
            let body =
                buffer.readableBytes == 0 ? nil : try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: buffer))
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let served = self.state.withLock {
                $0.serve(
                    .init(
                        method: request.method.rawValue, path: request.uri.path, query: query, headers: headers,
                        body: body))
            }
            if served.delay > 0 { try await Task.sleep(for: .seconds(served.delay)) }
            let emulated = served.response
            var fields = HTTPFields()
            for (name, value) in emulated.headers { fields[HTTPField.Name(name)!] = value }
            let bytes: ByteBuffer
            if let text = emulated.plainText {
                fields[.contentType] = "text/plain"
                bytes = ByteBuffer(string: text)
            } else {
                fields[.contentType] = "application/json"
                bytes = ByteBuffer(bytes: try JSONEncoder().encode(emulated.body))
            }
            guard !served.responseLost else {
                // The change is made; the client gets the head and half a body, then the
                // connection is cut, as when a proxy times out mid-response.
                fields[.contentLength] = String(bytes.readableBytes)
                return Response(
                    status: .init(code: emulated.status), headers: fields,
                    body: .init { writer in
                        try await writer.write(bytes.getSlice(at: 0, length: bytes.readableBytes / 2) ?? ByteBuffer())
                        throw ResponseLost()
                    })
            }
            return Response(status: .init(code: emulated.status), headers: fields, body: .init(byteBuffer: bytes))
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("**", method: method, use: handler)
        }
        return router
    }

    // MARK: Webhooks

    /// How webhooks are delivered, and the delivery faults to inject.
    public struct WebhookDelivery: Sendable {
        /// Where to POST them (the engine's `/webhooks/stream`).
        public var url: String
        /// The share (0–100) of webhooks delivered twice (the same `X-Webhook-Id`, attempt 2).
        public var duplicatePercent: Int
        /// Deliveries are shuffled within windows of this many (1: in order).
        public var reorderWindow: Int
        /// Send bodies gzip-compressed (`Content-Encoding: gzip`), signed over the JSON, as
        /// Stream does with payload compression on.
        public var compress: Bool
        public var seed: UInt64

        public init(
            url: String, duplicatePercent: Int = 0, reorderWindow: Int = 1, compress: Bool = false, seed: UInt64 = 1
        ) {
            self.url = url
            self.duplicatePercent = duplicatePercent
            self.reorderWindow = max(1, reorderWindow)
            self.compress = compress
            self.seed = seed
        }
    }

    /// What one delivery pass did.
    public struct DeliveryReport: Sendable, Equatable {
        /// Requests made (duplicates and retries included).
        public var requests = 0
        /// Webhooks delivered with a 2xx.
        public var acknowledged = 0
        /// Webhooks given up after Stream's 3 attempts (as Stream does: they are lost).
        public var lost = 0
        public var duplicates = 0
        /// Statuses answered, by code.
        public var statuses: [Int: Int] = [:]
    }

    /// Delivers every webhook not delivered yet, as Stream does: POST with `X-Signature`
    /// (HMAC-SHA256 of the JSON with the API secret), `X-Webhook-Id` (the same for every attempt),
    /// `X-Webhook-Attempt` and `X-Api-Key`; on 408, 429, 5xx or a network error, up to 3
    /// attempts (each with a 6 s timeout); then the webhook is lost.
    public func deliverWebhooks(_ delivery: WebhookDelivery, client: HTTPClient = .shared) async -> DeliveryReport {
        let (bodies, first, secret, key) = state.withLock { emulator in
            webhooksTaken.withLock { taken in
                defer { taken = emulator.webhooks.count }
                return (Array(emulator.webhooks[taken...]), taken, emulator.apiSecret, emulator.apiKey)
            }
        }
        var random = SplitMix(seed: delivery.seed &+ UInt64(first))
        var deliveries: [(id: String, body: [UInt8], attempt: Int)] = []
        for (offset, webhook) in bodies.enumerated() {
            let json = Array((try? JSONEncoder().encode(webhook)) ?? Data())
            let id = "wh-\(first + offset)"
            deliveries.append((id, json, 1))
            if Int.random(in: 0..<100, using: &random) < delivery.duplicatePercent { deliveries.append((id, json, 2)) }
        }
        var shuffled: [(id: String, body: [UInt8], attempt: Int)] = []
        for start in stride(from: 0, to: deliveries.count, by: delivery.reorderWindow) {
            shuffled += deliveries[start..<min(start + delivery.reorderWindow, deliveries.count)].shuffled(
                using: &random)
        }
        var report = DeliveryReport()
        report.duplicates = deliveries.count - bodies.count
        for item in shuffled {
            var delivered = false
            for attempt in item.attempt...(item.attempt + 2) {
                var request = HTTPClientRequest(url: delivery.url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "X-Signature", value: StreamEmulator.hmacHex(item.body, secret: secret))
                request.headers.add(name: "X-Webhook-Id", value: item.id)
                request.headers.add(name: "X-Webhook-Attempt", value: String(attempt))
                request.headers.add(name: "X-Api-Key", value: key)
                if delivery.compress {
                    request.headers.add(name: "Content-Encoding", value: "gzip")
                    request.body = .bytes(ByteBuffer(bytes: StreamEmulator.gzip(item.body)))
                } else {
                    request.body = .bytes(ByteBuffer(bytes: item.body))
                }
                report.requests += 1
                let status: Int
                do {
                    let response = try await client.execute(request, timeout: .seconds(6))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    status = Int(response.status.code)
                } catch {
                    status = 0
                }
                report.statuses[status, default: 0] += 1
                if (200..<300).contains(status) {
                    delivered = true
                    break
                }
                guard status == 0 || status == 408 || status == 429 || status >= 500 else { break }
            }
            if delivered { report.acknowledged += 1 } else { report.lost += 1 }
        }
        return report
    }

    /// Delivers webhooks as they happen until the task is cancelled.
    public func runWebhookDelivery(_ delivery: WebhookDelivery, logger: Logger) async {
        while !Task.isCancelled {
            let report = await deliverWebhooks(delivery)
            if report.requests > 0 {
                logger.notice(
                    "Webhooks delivered",
                    metadata: [
                        "acknowledged": "\(report.acknowledged)", "lost": "\(report.lost)",
                        "requests": "\(report.requests)",
                    ])
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

extension StreamEmulator {
    /// Lowercase hex HMAC-SHA256 of `body`: Stream's `X-Signature`.
    public static func hmacHex(_ body: [UInt8], secret: String) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    /// `bytes` gzip-compressed with system zlib, as Stream compresses webhook payloads.
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip wrapper.
        guard
            deflateInit2_(
                &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        var input = bytes
        let written: Int = input.withUnsafeMutableBufferPointer { input in
            output.withUnsafeMutableBufferPointer { buffer in
                stream.next_in = input.baseAddress
                stream.avail_in = uInt(input.count)
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
                return buffer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<written])
    }
}
