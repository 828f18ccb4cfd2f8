import Foundation
import Ticketlog

/// Where a log in PostgreSQL lives: `postgres://user:password@host:port/database` (also
/// `postgresql://`), as libpq spells it. The password may instead come from `PGPASSWORD`, so it
/// need not appear in a command line.
///
/// TLS as libpq names it: `?sslmode=require` (encrypted, the server not verified),
/// `verify-ca` (its certificate chain verified), `verify-full` (and its name), with
/// `sslrootcert=PATH` for the authority that signed the server's certificate (default: the
/// system's). Without `sslmode` the connection is not encrypted (a warning is logged when the
/// host is not loopback). `prefer` and `allow`, which fall back to plaintext without a word, are
/// refused.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// A PEM file with the certificate authority to trust (`sslrootcert`).
    public var rootCertificate: String?

    /// How the connection is protected (libpq's `sslmode`).
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        case disable
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public init(
        host: String, port: Int = 5432, user: String, password: String?, database: String, tls: TLSMode = .disable,
        rootCertificate: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
    }

    /// Whether the host is this machine (where an unencrypted connection is expected).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
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
        var tls = TLSMode.disable
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                if value == "prefer" || value == "allow" {
                    throw refuse(
                        "sslmode=\(value) falls back to an unencrypted connection without a word; "
                            + "use require, verify-ca or verify-full (or disable)")
                }
                guard let mode = TLSMode(rawValue: value) else {
                    throw refuse(
                        "sslmode \(value.prefix(40).debugDescription) is none of "
                            + TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
                }
                tls = mode
            case "sslrootcert":
                guard !value.isEmpty else { throw refuse("sslrootcert names no file") }
                rootCertificate = value
            default:
                throw refuse(
                    "the option \(item.name.prefix(40).debugDescription) is not supported (sslmode and sslrootcert are)"
                )
            }
        }
        if rootCertificate != nil && tls == .disable { throw refuse("sslrootcert without sslmode") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw refuse("port \(port) is out of range") }
        self.init(
            host: host, port: port, user: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? user,
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
                ?? environment["PGPASSWORD"],
            database: database.removingPercentEncoding ?? database, tls: tls, rootCertificate: rootCertificate)
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)" + (tls == .disable ? "" : "?sslmode=\(tls.rawValue)")
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
