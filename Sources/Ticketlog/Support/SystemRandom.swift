import Synchronization

#if canImport(Darwin)
    import Darwin
#else
    import CSystemRandom
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif
#endif

/// Random bytes from the operating system's CSPRNG (getrandom(2), arc4random_buf on Darwin),
/// drawn 4 KiB at a time: a nonce per sealed field would otherwise cost a system call each
/// (issue 17's profile: a third of the sealing time). For public values only — nonces, key ids
/// and the random bits of event and message ids; key material comes from swift-crypto directly.
enum SystemRandom {
    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096

        mutating func take(_ count: Int, into out: UnsafeMutableRawBufferPointer) {
            var written = 0
            while written < count {
                if used == bytes.count {
                    bytes.withUnsafeMutableBytes { SystemRandom.fill($0) }
                    used = 0
                }
                let chunk = min(count - written, bytes.count - used)
                bytes.withUnsafeBytes { source in
                    out.baseAddress!.advanced(by: written).copyMemory(
                        from: source.baseAddress!.advanced(by: used), byteCount: chunk)
                }
                // Drawn bytes are not kept around.
                bytes.withUnsafeMutableBytes { _ = memset($0.baseAddress! + used, 0, chunk) }
                used += chunk
                written += chunk
            }
        }
    }

    private static let pool = Mutex(Pool())

    /// `count` fresh random bytes.
    static func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(random: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// Fills `buffer` with fresh random bytes (a nonce on the stack, without an array).
    static func fill(random buffer: UnsafeMutableRawBufferPointer) {
        pool.withLock { $0.take(buffer.count, into: buffer) }
    }

    private static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Darwin)
            arc4random_buf(buffer.baseAddress!, buffer.count)
        #else
            var filled = 0
            while filled < buffer.count {
                let result = getrandom(buffer.baseAddress!.advanced(by: filled), buffer.count - filled, 0)
                if result < 0 {
                    guard errno == EINTR else { fatalError("getrandom failed: errno \(errno)") }
                    continue
                }
                filled += result
            }
        #endif
    }
}
