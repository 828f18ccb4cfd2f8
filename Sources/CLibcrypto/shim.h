#ifndef TICKETLOG_CLIBCRYPTO_SHIM_H
#define TICKETLOG_CLIBCRYPTO_SHIM_H
// OpenSSL 3's libcrypto (Debian: libssl-dev), for one thing only: sealing personal fields with
// ChaCha20-Poly1305 on the append path through a reusable EVP cipher context
// (Sources/Ticketlog/Erasure/FieldCipher.swift; ARCHITECTURE.md "Dependencies" says why).
#include <openssl/evp.h>
#endif
