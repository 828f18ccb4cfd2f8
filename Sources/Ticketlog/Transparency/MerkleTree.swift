import Crypto

/// The Merkle tree of RFC 6962 / RFC 9162 (§2.1): `SHA-256(0x00 ‖ entry)` for a leaf,
/// `SHA-256(0x01 ‖ left ‖ right)` for a node, `SHA-256("")` for the empty tree, and the tree of
/// `n` leaves split at the largest power of two below `n`.
///
/// The log's tree has one leaf per event, in position order (leaf index = position − 1); an
/// event's entry is its line as `ticketlog read` prints it (ARCHITECTURE.md, "Merkle tree and
/// checkpoints"). The verification functions here take nothing from the log: they are what an
/// auditor's tool does with a proof, a leaf and a signed root.
public enum MerkleTree {
    /// The root of the empty tree: SHA-256 of no bytes.
    public static let emptyRoot: [UInt8] = Array(SHA256.hash(data: [UInt8]()))

    /// The hash of a leaf whose entry is `entry`.
    public static func leafHash(_ entry: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        hasher.update(data: entry)
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// The hash of an interior node.
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(1)) { hasher.update(bufferPointer: $0) }
        hasher.update(data: left)
        hasher.update(data: right)
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// The root of the tree over `leaves` (leaf hashes), by the RFC's recursive definition.
    public static func root(leaves: [[UInt8]]) -> [UInt8] {
        guard !leaves.isEmpty else { return emptyRoot }
        return try! subtreeHash(start: 0, count: Int64(leaves.count)) { level, index in
            fold(Array(leaves[Int(index << level)..<Int((index + 1) << level)]))
        }
    }

    /// The largest power of two smaller than `count` (which must be at least 2).
    static func split(_ count: Int64) -> Int64 {
        precondition(count >= 2)
        return Int64(1) << (63 - (count - 1).leadingZeroBitCount)
    }

    /// The root of a perfect subtree from its leaf hashes (a power of two of them).
    static func fold(_ leaves: [[UInt8]]) -> [UInt8] {
        var level = leaves
        while level.count > 1 {
            var next: [[UInt8]] = []
            next.reserveCapacity(level.count / 2)
            var index = 0
            while index + 1 < level.count {
                next.append(nodeHash(level[index], level[index + 1]))
                index += 2
            }
            level = next
        }
        return level[0]
    }

    /// The hash of the leaves `start ..< start + count`, as the RFC splits them, given the hash
    /// of any complete, aligned subtree (`perfect(level, index)`: the leaves
    /// `index · 2^level ..< (index + 1) · 2^level`).
    static func subtreeHash(
        start: Int64, count: Int64, perfect: (_ level: Int, _ index: Int64) throws -> [UInt8]
    ) throws -> [UInt8] {
        if count & (count - 1) == 0 && start % count == 0 {
            let level = count.trailingZeroBitCount
            return try perfect(level, start >> level)
        }
        let k = split(count)
        return nodeHash(
            try subtreeHash(start: start, count: k, perfect: perfect),
            try subtreeHash(start: start + k, count: count - k, perfect: perfect))
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 §2.1.1
    /// `PATH`): sibling first, the root's child last.
    static func inclusionPath(
        index: Int64, size: Int64, perfect: (_ level: Int, _ index: Int64) throws -> [UInt8]
    ) throws -> [[UInt8]] {
        precondition(index >= 0 && index < size)
        var path: [[UInt8]] = []
        // Walk down from the root, remembering the other side of each split; the path is that,
        // reversed.
        var start: Int64 = 0
        var count = size
        var offset = index
        while count > 1 {
            let k = split(count)
            if offset < k {
                path.append(try subtreeHash(start: start + k, count: count - k, perfect: perfect))
                count = k
            } else {
                path.append(try subtreeHash(start: start, count: k, perfect: perfect))
                start += k
                offset -= k
                count -= k
            }
        }
        return path.reversed()
    }

    /// The consistency proof between the trees of the first `oldSize` and `newSize` leaves
    /// (RFC 6962 §2.1.2 `PROOF`); empty when the sizes are equal or the old tree is empty.
    static func consistencyPath(
        oldSize: Int64, newSize: Int64, perfect: (_ level: Int, _ index: Int64) throws -> [UInt8]
    ) throws -> [[UInt8]] {
        precondition(oldSize >= 0 && oldSize <= newSize)
        guard oldSize > 0, oldSize < newSize else { return [] }
        var proof: [[UInt8]] = []
        var start: Int64 = 0
        var count = newSize
        var m = oldSize
        var complete = true
        while m != count {
            let k = split(count)
            if m <= k {
                proof.append(try subtreeHash(start: start + k, count: count - k, perfect: perfect))
                count = k
            } else {
                proof.append(try subtreeHash(start: start, count: k, perfect: perfect))
                start += k
                m -= k
                count -= k
                complete = false
            }
        }
        if !complete {
            proof.append(try subtreeHash(start: start, count: count, perfect: perfect))
        }
        return proof.reversed()
    }

    /// Whether `path` proves that `leaf` is leaf `index` of the tree of `size` leaves with root
    /// `root` (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(leaf: [UInt8], index: Int64, size: Int64, path: [[UInt8]], root: [UInt8])
        -> Bool
    {
        guard index >= 0, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in path {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Whether `proof` shows that the tree of `oldSize` leaves with root `oldRoot` is a prefix
    /// of the tree of `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(
        oldSize: Int64, newSize: Int64, oldRoot: [UInt8], newRoot: [UInt8], proof: [[UInt8]]
    ) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty && oldRoot == emptyRoot }
        guard !proof.isEmpty else { return false }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }
}

/// The right edge of a Merkle tree: the roots of the perfect subtrees its leaves fall into (one
/// per set bit of the size). Enough to append a leaf and to compute the root, in memory of at
/// most 64 hashes; the writer keeps it in `meta`, committed with the events.
///
/// It also keeps the first ``hintBytes`` bytes of each leaf hash of the current, incomplete tile
/// of ``hintTile`` leaves, handed out when the tile completes: a hint (not a proof) of which
/// leaf in a tile changed, for `verify --checkpoint`.
struct MerkleEdge: Equatable, Sendable {
    /// Leaves per tile of hints.
    static let hintTile: Int64 = 64
    /// Bytes kept of each leaf hash as its hint.
    static let hintBytes = 4

    private(set) var size: Int64 = 0
    /// By level: the root of the perfect subtree of `2^level` leaves when bit `level` of `size`
    /// is set, empty otherwise.
    private var levels: [[UInt8]] = []
    /// The hints of the leaves of the incomplete tile, in order.
    private var tileHints: [UInt8] = []

    init() {}

    /// Adds a leaf; `completed` gets every perfect subtree the leaf completes (level ≥ 1).
    /// Returns the hints of the tile the leaf completes, if it completes one.
    @discardableResult
    mutating func append(_ leaf: [UInt8], completed: (_ level: Int, _ index: Int64, _ hash: [UInt8]) throws -> Void)
        rethrows -> [UInt8]?
    {
        tileHints += leaf.prefix(Self.hintBytes)
        var hash = leaf
        var level = 0
        var index = size
        while size >> level & 1 == 1 {
            hash = MerkleTree.nodeHash(levels[level], hash)
            levels[level] = []
            level += 1
            index >>= 1
            try completed(level, index, hash)
        }
        while levels.count <= level { levels.append([]) }
        levels[level] = hash
        size += 1
        guard size % Self.hintTile == 0 else { return nil }
        defer { tileHints.removeAll(keepingCapacity: true) }
        return tileHints
    }

    /// The tree's root.
    var root: [UInt8] {
        var result: [UInt8]?
        for level in levels.indices where size >> level & 1 == 1 {
            result = result.map { MerkleTree.nodeHash(levels[level], $0) } ?? levels[level]
        }
        return result ?? MerkleTree.emptyRoot
    }

    /// The stored form: the size as 8 bytes big-endian, the hashes from the lowest set bit up,
    /// then the hints of the incomplete tile.
    var bytes: [UInt8] {
        var out = withUnsafeBytes(of: size.bigEndian) { Array($0) }
        for level in levels.indices where size >> level & 1 == 1 { out += levels[level] }
        return out + tileHints
    }

    /// The edge of its stored form; `nil` when the bytes do not fit the size they state.
    init?(bytes: [UInt8]) {
        guard bytes.count >= 8 else { return nil }
        let size = bytes[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let hints = Int(size % Self.hintTile) * Self.hintBytes
        guard size >= 0, bytes.count == 8 + size.nonzeroBitCount * 32 + hints else { return nil }
        tileHints = Array(bytes.suffix(hints))
        self.size = size
        var offset = 8
        for level in 0..<(64 - size.leadingZeroBitCount) {
            if size >> level & 1 == 1 {
                levels.append(Array(bytes[offset..<offset + 32]))
                offset += 32
            } else {
                levels.append([])
            }
        }
    }
}
