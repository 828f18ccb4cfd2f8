import Foundation

/// A point in time with microsecond precision, stored as an integer so that it encodes the same
/// way on every platform and round-trips exactly.
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    /// `date`, truncated to whole microseconds.
    public init(_ date: Date) {
        self.microsecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
    }

    /// Parses ISO 8601 with or without fractional seconds (`2026-11-27T12:54:04Z`,
    /// `2026-11-27T12:54:04.123456+01:00`), or a date alone (`2026-11-27`, midnight UTC).
    /// Returns `nil` for anything else.
    public init?(iso8601 text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // Foundation's parser is lenient (hour 25 becomes the next day): check the shape and
        // the clock fields first.
        guard
            let match = trimmed.wholeMatch(
                of: /\d{4}-\d{2}-\d{2}(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]\d{2}:\d{2}))?/)
        else { return nil }
        if let hour = match.1, let minute = match.2, let second = match.3,
            Int(hour)! > 23 || Int(minute)! > 59 || Int(second)! > 59
        {
            return nil
        }
        if let fraction = match.4,
            let date = try? Date(trimmed, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        {
            // Parsing goes through a Double; take the microseconds from the text as written.
            let micros = Int64(String(fraction.prefix(6)).padding(toLength: 6, withPad: "0", startingAt: 0)) ?? 0
            let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
            self.init(microsecondsSinceEpoch: seconds * 1_000_000 + micros)
        } else if let date = (try? Date(trimmed, strategy: Date.ISO8601FormatStyle()))
            ?? (try? Date(trimmed, strategy: Date.ISO8601FormatStyle().year().month().day()))
        {
            self.init(date)
        } else {
            return nil
        }
    }

    /// The current time, truncated to whole microseconds.
    public static var now: Timestamp { Timestamp(Date()) }

    public var date: Date {
        Date(timeIntervalSince1970: Double(microsecondsSinceEpoch) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    public init(from decoder: any Decoder) throws {
        microsecondsSinceEpoch = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(microsecondsSinceEpoch)
    }

    /// ISO 8601 in UTC with microseconds, e.g. `2026-11-27T12:54:04.123456Z`.
    public var description: String {
        let seconds = microsecondsSinceEpoch.floorDivided(by: 1_000_000)
        let micros = microsecondsSinceEpoch - seconds * 1_000_000
        let base = Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601)
        // `base` ends in "Z"; put the fraction before it.
        let fraction = String(micros).leftPadded(to: 6)
        return "\(base.dropLast()).\(fraction)Z"
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
