import Crypto
import Synchronization

#if os(Linux)
    import CLibcrypto
#endif

/// ChaCha20-Poly1305 sealing into a caller's buffer, for the append path (issue 17): personal
/// fields, and content keys wrapped by the master key. swift-crypto's one-shot `ChaChaPoly.seal` costs ~17k instructions per field — a new AEAD
/// context per call, the ciphertext and the tag each in a `Data`, the `SealedBox` concatenating
/// them — where the cipher itself is a tenth of that. On Linux this seals through libcrypto's EVP
/// interface with cipher contexts kept in a small pool: only the key and nonce are set per call,
/// and the output is written in place. The bytes are the same AEAD's (RFC 8439), so a field
/// sealed here opens with swift-crypto's `ChaChaPoly.open`, which every read keeps using; where
/// libcrypto is missing or refuses, sealing goes through swift-crypto.
enum FieldCipher {
    static let nonceCount = 12
    static let tagCount = 16

    /// Appends `nonce ‖ ciphertext ‖ tag` of `plaintext` under `key` (32 bytes), bound to
    /// `associatedData`, to `out`.
    static func seal(
        _ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, nonce: [UInt8], associatedData: [UInt8],
        into out: inout [UInt8]
    ) throws {
        try nonce.withUnsafeBytes { nonce in
            try associatedData.withUnsafeBytes { associatedData in
                try seal(plaintext, key: key, nonce: nonce, associatedData: associatedData, into: &out)
            }
        }
    }

    /// ``seal(_:key:nonce:associatedData:into:)-([UInt8],_)`` with the nonce and the associated
    /// data in buffers (the append path keeps both on the stack).
    static func seal(
        _ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, nonce: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer, into out: inout [UInt8]
    ) throws {
        precondition(nonce.count == nonceCount)
        #if os(Linux)
            if let contexts = Libcrypto.contexts {
                let start = out.count
                out.append(contentsOf: repeatElement(0, count: nonceCount + plaintext.count + tagCount))
                let sealed = out.withUnsafeMutableBytes { buffer in
                    key.withUnsafeBytes { key in
                        contexts.seal(
                            plaintext, key: key, nonce: nonce, associatedData: associatedData,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
                    }
                }
                if sealed { return }
                out.removeSubrange(start...)
            }
        #endif
        let box = try ChaChaPoly.seal(
            plaintext, using: key, nonce: ChaChaPoly.Nonce(data: Array(nonce)),
            authenticating: Array(associatedData))
        out += box.combined
    }
}

#if os(Linux)
    /// libcrypto's ChaCha20-Poly1305 with a pool of EVP cipher contexts (a context is not safe to
    /// share between threads; appending tasks seal concurrently).
    private final class Libcrypto: Sendable {
        /// `nil` when this libcrypto has no ChaCha20-Poly1305 (a FIPS-only configuration).
        static let contexts: Libcrypto? = EVP_CIPHER_fetch(nil, "ChaCha20-Poly1305", nil).map(Libcrypto.init)

        /// An `EVP_CIPHER_CTX`. @unchecked Sendable: a context is used by one seal at a time; it
        /// passes between threads only through `idle`, under its mutex.
        private struct Context: @unchecked Sendable {
            let pointer: OpaquePointer
        }

        /// The fetched `EVP_CIPHER`. nonisolated(unsafe): a fetched algorithm is immutable and
        /// OpenSSL 3 lets threads share it; it lives as long as the process.
        nonisolated(unsafe) private let cipher: OpaquePointer
        private let idle = Mutex<[Context]>([])

        private init(cipher: OpaquePointer) {
            self.cipher = cipher
        }

        /// A context set up for the cipher, once: each seal then sets only the key and the nonce
        /// (given the cipher again, OpenSSL resets the context and makes the provider's state anew,
        /// a third of the call).
        private func newContext() -> OpaquePointer? {
            guard let context = EVP_CIPHER_CTX_new() else { return nil }
            guard EVP_EncryptInit_ex2(context, cipher, nil, nil, nil) == 1 else {
                EVP_CIPHER_CTX_free(context)
                return nil
            }
            return context
        }

        /// Seals into `out` (exactly nonce + plaintext + tag bytes); false when libcrypto refused.
        func seal(
            _ plaintext: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
            associatedData: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
        ) -> Bool {
            guard key.count == 32, plaintext.count <= Int(Int32.max) - 64,
                let context = idle.withLock({ $0.popLast()?.pointer }) ?? newContext()
            else { return false }
            var reusable = true
            defer {
                if reusable {
                    idle.withLock { contexts in
                        if contexts.count < 16 {
                            contexts.append(Context(pointer: context))
                        } else {
                            EVP_CIPHER_CTX_free(context)
                        }
                    }
                } else {
                    EVP_CIPHER_CTX_free(context)
                }
            }
            let output = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            output.update(from: nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), count: FieldCipher.nonceCount)
            var length: Int32 = 0
            let associated = associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self)
            let ok =
                EVP_EncryptInit_ex2(
                    context, nil, key.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), nil) == 1
                && (associatedData.isEmpty
                    || EVP_EncryptUpdate(context, nil, &length, associated, Int32(associatedData.count)) == 1)
                && (plaintext.isEmpty
                    || EVP_EncryptUpdate(
                        context, output + FieldCipher.nonceCount, &length,
                        plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(plaintext.count))
                        == 1 && Int(length) == plaintext.count)
                && EVP_EncryptFinal_ex(context, output + FieldCipher.nonceCount + plaintext.count, &length) == 1
                && length == 0
                && EVP_CIPHER_CTX_ctrl(
                    context, EVP_CTRL_AEAD_GET_TAG, Int32(FieldCipher.tagCount),
                    output + FieldCipher.nonceCount + plaintext.count) == 1
            reusable = ok
            return ok
        }
    }
#endif
