import ArgumentParser
import Foundation

/// Secrets come from a file or the environment, never from the command line: every user of the
/// machine can read a process's arguments (`ps`, `/proc/PID/cmdline`).
enum Secrets {
    /// The built-in development secrets. Public (they are in this source file), so they are used
    /// only with `--development`, which says so loudly.
    static let developmentAuthSecret = "ticketlog-development-secret-change-me"
    static let developmentStreamAPIKey = "development-key"
    static let developmentStreamAPISecret = "ticketlog-development-stream-secret-change-me"

    /// The secret in `file` when one is given (its content without the final line break), else
    /// the environment variable `variable`; `nil` when neither is set.
    ///
    /// - Throws: `ValidationError` naming the option when the file cannot be read or is empty.
    static func read(file: String?, option: String, variable: String) throws -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("\(option): cannot read \(file)")
            }
            var text = String(decoding: data, as: UTF8.self)
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            guard !text.isEmpty else { throw ValidationError("\(option): \(file) is empty") }
            if let mode = (try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? Int,
                mode & 0o077 != 0
            {
                Terminal.error(
                    "warning: \(file) can be read by other users of this machine (mode \(String(mode, radix: 8))); chmod 600 it"
                )
            }
            return text
        }
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return nil }
        return value
    }
}
