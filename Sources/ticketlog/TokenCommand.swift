import ArgumentParser
import Foundation
import Ticketlog
import TicketlogServer

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a caller token for the HTTP API (HS256 with sub, role, iat, exp).",
        discussion: "Signs with --secret, or $TICKETLOG_AUTH_SECRET, or the development secret `ticketlog serve` uses without one."
    )

    @Option(help: "The user id (the token's sub).")
    var subject: String

    @Option(help: "admin, agent, brand or creator.")
    var role: Actor.Role

    @Option(help: "Lifetime in seconds.")
    var lifetime: Int = 3_600

    @Option(help: "The HS256 secret (default: $TICKETLOG_AUTH_SECRET, else the development secret).")
    var secret: String?

    func validate() throws {
        if role == .system { throw ValidationError("role must be admin, agent, brand or creator") }
        if lifetime < 1 { throw ValidationError("--lifetime must be at least 1 second") }
    }

    func run() async throws {
        let key = secret ?? ProcessInfo.processInfo.environment["TICKETLOG_AUTH_SECRET"] ?? ServeCommand.developmentSecret
        print(try await TicketlogServer.callerToken(subject: subject, role: role, secret: key, lifetime: .seconds(lifetime)))
    }
}

extension Actor.Role: ExpressibleByArgument {}
