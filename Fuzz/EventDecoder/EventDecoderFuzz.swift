import Foundation
import FuzzSupport

@testable import Ticketlog

// libFuzzer target (issue 7): a stored event body as the log reads it back. The first byte picks
// the codec (even: the canonical JSON as stored uncompressed; odd: an LZ4 blob against the golden
// dictionary), the rest is the blob. Decoding must end in a body or an EventStoreError — never a
// crash, a hang or an out-of-bounds access (AddressSanitizer is on).

private let dictionary: LZ4Dictionary = {
    let golden = "Fixtures/golden/lz4-dictionary.bin"
    let content =
        FileManager.default.contents(atPath: golden).map(Array.init)
        ?? Array(
            String(repeating: #"{"actor":{"id":"kim","role":"creator"},"payload":{"text":"hello"}}"#, count: 100).utf8)
    return LZ4Dictionary(id: 1, content: Array(content.prefix(LZ4Dictionary.maximumSize)))
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventDecoder(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = input.first else { return 0 }
    let blob = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    let codec: Int64 = selector % 2 == 0 ? BodyCodec.uncompressed : dictionary.id
    do {
        let canonical = try BodyCodec.decode(codec: codec, blob: blob, dictionary: dictionary, position: 1)
        let body = try EventStore.decodeBody(canonical, position: 1)
        // What decodes must encode again (the writer's path), and to the same bytes when the
        // input was canonical.
        if let again = CanonicalWriter.encode(body), again == canonical {
            _ = try EventStore.decodeBody(again, position: 1)
        }
    } catch {
        // An EventStoreError (typed throws): the expected outcome for damaged input.
    }
    return 0
}

@_cdecl("fuzz_event_decoder_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzzEventDecoder(UnsafeRawPointer($0), size) } ?? 0 }
}
