import Foundation
import Ticketlog
import ToolSupport

/// Issue 17's cost of encryption: the batched append without and with a master key, each in a
/// fresh child process, alternating (plain, encrypted, plain, encrypted, …) so that what drifts
/// on a shared machine — other tenants, the page cache, the kernel writing back — falls on both
/// alike. The fastest run of each is compared: noise only ever slows a run down. Every run is
/// reported, so the spread shows.
enum EncryptionMeasurements {
    struct Rows {
        var plain: [Rate] = []
        var encrypted: [Rate] = []
        /// C-exact in commits, run after each plain run (issue 14's target 1b: the plain runs
        /// against it, fastest against fastest, as here).
        var limit: [Double] = []

        var bestPlain: Rate? { plain.max { $0.perSecond < $1.perSecond } }
        var bestEncrypted: Rate? { encrypted.max { $0.perSecond < $1.perSecond } }
        var bestLimit: Double? { limit.max() }
        /// The best encrypted run over the best plain one.
        var ratio: Double {
            guard let plain = bestPlain?.perSecond, plain > 0 else { return 0 }
            return (bestEncrypted?.perSecond ?? 0) / plain
        }
    }

    /// `pairs` alternating runs of `events` events. The last encrypted run's log stays at
    /// `encryptedPath`, encrypted with the master key in `masterKeyFile`. `limit`, when given,
    /// runs after each plain run and returns its events per second.
    static func measure(
        pairs: Int, events: Int, bench: String, work: String, encryptedPath: String, masterKeyFile: String,
        compressionLevel: Int?, limit: (() throws -> Double)? = nil
    ) throws -> Rows {
        var rows = Rows()
        let plainPath = (work as NSString).appendingPathComponent("encryption-plain.sqlite")
        let level = compressionLevel.map { ["--compression-level", String($0)] } ?? []
        for _ in 0..<pairs {
            rows.plain.append(
                try ChildRate.run(
                    bench, ["--child", "append", "--database", plainPath, "--events", String(events)] + level))
            if let limit {
                sync()
                rows.limit.append(try limit())
            }
            rows.encrypted.append(
                try ChildRate.run(
                    bench,
                    [
                        "--child", "append-encrypted", "--database", encryptedPath, "--events", String(events),
                        "--master-key-file", masterKeyFile,
                    ] + level))
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: plainPath + suffix) }
        return rows
    }
}
