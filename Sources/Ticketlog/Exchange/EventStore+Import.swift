import Foundation

/// What an import did.
public struct ImportReport: Hashable, Sendable {
    /// Event lines read (blank lines are skipped).
    public var events: Int
    /// Of those, appended now.
    public var appended: Int
    /// Of those, already in the log (same id and content): skipped.
    public var alreadyStored: Int
}

/// How far an import has come.
public struct ImportProgress: Sendable {
    /// `validating` reads every line first; `appending` then writes.
    public var phase: String
    public var bytesRead: Int64
    public var totalBytes: Int64
}

extension EventStore {
    /// Imports NDJSON events (one ``EventLine`` per line) from the file at `path`.
    ///
    /// Every line is checked before anything is written: a malformed line, an unknown stream id
    /// or an oversized event fails the import with the line number, and the log is unchanged.
    /// Events whose id is already stored are skipped, so importing the same file twice appends
    /// nothing the second time. Each ticket's run of consecutive events is one append; runs of
    /// one batch are committed together.
    public func importEvents(
        fromNDJSON path: String, batchSize: Int = 2_000, progress: (@Sendable (ImportProgress) -> Void)? = nil
    ) async throws -> ImportReport {
        let total = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        // Pass 1: validate everything, so that a bad line cannot leave half an import behind.
        var lines = try LineReader(path: path)
        var lineNumber = 0
        var count = 0
        while let line = lines.next() {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            do {
                let parsed = try EventLine(json: line)
                // The checks an append makes, without compressing what is only being checked.
                _ = try canonicalBody(of: parsed.event, stream: parsed.stream, recordedAt: configuration.clock())
                // Sealed content of another log (issue 17) opens only with that log's keys: taken
                // in, it would be unreadable here, and sealed once more under this log's keys.
                _ = try parsed.event.payload.mappingPersonalFields { field, value in
                    guard SealedField.keyID(of: value) == nil else {
                        throw EventStoreError.invalid(
                            "the \(field) of event \(parsed.event.id.uuidString.lowercased()) is encrypted content of another log (sealed:v1:…), which cannot be imported without that log's keys"
                        )
                    }
                    return value
                }
            } catch let error as EventStoreError {
                throw EventStoreError(
                    code: .invalidEvent, message: "\(path), line \(lineNumber): \(error.message); nothing was imported",
                    cause: error)
            }
            count += 1
            if count % 10_000 == 0 {
                progress?(ImportProgress(phase: "validating", bytesRead: lines.bytesRead, totalBytes: total))
            }
        }
        // Pass 2: append in batches.
        var report = ImportReport(events: 0, appended: 0, alreadyStored: 0)
        lines = try LineReader(path: path)
        var batch: [EventLine] = []
        batch.reserveCapacity(batchSize)
        while let line = lines.next() {
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            batch.append(try EventLine(json: line))
            if batch.count == batchSize {
                report = try await importBatch(batch, into: report)
                batch.removeAll(keepingCapacity: true)
                progress?(ImportProgress(phase: "appending", bytesRead: lines.bytesRead, totalBytes: total))
            }
        }
        report = try await importBatch(batch, into: report)
        progress?(ImportProgress(phase: "appending", bytesRead: total, totalBytes: total))
        return report
    }

    private func importBatch(_ batch: [EventLine], into report: ImportReport) async throws -> ImportReport {
        let runs = StreamAppend.runs(batch.map { ($0.stream, $0.event) })
        var report = report
        report.events += batch.count
        for (run, result) in zip(runs, await append(runs)) {
            switch result {
            case .success(let appended):
                if appended.wasAlreadyStored {
                    report.alreadyStored += run.events.count
                } else {
                    report.appended += run.events.count
                }
            case .failure(let error) where error.code == .duplicateEventID && run.events.count > 1:
                // Part of the run is stored (an import cut off, run again over a changed file):
                // event by event, each idempotent.
                for event in run.events {
                    let appended = try await append(event, to: run.stream)
                    if appended.wasAlreadyStored { report.alreadyStored += 1 } else { report.appended += 1 }
                }
            case .failure(let error):
                throw error
            }
        }
        return report
    }
}
