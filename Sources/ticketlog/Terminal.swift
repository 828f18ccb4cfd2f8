import Foundation
import Synchronization
import Ticketlog

/// Output helpers: lines for people on stdout, errors as one line on stderr, progress only when
/// stderr is a terminal. Every line goes through ``TextRule/escaped(_:)``: text from the log or
/// from Stream (names, notes, titles, reasons) can hold anything, and must not be able to start a
/// line of its own or send escape sequences to the operator's terminal.
enum Terminal {
    /// One line for people on standard output.
    static func line(_ text: String) {
        print(TextRule.escaped(text))
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("ticketlog: \(TextRule.escaped(message))\n".utf8))
    }

    static var isInteractive: Bool { isatty(STDERR_FILENO) == 1 }

    /// A line saying what a long step is doing, on stderr when it is a terminal.
    static func status(_ message: String) {
        guard isInteractive else { return }
        FileHandle.standardError.write(Data("\(TextRule.escaped(message))\n".utf8))
    }

    static func progress(label: String) -> Progress {
        Progress(label: label, enabled: isInteractive)
    }

    /// A one-line progress display on stderr, redrawn at most ten times a second.
    final class Progress: Sendable {
        private let label: String
        private let enabled: Bool
        private let lastDraw = Mutex<ContinuousClock.Instant?>(nil)

        init(label: String, enabled: Bool) {
            self.label = label
            self.enabled = enabled
        }

        func update(done: Int64, total: Int64, unit: String = "events") {
            guard enabled else { return }
            let now = ContinuousClock.now
            let due = lastDraw.withLock { last in
                if let last, now - last < .milliseconds(100), done < total { return false }
                last = now
                return true
            }
            guard due else { return }
            let percent = total > 0 ? done * 100 / total : 100
            let line = "\r\(label) \(done)/\(total) \(unit) (\(percent)%)\u{1B}[K"
            FileHandle.standardError.write(Data(line.utf8))
        }

        func finish() {
            guard enabled, lastDraw.withLock({ $0 != nil }) else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        }
    }
}
