import CSodium

/// Authenticated encryption with XChaCha20-Poly1305 (IETF variant), used to encrypt the Shamir
/// shares that participants send each other through the coordinator.
///
/// Why XChaCha20: its 24-byte nonce is large enough to pick at random for every message with no
/// risk of reuse, so no nonce counter has to be kept in sync across retries, reconnects or
/// restarts. The associated data should carry the round, the stage and both participant ids, so
/// a relayed ciphertext cannot be moved to another round or pair without failing to open.
///
/// Sealed layout: `nonce (24 bytes) || ciphertext (plaintext.count bytes) || tag (16 bytes)`.
public enum AEAD {
    /// Key size in bytes.
    public static let keyByteCount = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    /// Nonce size in bytes (prepended to the ciphertext).
    public static let nonceByteCount = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    /// Tag size in bytes (appended to the ciphertext).
    public static let tagByteCount = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// Bytes a sealed message has beyond its plaintext.
    public static let overhead = nonceByteCount + tagByteCount

    /// Encrypts and authenticates `plaintext`, and authenticates `associatedData`, under a fresh
    /// random nonce.
    public static func seal(_ plaintext: [UInt8], key: SecretBytes, associatedData: [UInt8]) throws -> [UInt8] {
        let nonce = SecureRandom.bytes(nonceByteCount)
        return try seal(plaintext, key: key, nonce: nonce, associatedData: associatedData)
    }

    /// Seals with a caller-chosen nonce. Internal: only for known-answer tests, because a
    /// repeated nonce under one key breaks both confidentiality and authenticity.
    static func seal(_ plaintext: [UInt8], key: SecretBytes, nonce: [UInt8], associatedData: [UInt8]) throws -> [UInt8]
    {
        try checkKey(key)
        precondition(nonce.count == nonceByteCount, "AEAD nonce must be \(nonceByteCount) bytes")
        Sodium.ensureInitialized()
        var sealed = [UInt8](repeating: 0, count: nonceByteCount + plaintext.count + tagByteCount)
        sealed.replaceSubrange(0..<nonceByteCount, with: nonce)
        var written: UInt64 = 0
        let status = sealed.withUnsafeMutableBufferPointer { out in
            key.withUnsafeBytes { k in
                withNonNullBytes(plaintext) { m, mlen in
                    withNonNullBytes(associatedData) { ad, adlen in
                        crypto_aead_xchacha20poly1305_ietf_encrypt(
                            out.baseAddress! + nonceByteCount, &written,
                            m, mlen,
                            ad, adlen,
                            nil,
                            out.baseAddress!,
                            k.baseAddress!.assumingMemoryBound(to: UInt8.self)
                        )
                    }
                }
            }
        }
        guard status == 0, Int(written) == plaintext.count + tagByteCount else {
            throw CryptoError(
                code: .libraryFailure,
                message: "XChaCha20-Poly1305 encryption failed inside libsodium (status \(status)).")
        }
        return sealed
    }

    /// Verifies and decrypts a message produced by ``seal(_:key:associatedData:)``.
    ///
    /// Throws ``CryptoError/Code/invalidLength`` when `sealed` is shorter than a nonce plus a
    /// tag, and ``CryptoError/Code/authenticationFailed`` for every other mismatch (altered
    /// bytes, wrong key, wrong associated data). No partial plaintext is ever returned.
    public static func open(_ sealed: [UInt8], key: SecretBytes, associatedData: [UInt8]) throws -> [UInt8] {
        try checkKey(key)
        guard sealed.count >= overhead else {
            throw CryptoError(
                code: .invalidLength,
                message:
                    "A sealed message is at least \(overhead) bytes (24-byte nonce and 16-byte tag), but \(sealed.count) bytes were received; it was truncated."
            )
        }
        Sodium.ensureInitialized()
        let plaintextCount = sealed.count - overhead
        // One spare byte so the output pointer is valid even for an empty plaintext.
        var plaintext = [UInt8](repeating: 0, count: plaintextCount + 1)
        var written: UInt64 = 0
        let status = sealed.withUnsafeBufferPointer { input in
            plaintext.withUnsafeMutableBufferPointer { out in
                key.withUnsafeBytes { k in
                    withNonNullBytes(associatedData) { ad, adlen in
                        crypto_aead_xchacha20poly1305_ietf_decrypt(
                            out.baseAddress!, &written,
                            nil,
                            input.baseAddress! + nonceByteCount, UInt64(input.count - nonceByteCount),
                            ad, adlen,
                            input.baseAddress!,
                            k.baseAddress!.assumingMemoryBound(to: UInt8.self)
                        )
                    }
                }
            }
        }
        guard status == 0 else {
            plaintext.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
            throw CryptoError(
                code: .authenticationFailed,
                message:
                    "The sealed message did not authenticate: it was altered in transit, or it was sealed with another key or for other associated data (round, stage, participants)."
            )
        }
        plaintext.removeLast(plaintext.count - Int(written))
        return plaintext
    }

    private static func checkKey(_ key: SecretBytes) throws {
        guard key.count == keyByteCount else {
            throw CryptoError(
                code: .invalidKey,
                message: "An XChaCha20-Poly1305 key is \(keyByteCount) bytes, but the key given is \(key.count) bytes."
            )
        }
    }
}

/// Calls `body` with a non-null pointer to `bytes` (libsodium's headers declare most inputs
/// non-null even when their length is zero) and the length as libsodium's `unsigned long long`.
@inline(__always)
func withNonNullBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, UInt64) throws -> R) rethrows -> R {
    if bytes.isEmpty {
        var dummy: UInt8 = 0
        return try withUnsafePointer(to: &dummy) { try body($0, 0) }
    }
    return try bytes.withUnsafeBufferPointer { try body($0.baseAddress!, UInt64($0.count)) }
}
