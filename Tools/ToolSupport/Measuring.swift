import Foundation

/// Memory figures of a process, from `/proc/<pid>/status`.
public enum ProcessMemory {
    /// A size field of the status file in bytes — `VmRSS` (resident now), `VmHWM` (the peak,
    /// which starts afresh at `exec`) — or nil when the process or the field is gone.
    public static func bytes(_ field: String, of process: String = "self") -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let kib = line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return kib.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
