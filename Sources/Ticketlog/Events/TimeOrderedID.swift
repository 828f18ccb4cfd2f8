import Foundation

extension UUID {
    /// A new id ordered by time: a UUID of version 7 (RFC 9562), the Unix time in milliseconds
    /// in its first 48 bits, the fraction of the millisecond in the next 12 (RFC 9562's method 3),
    /// 62 random bits after.
    ///
    /// What the library mints for events (``ProposedEvent``'s default id, ``EventStore/Configuration/newID``)
    /// and messages. An event id is kept in a unique index (idempotency): random ids insert all
    /// over that index, so a transaction of 1,000 events writes a page of it for nearly each
    /// event, and more of them the bigger the log; ids ordered by time insert at its end, a page
    /// per hundred events. Any UUID is still accepted: ids made elsewhere (a client's own, a
    /// webhook's derived one) only cost more to insert.
    ///
    /// The random bits come from the kernel's CSPRNG through `SystemRandom`'s pool, drawn 4 KiB
    /// at a time: `SystemRandomNumberGenerator` made a `getrandom` system call per id, one in
    /// the writer's turn for every decided event (a `POST …/messages` mints two ids).
    public static func timeOrdered(at time: Timestamp = .now) -> UUID {
        var random: UInt64 = 0
        withUnsafeMutableBytes(of: &random) { SystemRandom.fill(random: $0) }
        return timeOrdered(at: time, random: random)
    }

    /// The id ``timeOrdered(at:)`` makes at `time` with the 62 random bits taken from `random`:
    /// for generators that must be reproducible (the synthetic desk).
    public static func timeOrdered(at time: Timestamp, random: UInt64) -> UUID {
        let microseconds = max(0, time.microsecondsSinceEpoch)
        let milliseconds = UInt64(microseconds / 1_000) & 0xFFFF_FFFF_FFFF
        // 0..<1000 µs scaled to 12 bits: ids of one millisecond stay in order of their microsecond.
        let fraction = UInt64(microseconds % 1_000) * 4_096 / 1_000
        let high = milliseconds << 16 | 0x7000 | fraction
        let low = 0x8000_0000_0000_0000 | random >> 2
        return UUID(
            uuid: (
                UInt8(truncatingIfNeeded: high >> 56), UInt8(truncatingIfNeeded: high >> 48),
                UInt8(truncatingIfNeeded: high >> 40), UInt8(truncatingIfNeeded: high >> 32),
                UInt8(truncatingIfNeeded: high >> 24), UInt8(truncatingIfNeeded: high >> 16),
                UInt8(truncatingIfNeeded: high >> 8), UInt8(truncatingIfNeeded: high),
                UInt8(truncatingIfNeeded: low >> 56), UInt8(truncatingIfNeeded: low >> 48),
                UInt8(truncatingIfNeeded: low >> 40), UInt8(truncatingIfNeeded: low >> 32),
                UInt8(truncatingIfNeeded: low >> 24), UInt8(truncatingIfNeeded: low >> 16),
                UInt8(truncatingIfNeeded: low >> 8), UInt8(truncatingIfNeeded: low)
            ))
    }
}
