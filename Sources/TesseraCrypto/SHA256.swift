import COpenSSL
import CSodium

/// SHA-256 (FIPS 180-4), through OpenSSL's EVP digest interface.
///
/// Tessera addresses model artifacts by their SHA-256 digest: a participant fetches "the model
/// whose bytes hash to X" and checks the bytes it received against X before training on them,
/// so a corrupted or substituted model is refused instead of silently trained. SHA-256 rather
/// than BLAKE2b because the digests are shown to people and compared with what `sha256sum`,
/// Python's `hashlib` and model registries print for the same safetensors file.
///
/// OpenSSL rather than libsodium: OpenSSL uses the CPU's SHA extensions where it has them,
/// libsodium's portable `crypto_hash_sha256` does not, and every model byte is hashed on both
/// sides of every transfer.
///
/// The hasher is incremental, so a model that arrives in chunks is hashed chunk by chunk and
/// never has to be held as one contiguous byte buffer just to be verified. It is a value type:
/// copying a hasher forks the computation (both copies can be finished independently; the
/// OpenSSL context is duplicated when a shared copy is first changed).
public struct SHA256: Sendable {
    /// The digest size in bytes.
    public static let byteCount = 32

    /// Owns one `EVP_MD_CTX`. Only mutated through a uniquely referenced box.
    private final class Context: @unchecked Sendable {
        let pointer: OpaquePointer

        init() {
            // Allocation failure or a missing default provider: nothing a caller could handle.
            guard let pointer = EVP_MD_CTX_new() else {
                fatalError("EVP_MD_CTX_new could not allocate a SHA-256 context")
            }
            self.pointer = pointer
            guard EVP_DigestInit_ex(pointer, EVP_sha256(), nil) == 1 else {
                fatalError("EVP_DigestInit_ex could not start SHA-256: is OpenSSL's default provider available?")
            }
        }

        init(copying other: Context) {
            guard let pointer = EVP_MD_CTX_new() else {
                fatalError("EVP_MD_CTX_new could not allocate a SHA-256 context")
            }
            self.pointer = pointer
            precondition(EVP_MD_CTX_copy_ex(pointer, other.pointer) == 1, "EVP_MD_CTX_copy_ex failed")
        }

        deinit { EVP_MD_CTX_free(pointer) }
    }

    private var context = Context()
    private var finished = false

    public init() {}

    private mutating func uniqueContext() -> OpaquePointer {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        return context.pointer
    }

    /// Feeds `bytes` into the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256.update called after finalize()")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // Cannot fail for an initialised SHA-256 context.
        precondition(EVP_DigestUpdate(uniqueContext(), base, bytes.count) == 1, "EVP_DigestUpdate failed")
    }

    /// Feeds `bytes` into the hash.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Finishes the hash and returns the 32-byte digest. A hasher is finished once; calling
    /// `update` or this method again afterwards is a programming error.
    public mutating func finalize() -> [UInt8] {
        precondition(!finished, "SHA256.finalize called twice")
        finished = true
        var digest = [UInt8](repeating: 0, count: Self.byteCount)
        var length: UInt32 = 0
        let status = digest.withUnsafeMutableBufferPointer {
            EVP_DigestFinal_ex(uniqueContext(), $0.baseAddress!, &length)
        }
        precondition(status == 1 && length == UInt32(Self.byteCount), "EVP_DigestFinal_ex failed")
        return digest
    }

    /// The SHA-256 digest of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The SHA-256 digest of a short message (at most a few hundred bytes), through libsodium's
    /// one-shot function: no context to allocate and no OpenSSL provider lookup, which cost more
    /// than the hashing itself at this size. SecAgg share commitments are hashed by the
    /// thousand per round; large inputs (model files) belong to ``hash(_:)``.
    public static func hashShort(_ bytes: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        return [UInt8](unsafeUninitializedCapacity: byteCount) { digest, initialised in
            withNonNullBytes(bytes) { input, length in
                // Cannot fail: libsodium's SHA-256 one-shot always returns 0.
                _ = crypto_hash_sha256(digest.baseAddress!, input, length)
            }
            initialised = byteCount
        }
    }
}
