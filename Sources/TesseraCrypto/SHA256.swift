import CSodium

/// SHA-256 (FIPS 180-4), through libsodium's `crypto_hash_sha256`.
///
/// Tessera addresses model artifacts by their SHA-256 digest: a participant fetches "the model
/// whose bytes hash to X" and checks the bytes it received against X before training on them,
/// so a corrupted or substituted model is refused instead of silently trained. SHA-256 rather
/// than BLAKE2b because the digests are shown to people and compared with what `sha256sum`,
/// Python's `hashlib` and model registries print for the same safetensors file.
///
/// The hasher is incremental, so a model that arrives in chunks is hashed chunk by chunk and
/// never has to be held as one contiguous byte buffer just to be verified. It is a value type:
/// copying a hasher forks the computation (both copies can be finished independently).
public struct SHA256: Sendable {
    /// The digest size in bytes.
    public static let byteCount = Int(crypto_hash_sha256_BYTES)

    private var state = crypto_hash_sha256_state()
    private var finished = false

    public init() {
        Sodium.ensureInitialized()
        let status = crypto_hash_sha256_init(&state)
        // Cannot fail: it only writes the initial constants into the state.
        precondition(status == 0, "crypto_hash_sha256_init failed")
    }

    /// Feeds `bytes` into the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256.update called after finalize()")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let status = crypto_hash_sha256_update(
            &state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
        precondition(status == 0, "crypto_hash_sha256_update failed")
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
        let status = digest.withUnsafeMutableBufferPointer { crypto_hash_sha256_final(&state, $0.baseAddress!) }
        precondition(status == 0, "crypto_hash_sha256_final failed")
        return digest
    }

    /// The SHA-256 digest of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Lowercase hexadecimal, the form `sha256sum` prints and the wire protocol carries.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digest.count * 2)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
