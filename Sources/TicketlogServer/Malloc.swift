import CMalloc

/// glibc's malloc as a long-running server wants it; nothing happens on other platforms.
public enum Malloc {
    /// Limits how many arenas glibc's malloc keeps (`mallopt(M_ARENA_MAX, count)`). glibc gives
    /// threads that contend for the heap arenas of their own, up to 8 per core, and every arena
    /// keeps what its threads once used: under load a server's resident memory then climbs for
    /// many minutes while its heap in use does not (measured in ARCHITECTURE.md, "Reliability").
    /// Call before the server's threads start. `false` without glibc, or when glibc refused.
    @discardableResult
    public static func limitArenas(to count: Int) -> Bool {
        #if canImport(Glibc)
            guard count > 0, let value = Int32(exactly: count) else { return false }
            return mallopt(M_ARENA_MAX, value) == 1
        #else
            return false
        #endif
    }

    /// The bytes the process's heap has handed out and not taken back: glibc's `mallinfo2`
    /// chunks in use plus its separately mapped large blocks. `nil` without glibc. Resident
    /// memory above it is malloc's free space, code and stacks.
    public static var bytesInUse: Int64? {
        #if canImport(Glibc)
            let info = mallinfo2()
            return Int64(info.uordblks + info.hblkhd)
        #else
            return nil
        #endif
    }
}
