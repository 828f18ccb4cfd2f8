import Foundation
import Testing

@testable import Ticketlog

/// The key hierarchy of issue 17: a master key, content keys wrapped by it, sealed fields.
@Suite(.timeLimit(.minutes(3))) struct ContentCryptoTests {
    let event = UUID(uuidString: "00000000-0000-4000-8000-000000000001")!
    let scope = ContentKeyScope(subject: "kim", stream: "ticket-1001", period: "2026-12")

    @Test func masterKeysRoundTripAndMalformedOnesAreRefused() throws {
        let master = MasterKey.generate()
        let again = try MasterKey(text: master.text + "\n")
        #expect(again.fingerprint == master.fingerprint && master.fingerprint.count == 16)
        #expect(MasterKey.generate().fingerprint != master.fingerprint)
        for bad in [
            "", "ticketlog-master-key-v1:", "ticketlog-master-key-v1:AAAA",
            "other-key:" + master.text.dropFirst(MasterKey.textPrefix.count),
            master.text.dropLast(2) + "==",
        ] {
            #expect(throws: ContentKeyError.self, "\(bad)") { try MasterKey(text: String(bad)) }
        }
    }

    @Test func contentKeysOpenOnlyWithTheirMasterKeyIdAndScope() throws {
        let master = MasterKey.generate()
        let key = ContentKey.generate(for: scope)
        #expect(key.id.count == 16)
        let wrapped = try key.wrapped(by: master)
        let opened = try ContentKey.unwrap(wrapped, id: key.id, scope: scope, master: master)
        #expect(opened.key == key.key)
        #expect(throws: ContentKeyError.self) {
            try ContentKey.unwrap(wrapped, id: key.id, scope: scope, master: MasterKey.generate())
        }
        #expect(throws: ContentKeyError.self) {
            try ContentKey.unwrap(wrapped, id: ContentKey.generate(for: scope).id, scope: scope, master: master)
        }
        var other = scope
        other.subject = "jo"
        #expect(throws: ContentKeyError.self) {
            try ContentKey.unwrap(wrapped, id: key.id, scope: other, master: master)
        }
        var damaged = wrapped
        damaged[20] ^= 1
        #expect(throws: ContentKeyError.self) {
            try ContentKey.unwrap(damaged, id: key.id, scope: scope, master: master)
        }
    }

    @Test func sealedFieldsOpenOnlyInTheirEventAndField() throws {
        let key = ContentKey.generate(for: scope)
        let text = "Draft is ready — see the cut 🎬"
        let sealed = try SealedField.seal(text, key: key, event: event, path: "text")
        #expect(sealed.hasPrefix("sealed:v1:\(key.id):"))
        #expect(!sealed.contains("Draft"))
        #expect(SealedField.keyID(of: sealed) == key.id[...])
        #expect(try SealedField.open(sealed, key: key, event: event, path: "text") == text)
        // A fresh nonce per field: the same text seals differently.
        #expect(try SealedField.seal(text, key: key, event: event, path: "text") != sealed)
        // Moved to another event or field, or opened with another key: refused.
        #expect(throws: ContentKeyError.self) { try SealedField.open(sealed, key: key, event: UUID(), path: "text") }
        #expect(throws: ContentKeyError.self) { try SealedField.open(sealed, key: key, event: event, path: "note") }
        #expect(throws: ContentKeyError.self) {
            try SealedField.open(sealed, key: ContentKey.generate(for: scope), event: event, path: "text")
        }
        // The bytes a field is bound to, as every log written so far binds them (a change would
        // leave their fields unopenable).
        let path = "attachments.0.url"
        #expect(
            SealedField.associatedData(event: event, path: path)
                == Array("ticketlog sealed field v1\n".utf8) + withUnsafeBytes(of: event.uuid) { Array($0) }
                + [UInt8(ascii: "\n")] + Array(path.utf8))
        #expect(SealedField.keyID(of: "sealed:v1:short:AAAA") == nil)
        #expect(SealedField.keyID(of: text) == nil)
    }

    @Test func monthsByArithmeticAreTheCalendarsMonths() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var random = SeededGenerator(seed: 17)
        let edges: [Int64] = [
            0, -1, 86_400_000_000 - 1, 951_782_400_000_000, 951_868_800_000_000, 1_796_083_199_999_999,
        ]
        let samples: [Int64] =
            (0..<5_000).map { _ in Int64.random(in: -5_000_000_000_000_000...5_000_000_000_000_000, using: &random) }
            + edges
        for microseconds in samples {
            let date = Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
            let parts = calendar.dateComponents([.year, .month], from: date)
            let expected = String(format: "%d-%02d", parts.year!, parts.month!)
            #expect(
                ContentKeyScope.month(of: Timestamp(microsecondsSinceEpoch: microseconds)) == expected,
                "\(microseconds)")
        }
    }

    /// Sealing looks keys up by the month as a number; the key a commit wrote is found again
    /// from its spelled period. Both must name the same month for every time.
    @Test func theSealingLookupAndTheSpelledPeriodNameTheSameMonth() {
        var random = SeededGenerator(seed: 23)
        let samples: [Int64] =
            (0..<5_000).map { _ in Int64.random(in: -5_000_000_000_000_000...5_000_000_000_000_000, using: &random) }
            + [0, -1, 1_796_083_199_999_999, 1_796_083_200_000_000, -62_135_596_800_000_001]
        var months = Set<Int64>()
        for microseconds in samples {
            let time = Timestamp(microsecondsSinceEpoch: microseconds)
            let scope = ContentKeyScope(subject: "kim", stream: .ticket("1001")!, time: time)
            let lookup = ContentKeyring.SealingScope(subject: "kim", stream: "ticket-1001", time: time)
            #expect(ContentKeyring.SealingScope(scope) == lookup, "\(microseconds): \(scope.period)")
            months.insert(lookup.month)
        }
        // Distinct periods are distinct numbers.
        let periods = Set(samples.map { ContentKeyScope.month(of: Timestamp(microsecondsSinceEpoch: $0)) })
        #expect(months.count == periods.count)
        #expect(ContentKeyring.SealingScope(ContentKeyScope(subject: "kim", stream: "t", period: "not a month")) == nil)
    }

    @Test func scopesAreMonthsInUTC() {
        let lastSecondOfNovember = Timestamp(microsecondsSinceEpoch: 1_796_083_199_000_000)  // 2026-11-30T23:59:59Z
        let scope = ContentKeyScope(subject: "kim", stream: .ticket("1001")!, time: lastSecondOfNovember)
        #expect(scope.period == "2026-11")
        let next = ContentKeyScope(
            subject: "kim", stream: .ticket("1001")!, time: Timestamp(microsecondsSinceEpoch: 1_796_083_200_000_000))
        #expect(next.period == "2026-12")
    }
}

/// The byte-level base64 of sealed fields and packed bodies, against Foundation's, and its one
/// canonical spelling.
@Suite(.timeLimit(.minutes(3))) struct Base64BytesTests {
    @Test func encodesAndDecodesAsFoundationDoesForEveryLength() throws {
        var generator = SystemRandomNumberGenerator()
        for count in 0..<200 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var encoded: [UInt8] = []
            bytes.withUnsafeBytes { Base64Bytes.encode($0, into: &encoded) }
            #expect(String(decoding: encoded, as: UTF8.self) == Data(bytes).base64EncodedString())
            #expect(encoded.count == Base64Bytes.encodedCount(count))
            #expect(encoded.withUnsafeBytes { Base64Bytes.decode($0) } == bytes)
        }
    }

    @Test func refusesEveryNonCanonicalSpelling() {
        func decode(_ text: String) -> [UInt8]? {
            Array(text.utf8).withUnsafeBytes { Base64Bytes.decode($0) }
        }
        #expect(decode("QQ==") == [0x41])
        #expect(decode("QUI=") == [0x41, 0x42])
        for bad in [
            "QR==",  // unused bits set
            "QUJ=",  // unused bits set
            "QQ", "QQ=", "Q===", "====", "QQ==QQ==",  // length or padding out of place
            "QU I", "QU\nI", "QUI-", "QUI_",  // outside the alphabet (base64url included)
        ] {
            #expect(decode(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func systemRandomBytesAreFreshEachTime() {
        let draws = (0..<1_000).map { _ in SystemRandom.bytes(12) }
        #expect(Set(draws).count == draws.count)
        #expect(draws.allSatisfy { $0.count == 12 })
        // Across the pool's 4 KiB refills too.
        #expect(SystemRandom.bytes(10_000).count == 10_000)
    }
}
