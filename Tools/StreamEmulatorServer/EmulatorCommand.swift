import ArgumentParser
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
            channels, members, messages, Stream's error bodies and rate-limit headers. State \
            lives in memory.

            Example:
              stream-emulator --port 9090 --api-key dev-key --api-secret dev-secret-of-at-least-32-bytes
              ticketlog sync --base-url http://127.0.0.1:9090 --stream-api-key dev-key \\
                --stream-api-secret dev-secret-of-at-least-32-bytes --until-caught-up
            """
    )

    @Option(help: "The port to listen on.")
    var port = 9090

    @Option(help: "The API key clients must send.")
    var apiKey = "dev-key"

    @Option(help: "The API secret server tokens must be signed with.")
    var apiSecret = "dev-secret-of-at-least-32-bytes"

    func run() async throws {
        let server = EmulatorServer(StreamEmulator(apiKey: apiKey, apiSecret: apiSecret))
        var logger = Logger(label: "stream-emulator")
        logger.logLevel = .notice
        let app = Application(
            router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        print("stream-emulator on http://127.0.0.1:\(port) (api key \(apiKey))")
        try await app.runService()
    }
}
