import Foundation
import HTTPTypes
import Hummingbird

/// The admin dashboard (issue 18): plain HTML, CSS and JavaScript modules shipped as resources of
/// this target (`Resources/Dashboard`), no build step. `GET /` is the page; `GET /dashboard/NAME`
/// its files. Everything the page shows comes from the API with the caller's token, so the page
/// itself is public. Its Content-Security-Policy allows only this origin's scripts, styles and
/// connections: no inline script, nothing from elsewhere.
struct DashboardRoutes {
    struct File {
        var bytes: [UInt8]
        var contentType: String
    }

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
    ]

    /// The files of the page, read once.
    let files: [String: File]

    init() throws {
        guard let directory = Bundle.module.url(forResource: "Dashboard", withExtension: nil) else {
            throw TicketlogServer.ConfigurationError(
                description: "the dashboard is missing from the TicketlogServer bundle")
        }
        var files: [String: File] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            guard let type = Self.contentTypes[(name as NSString).pathExtension] else { continue }
            let bytes = try Data(contentsOf: directory.appendingPathComponent(name))
            files[name] = File(bytes: Array(bytes), contentType: type)
        }
        guard files["index.html"] != nil else {
            throw TicketlogServer.ConfigurationError(description: "the dashboard has no index.html")
        }
        self.files = files
    }

    func register(on router: Router<TicketlogRequestContext>) {
        let files = self.files
        router.get("/") { _, _ in Self.response(files["index.html"]!) }
        router.get("/dashboard/:file") { _, context in
            let name = try context.parameters.require("file")
            guard name != "index.html", let file = files[name] else {
                throw APIError(.notFound, code: "not_found", "the dashboard has no file \(name)")
            }
            return Self.response(file)
        }
    }

    static func response(_ file: File) -> Response {
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "no-cache",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
