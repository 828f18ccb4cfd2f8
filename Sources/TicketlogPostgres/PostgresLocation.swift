import Foundation
import Ticketlog

/// Where a log in PostgreSQL lives: `postgres://user:password@host:port/database` (also
/// `postgresql://`), as libpq spells it. The password may instead come from `PGPASSWORD`, so it
/// need not appear in a command line.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Whether `text` names a PostgreSQL database rather than a file.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a URL, or throws `EventStoreError` (`invalidEvent`) saying what is wrong with it
    /// (the password never appears in the message).
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func refuse(_ reason: String) -> EventStoreError {
            EventStoreError(
                code: .invalidEvent,
                message: "\(Self.redacted(text)) is not a usable PostgreSQL URL: \(reason) "
                    + "(expected postgres://user:password@host:port/database)")
        }
        guard Self.isURL(text) else { throw refuse("it does not start with postgres://") }
        guard let components = URLComponents(string: text) else { throw refuse("it does not parse as a URL") }
        guard let host = components.host, !host.isEmpty else { throw refuse("it names no host") }
        guard let user = components.user, !user.isEmpty else { throw refuse("it names no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw refuse("it names no database (the path)") }
        if let query = components.query, !query.isEmpty {
            throw refuse("options after ? are not supported (\(query.prefix(40)))")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw refuse("port \(port) is out of range") }
        self.init(
            host: host, port: port, user: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? user,
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
                ?? environment["PGPASSWORD"],
            database: database.removingPercentEncoding ?? database)
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)"
    }

    /// `text` with anything between `:` and `@` in its authority replaced, for messages about a
    /// URL that did not parse.
    public static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"),
            let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
        else { return String(text.prefix(200)) }
        return String((text[..<colon] + ":***" + text[at...]).prefix(200))
    }
}
