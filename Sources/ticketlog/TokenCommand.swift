import ArgumentParser
import Foundation
import Ticketlog
import TicketlogServer

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a caller token for the HTTP API (HS256 with sub, role, iat, exp).",
        discussion: """
            Signs with the secret in --secret-file or $TICKETLOG_AUTH_SECRET (the one the server \
            checks tokens with), or with --development, the public development secret of \
            `ticketlog serve --development`.

            Example:
              ticketlog token --subject kim --role creator --development
            """
    )

    @Option(help: "The user id (the token's sub).")
    var subject: String

    @Option(help: "admin, agent, brand or creator.")
    var role: Actor.Role

    @Option(help: "Lifetime in seconds.")
    var lifetime: Int = 3_600

    @Option(help: ArgumentHelp("A file holding the HS256 secret (default: $TICKETLOG_AUTH_SECRET).", valueName: "path"))
    var secretFile: String?

    @Flag(help: "Sign with the public development secret (for `ticketlog serve --development`).")
    var development = false

    func validate() throws {
        if role == .system { throw ValidationError("role must be admin, agent, brand or creator") }
        if lifetime < 1 { throw ValidationError("--lifetime must be at least 1 second") }
        if let problem = TextRule.problem(subject, "--subject", limit: 255) { throw ValidationError(problem) }
    }

    func run() async throws {
        let secret = try Secrets.read(file: secretFile, option: "--secret-file", variable: "TICKETLOG_AUTH_SECRET")
        guard let key = secret ?? (development ? Secrets.developmentAuthSecret : nil) else {
            Terminal.error(
                "no secret to sign with: set TICKETLOG_AUTH_SECRET or --secret-file, or pass --development for a development server"
            )
            throw ExitCode(2)
        }
        print(
            try await TicketlogServer.callerToken(
                subject: subject, role: role, secret: key, lifetime: .seconds(lifetime)))
    }
}

extension Actor.Role: ExpressibleByArgument {}
