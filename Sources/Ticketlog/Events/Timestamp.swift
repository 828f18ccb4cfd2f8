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
            // The whole seconds: the parsed time less the fraction, to the nearest (a Double of
            // a year-9999 time with six digits of fraction rounds into the next second).
            let seconds = Int64((date.timeIntervalSince1970 - Double(micros) / 1_000_000).rounded())
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

    /// ISO 8601 in UTC with six fractional digits (`2026-11-27T12:54:04.123456Z`), spelled by
    /// arithmetic: every event of an API answer or an export has two of them, and Foundation's
    /// formatter was a twentieth of the server's CPU for a page of messages. Years before 1583
    /// (Foundation's calendar is Julian before October 1582) or after 9999 go through Foundation
    /// as before.
    public var description: String {
        let date = civil
        guard (1_583...9_999).contains(date.year) else { return foundationDescription }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 27) { buffer in
            func put(_ value: Int64, digits: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            let second = date.secondOfDay
            put(date.year, digits: 4, at: 0)
            buffer[4] = UInt8(ascii: "-")
            put(date.month, digits: 2, at: 5)
            buffer[7] = UInt8(ascii: "-")
            put(date.day, digits: 2, at: 8)
            buffer[10] = UInt8(ascii: "T")
            put(second / 3_600, digits: 2, at: 11)
            buffer[13] = UInt8(ascii: ":")
            put(second / 60 % 60, digits: 2, at: 14)
            buffer[16] = UInt8(ascii: ":")
            put(second % 60, digits: 2, at: 17)
            buffer[19] = UInt8(ascii: ".")
            put(date.microsecond, digits: 6, at: 20)
            buffer[26] = UInt8(ascii: "Z")
            return String(decoding: UnsafeBufferPointer(buffer), as: UTF8.self)
        }
    }

    /// ``description`` through Foundation's ISO 8601 format.
    var foundationDescription: String {
        let seconds = microsecondsSinceEpoch.floorDivided(by: 1_000_000)
        let micros = microsecondsSinceEpoch - seconds * 1_000_000
        let base = Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601)
        // `base` ends in "Z"; put the fraction before it.
        let fraction = String(micros).leftPadded(to: 6)
        return "\(base.dropLast()).\(fraction)Z"
    }

    /// The UTC date (proleptic Gregorian calendar) and time of day, by arithmetic: H. Hinnant's
    /// `civil_from_days` on the day count.
    var civil: (year: Int64, month: Int64, day: Int64, secondOfDay: Int64, microsecond: Int64) {
        let microsecondsPerDay: Int64 = 86_400_000_000
        let days = microsecondsSinceEpoch.floorDivided(by: microsecondsPerDay)
        let withinDay = microsecondsSinceEpoch - days * microsecondsPerDay
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, withinDay / 1_000_000, withinDay % 1_000_000)
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
