import Foundation

/// Reads an event from its row's columns and stored body without `JSONDecoder`: the path every
/// read, rebuild, export and verify takes, about ten times cheaper per event.
///
/// It accepts only the exact form ``CanonicalWriter`` writes for the known event types (members
/// in key order, strings only where the writer puts strings, no `null`s, no extra members) and
/// answers `nil` for anything else — a payload type this build does not know, a body written
/// some other way — so that the caller decodes the spliced canonical JSON the general way. On
/// what it accepts, both ways give the same event (tested on generated events of every type).
enum StoredBodyDecoder {
    static func decode(_ stored: [UInt8], columns: EventColumns, position: Int64, version: Int64) -> RecordedEvent? {
        guard let stream = StreamID(rawValue: columns.stream) else { return nil }
        return stored.withUnsafeBufferPointer { bytes -> RecordedEvent? in
            var scanner = Scanner(bytes: bytes)
            guard scanner.take(UInt8(ascii: "{")), var key = scanner.string() else { return nil }
            var causation: UUID?
            var correlation: UUID?
            if key == "causationId" {
                guard let (id, next) = scanner.uuidThenKey() else { return nil }
                (causation, key) = (id, next)
            }
            if key == "correlationId" {
                guard let (id, next) = scanner.uuidThenKey() else { return nil }
                (correlation, key) = (id, next)
            }
            guard key == "origin", scanner.take(UInt8(ascii: ":")), let origin = scanner.origin(),
                scanner.take(UInt8(ascii: ",")), scanner.string() == "payload", scanner.take(UInt8(ascii: ":")),
                let payload = scanner.payload(EventType(rawValue: columns.type)), scanner.take(UInt8(ascii: "}")),
                scanner.atEnd
            else { return nil }
            return RecordedEvent(
                position: position, stream: stream, version: version, id: columns.id, actor: columns.actor,
                occurredAt: Timestamp(microsecondsSinceEpoch: columns.occurredAt),
                recordedAt: Timestamp(microsecondsSinceEpoch: columns.recordedAt), origin: origin,
                correlationID: correlation, causationID: causation, payload: payload)
        }
    }

    /// The members each object may have, in order (built once: a literal is an allocation per call).
    private enum Keys {
        static let localOrigin = Array(#"{"kind":"local"}"#.utf8)
        static let origin: [(String, required: Bool)] = [("kind", true), ("messageId", false), ("webhookId", false)]
        static let ticketOpened: [(String, required: Bool)] = [("brand", true), ("creator", true), ("title", true)]
        static let agentChanged: [(String, required: Bool)] = [("agent", true)]
        static let memberJoined: [(String, required: Bool)] = [("role", true), ("user", true)]
        static let memberLeft: [(String, required: Bool)] = [("user", true)]
        static let messageEdited: [(String, required: Bool)] = [("messageId", true), ("text", true)]
        static let messageDeleted: [(String, required: Bool)] = [("messageId", true)]
        static let statusChanged: [(String, required: Bool)] = [("from", true), ("note", false), ("to", true)]
        static let deliverablePushed: [(String, required: Bool)] = [
            ("deliverableId", true), ("kind", true), ("note", false), ("title", true), ("url", true),
        ]
        static let attachment: [(String, required: Bool)] = [("kind", true), ("title", false), ("url", true)]
    }

    /// A cursor over JSON written without whitespace.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// `:"<uuid>","<next key>"`: an id member's value and the key after it.
        mutating func uuidThenKey() -> (UUID, String)? {
            guard take(UInt8(ascii: ":")), let text = string(), let id = UUID(uuidString: text),
                take(UInt8(ascii: ",")), let next = string()
            else { return nil }
            return (id, next)
        }

        func peek(_ byte: UInt8) -> Bool {
            index < bytes.count && bytes[index] == byte
        }

        /// A JSON string; `nil` when there is none here or it is malformed.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")), index < bytes.count else { return nil }
            let start = index
            let base = bytes.baseAddress!
            guard let found = memchr(base + start, Int32(UInt8(ascii: "\"")), bytes.count - start) else { return nil }
            let quote = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            // The common case: no escape and no control character before the first quote, so it
            // ends the string: one copy.
            let run = UnsafeBufferPointer(rebasing: bytes[start..<quote])
            if let ascii = StringRun.plainIsASCII(run) {
                index = quote + 1
                return Self.text(run, ascii: ascii)
            }
            var utf8: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return utf8.withUnsafeBufferPointer { Self.text($0, ascii: false) }
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0c)
                    case UInt8(ascii: "n"): utf8.append(0x0a)
                    case UInt8(ascii: "r"): utf8.append(0x0d)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(),
                                (0xDC00..<0xE000).contains(low)
                            else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        return nil
                    }
                default:
                    if byte < 0x20 { return nil }
                    utf8.append(byte)
                }
            }
            return nil
        }

        /// The string of valid UTF-8 bytes; `nil` for invalid UTF-8 (which `JSONDecoder`
        /// refuses too). Not `String(validating:as:)`: generic, it looks up type metadata on
        /// every call, a tenth of a rebuild's time.
        private static func text(_ utf8: UnsafeBufferPointer<UInt8>, ascii: Bool) -> String? {
            var text = String(decoding: utf8, as: UTF8.self)
            // Decoding repairs invalid UTF-8 with U+FFFD, so the bytes differ exactly when some
            // were invalid; ASCII needs no check.
            if ascii || utf8.isEmpty { return text }
            let same =
                text.utf8.count == utf8.count
                && text.withUTF8 { memcmp($0.baseAddress!, utf8.baseAddress!, utf8.count) == 0 }
            return same ? text : nil
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }

        /// An object whose members are all strings, in the order given by `keys` (each optional
        /// or not as `keys` says); `nil` for any other member, order or value.
        mutating func fields(_ keys: [(String, required: Bool)]) -> [String?]? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var values = [String?](repeating: nil, count: keys.count)
            var next = 0
            var first = true
            while !take(UInt8(ascii: "}")) {
                guard first || take(UInt8(ascii: ",")), let key = string(), take(UInt8(ascii: ":")) else { return nil }
                first = false
                while next < keys.count, keys[next].0 != key {
                    if keys[next].required { return nil }
                    next += 1
                }
                guard next < keys.count, let value = string() else { return nil }
                values[next] = value
                next += 1
            }
            for index in next..<keys.count where keys[index].required { return nil }
            return values
        }

        mutating func origin() -> Origin? {
            // Most events are local: their origin is always these bytes.
            let local = Keys.localOrigin
            if index + local.count <= bytes.count,
                local.withUnsafeBufferPointer({ memcmp(bytes.baseAddress! + index, $0.baseAddress!, local.count) == 0 })
            {
                index += local.count
                return .local
            }
            guard let values = fields(Keys.origin) else { return nil }
            switch values[0] {
            case "local": return values[1] == nil && values[2] == nil ? .local : nil
            case "stream": return .streamChat(webhookID: values[2], messageID: values[1])
            default: return nil
            }
        }

        mutating func payload(_ type: EventType) -> EventPayload? {
            switch type {
            case .ticketOpened:
                guard let v = fields(Keys.ticketOpened) else { return nil }
                return .ticketOpened(TicketOpened(title: v[2]!, brand: v[0]!, creator: v[1]!))
            case .agentAssigned:
                guard let v = fields(Keys.agentChanged) else { return nil }
                return .agentAssigned(AgentAssigned(agent: v[0]!))
            case .agentUnassigned:
                guard let v = fields(Keys.agentChanged) else { return nil }
                return .agentUnassigned(AgentUnassigned(agent: v[0]!))
            case .memberJoined:
                guard let v = fields(Keys.memberJoined), let role = Actor.Role(rawValue: v[0]!) else {
                    return nil
                }
                return .memberJoined(MemberJoined(user: v[1]!, role: role))
            case .memberLeft:
                guard let v = fields(Keys.memberLeft) else { return nil }
                return .memberLeft(MemberLeft(user: v[0]!))
            case .messagePosted:
                return messagePosted()
            case .messageEdited:
                guard let v = fields(Keys.messageEdited) else { return nil }
                return .messageEdited(MessageEdited(messageID: v[0]!, text: v[1]!))
            case .messageDeleted:
                guard let v = fields(Keys.messageDeleted) else { return nil }
                return .messageDeleted(MessageDeleted(messageID: v[0]!))
            case .statusChanged:
                guard let v = fields(Keys.statusChanged) else { return nil }
                return .statusChanged(StatusChanged(from: v[0]!, to: v[2]!, note: v[1]))
            case .deliverablePushed:
                guard
                    let v = fields(Keys.deliverablePushed)
                else { return nil }
                return .deliverablePushed(
                    DeliverablePushed(deliverableID: v[0]!, title: v[3]!, url: v[4]!, kind: v[1]!, note: v[2]))
            default:
                return nil
            }
        }

        /// `{["attachments":[{kind,title?,url},…],]"messageId":…,"text":…}`; attachments only when
        /// there are any, as the writer leaves an empty list out.
        private mutating func messagePosted() -> EventPayload? {
            guard take(UInt8(ascii: "{")), var key = string() else { return nil }
            var attachments: [MessagePosted.Attachment] = []
            if key == "attachments" {
                guard take(UInt8(ascii: ":")), take(UInt8(ascii: "[")), !peek(UInt8(ascii: "]")) else { return nil }
                repeat {
                    guard let v = fields(Keys.attachment) else { return nil }
                    attachments.append(MessagePosted.Attachment(kind: v[0]!, url: v[2]!, title: v[1]))
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "]")), take(UInt8(ascii: ",")), let next = string() else { return nil }
                key = next
            }
            guard key == "messageId", take(UInt8(ascii: ":")), let messageID = string(), take(UInt8(ascii: ",")),
                string() == "text", take(UInt8(ascii: ":")), let text = string(), take(UInt8(ascii: "}"))
            else { return nil }
            return .messagePosted(MessagePosted(messageID: messageID, text: text, attachments: attachments))
        }
    }
}

/// The characters of a JSON string up to its first quote, eight bytes at a time.
private enum StringRun {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether the bytes are all ASCII, when they hold neither a backslash nor a control
    /// character (they are then the whole string, as written); `nil` when they hold either.
    static func plainIsASCII(_ run: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard let base = run.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var seen: UInt64 = 0
        var index = 0
        while index + 8 <= run.count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let backslashes = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
            // Non-zero exactly when some byte is zero (here: a backslash) or below 0x20.
            let escaped = (backslashes &- ones) & ~backslashes & highs
            let control = (word &- ones &* 0x20) & ~word & highs
            if escaped | control != 0 { return nil }
            seen |= word
            index += 8
        }
        while index < run.count {
            let byte = run[index]
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            seen |= UInt64(byte)
            index += 1
        }
        return seen & highs == 0
    }
}
