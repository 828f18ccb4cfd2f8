import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Ticketlog

extension StreamChatClient {
    /// Stream's default API host.
    public static let defaultBaseURL = "https://chat.stream-io-api.com"

    /// Sends requests over HTTP with AsyncHTTPClient: server auth headers and `api_key` on every
    /// request, a 6 s timeout as Stream's SDKs use, bodies up to 16 MiB.
    public static func live(
        baseURL: String = defaultBaseURL, auth: StreamChatAuth, httpClient: HTTPClient = .shared,
        timeout: TimeAmount = .seconds(6)
    ) -> StreamChatClient {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        return StreamChatClient { request in
            var components = URLComponents(string: base + request.path)
            components?.queryItems = auth.query.merging(request.query) { own, _ in own }.sorted { $0.key < $1.key }
                .map { URLQueryItem(name: $0.key, value: $0.value) }
            guard let url = components?.string else {
                throw StreamChatError(.invalidURL, "cannot make a URL of \(base + request.path)")
            }
            var http = HTTPClientRequest(url: url)
            http.method = HTTPMethod(rawValue: request.method.rawValue)
            for (name, value) in auth.headers { http.headers.add(name: name, value: value) }
            if let body = request.body {
                http.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            }
            let response = try await httpClient.execute(http, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 16 << 20)
            let body =
                bytes.readableBytes == 0
                ? nil : try? JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            return Response(status: Int(response.status.code), body: body, headers: headers)
        }
    }
}
