import Crypto
import Foundation

/// Format 2 keeps an event in two parts: the row's columns (id, stream, type, actor and both
/// times) and a stored body holding the rest of the canonical JSON (`origin`, `payload`, the
/// correlation and causation ids). The canonical JSON — what the chain hashes and `read`
/// prints — is the stored body with the column members merged back in key order: byte for
/// byte what format 1 stored whole.
///
/// Both directions work on the JSON's top-level members without decoding values, so they hold
/// for payloads this build does not know too.
enum StoredBody {
    /// The members spliced in, in key order.
    private enum Spliced: String, CaseIterable {
        case actor, id, occurredAt, position, recordedAt, stream, type, version

        var key: [UInt8] { Array(rawValue.utf8) }
    }

    /// The members the row's columns hold.
    private static let columnMembers: [(Spliced, key: [UInt8])] = [
        Spliced.actor, .id, .occurredAt, .recordedAt, .stream, .type,
    ].map { ($0, $0.key) }
    /// The members of a line of `ticketlog read`: the columns, `position` and `version`.
    private static let lineMembers: [(Spliced, key: [UInt8])] = Spliced.allCases.map { ($0, $0.key) }

    /// The canonical body without the column members; `nil` when `canonical` is not a JSON
    /// object this scanner can split (never for a body the engine wrote).
    static func strip(_ canonical: [UInt8]) -> [UInt8]? {
        split(canonical)?.stored
    }

    /// The stored body of `canonical` (``strip(_:)``) and where its line's members go
    /// (``LineInsertion``); `nil` when `canonical` is not a JSON object with members, or already
    /// has a `position` or `version`.
    static func split(_ canonical: [UInt8]) -> (stored: [UInt8], line: LineInsertion)? {
        guard let members = members(of: canonical), !members.isEmpty else { return nil }
        func firstAfter(_ key: [UInt8]) -> Int? {
            var offset = canonical.count - 1
            for member in members.reversed() {
                let name = canonical[member.key]
                if name.elementsEqual(key) { return nil }
                guard key.lexicographicallyPrecedes(name) else { break }
                offset = member.whole.lowerBound
            }
            return offset
        }
        guard let position = firstAfter(Spliced.position.key), let version = firstAfter(Spliced.version.key) else {
            return nil
        }
        var stored: [UInt8] = [UInt8(ascii: "{")]
        stored.reserveCapacity(canonical.count)
        for member in members where !columnMembers.contains(where: { $0.key.elementsEqual(canonical[member.key]) }) {
            if stored.count > 1 { stored.append(UInt8(ascii: ",")) }
            stored.append(contentsOf: canonical[member.whole])
        }
        stored.append(UInt8(ascii: "}"))
        return (stored, LineInsertion(position: position, version: version, end: canonical.count - 1))
    }

    /// Where an event's line (``line(_:columns:position:version:)``) differs from its canonical
    /// JSON: `"position"` and `"version"` inserted in key order. Lets the writer hash the line
    /// (the event's Merkle leaf) from the canonical JSON it has, without building it.
    struct LineInsertion: Sendable {
        /// Byte offsets in the canonical JSON where each member goes: before the member at that
        /// offset (followed by a comma), or at `end`, the closing brace (after a comma).
        var position: Int
        var version: Int
        var end: Int

        /// The Merkle leaf hash of the line of the event whose canonical JSON is `canonical`.
        func leafHash(of canonical: [UInt8], position: Int64, version: Int64) -> [UInt8] {
            LeafHasher(canonical: canonical, insertion: self).leafHash(
                of: canonical, position: position, version: version)
        }
    }

    /// An event's Merkle leaf hash, started before its position is known: the appending task
    /// hashes `0x00` and the canonical JSON up to where `"position"` goes (most of it: the
    /// payload comes before), and the writer only finishes it (`"position":N,`, the few members
    /// after, `"version":N`): about two SHA-256 blocks in the writer instead of ten.
    struct LeafHasher: Sendable {
        private var prefix: SHA256
        let insertion: LineInsertion

        init(canonical: [UInt8], insertion: LineInsertion) {
            self.insertion = insertion
            prefix = SHA256()
            withUnsafeBytes(of: UInt8(0)) { prefix.update(bufferPointer: $0) }
            canonical.withUnsafeBytes { bytes in
                prefix.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[0..<insertion.position]))
            }
        }

        func leafHash(of canonical: [UInt8], position: Int64, version: Int64) -> [UInt8] {
            var hasher = prefix
            canonical.withUnsafeBytes { bytes in
                Self.member("position", position, atEnd: insertion.position == insertion.end, into: &hasher)
                hasher.update(
                    bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[insertion.position..<insertion.version]))
                Self.member("version", version, atEnd: insertion.version == insertion.end, into: &hasher)
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[insertion.version...]))
            }
            return hasher.finalize().withUnsafeBytes { Array($0) }
        }

        /// `"key":value,` (or `,"key":value` at the end of the object), hashed without building a
        /// string.
        private static func member(_ key: StaticString, _ value: Int64, atEnd: Bool, into hasher: inout SHA256) {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { buffer in
                var count = 0
                func put(_ byte: UInt8) {
                    buffer[count] = byte
                    count += 1
                }
                if atEnd { put(UInt8(ascii: ",")) }
                put(UInt8(ascii: "\""))
                key.withUTF8Buffer { for byte in $0 { put(byte) } }
                put(UInt8(ascii: "\""))
                put(UInt8(ascii: ":"))
                var digits: (UInt64, Int) = (value.magnitude, 0)
                if value < 0 { put(UInt8(ascii: "-")) }
                let start = count
                repeat {
                    put(UInt8(ascii: "0") + UInt8(digits.0 % 10))
                    digits.0 /= 10
                    digits.1 += 1
                } while digits.0 > 0
                var low = start
                var high = count - 1
                while low < high {
                    buffer.swapAt(low, high)
                    low += 1
                    high -= 1
                }
                if !atEnd { put(UInt8(ascii: ",")) }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[0..<count])))
            }
        }
    }

    /// The canonical body: `stored` with the column members merged back in key order; `nil`
    /// when `stored` is not a JSON object.
    static func splice(_ stored: [UInt8], columns: EventColumns) -> [UInt8]? {
        splice(stored, columns: columns, line: nil)
    }

    /// The event's line as `ticketlog read` and the NDJSON export print it (and the JSON of
    /// ``RecordedEvent``): the canonical body with `position` and `version` merged in as well.
    static func line(_ stored: [UInt8], columns: EventColumns, position: Int64, version: Int64) -> [UInt8]? {
        splice(stored, columns: columns, line: (position, version))
    }

    private static func splice(_ stored: [UInt8], columns: EventColumns, line: (position: Int64, version: Int64)?)
        -> [UInt8]?
    {
        guard let members = members(of: stored) else { return nil }
        var out = CanonicalWriter(capacity: stored.count + 160)
        out.byte(UInt8(ascii: "{"))
        var first = true
        func separator(_ out: inout CanonicalWriter) {
            if !first { out.byte(UInt8(ascii: ",")) }
            first = false
        }
        var next = members.startIndex
        func flush(before key: [UInt8], _ out: inout CanonicalWriter) {
            while next < members.endIndex, stored[members[next].key].lexicographicallyPrecedes(key) {
                separator(&out)
                out.append(stored[members[next].whole])
                next += 1
            }
        }
        for (spliced, key) in line == nil ? columnMembers : lineMembers {
            flush(before: key, &out)
            separator(&out)
            out.byte(UInt8(ascii: "\""))
            out.append(key[...])
            out.byte(UInt8(ascii: "\""))
            out.byte(UInt8(ascii: ":"))
            switch spliced {
            case .actor: out.actor(columns.actor)
            case .id: out.uuid(columns.id)
            case .occurredAt: out.integer(columns.occurredAt)
            case .position: out.integer(line!.position)
            case .recordedAt: out.integer(columns.recordedAt)
            case .stream: out.string(columns.stream)
            case .type: out.string(columns.type)
            case .version: out.integer(line!.version)
            }
        }
        while next < members.endIndex {
            separator(&out)
            out.append(stored[members[next].whole])
            next += 1
        }
        out.byte(UInt8(ascii: "}"))
        return out.bytes
    }

    /// One top-level member: where its key's characters are (without quotes) and where the
    /// whole `"key":value` is.
    struct Member {
        var key: Range<Int>
        var whole: Range<Int>
    }

    /// The top-level members of a JSON object written without whitespace (as canonical JSON
    /// is); `nil` for anything else.
    static func members(of bytes: [UInt8]) -> [Member]? {
        bytes.withUnsafeBufferPointer { json -> [Member]? in
            guard json.count >= 2, json.first == UInt8(ascii: "{"), json.last == UInt8(ascii: "}") else { return nil }
            var members: [Member] = []
            var index = 1
            let end = json.count - 1
            if index == end { return members }
            while true {
                let start = index
                guard json[index] == UInt8(ascii: "\""), let keyEnd = skipString(json, from: index) else { return nil }
                let key = (start + 1)..<(keyEnd - 1)
                guard keyEnd < end, json[keyEnd] == UInt8(ascii: ":"),
                    let valueEnd = skipValue(json, from: keyEnd + 1, end: end)
                else { return nil }
                members.append(Member(key: key, whole: start..<valueEnd))
                if valueEnd == end { return members }
                guard json[valueEnd] == UInt8(ascii: ",") else { return nil }
                index = valueEnd + 1
            }
        }
    }

    /// The index after the string starting at `start` (a quote): after the first quote not
    /// escaped, i.e. with an even run of backslashes before it (found with `memchr`: message
    /// texts are most of the bytes every read skips).
    private static func skipString(_ json: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let base = json.baseAddress!
        var index = start + 1
        while index < json.count {
            guard let found = memchr(base + index, Int32(UInt8(ascii: "\"")), json.count - index) else { return nil }
            let quote = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            var backslashes = 0
            while quote - backslashes - 1 > start, json[quote - backslashes - 1] == UInt8(ascii: "\\") {
                backslashes += 1
            }
            if backslashes % 2 == 0 { return quote + 1 }
            index = quote + 1
        }
        return nil
    }

    /// The index after the value starting at `start`, which must end by `end`.
    private static func skipValue(_ json: UnsafeBufferPointer<UInt8>, from start: Int, end: Int) -> Int? {
        guard start < end else { return nil }
        switch json[start] {
        case UInt8(ascii: "\""):
            guard let after = skipString(json, from: start), after <= end else { return nil }
            return after
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < end {
                switch json[index] {
                case UInt8(ascii: "\""):
                    guard let after = skipString(json, from: index) else { return nil }
                    index = after
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < end, json[index] != UInt8(ascii: ","), json[index] != UInt8(ascii: "}") { index += 1 }
            return index == start ? nil : index
        }
    }
}

/// What a format-2 event row holds in columns, as the canonical JSON spells it.
struct EventColumns: Sendable, Equatable {
    var id: UUID
    var stream: String
    var type: String
    var actor: Actor
    var occurredAt: Int64
    var recordedAt: Int64

    init(id: UUID, stream: String, type: String, actor: Actor, occurredAt: Int64, recordedAt: Int64) {
        self.id = id
        self.stream = stream
        self.type = type
        self.actor = actor
        self.occurredAt = occurredAt
        self.recordedAt = recordedAt
    }

    init(_ body: EventBody) {
        self.init(
            id: body.id, stream: body.stream.rawValue, type: body.type.rawValue, actor: body.actor,
            occurredAt: body.occurredAt.microsecondsSinceEpoch, recordedAt: body.recordedAt.microsecondsSinceEpoch)
    }
}
