import CSodium

/// What a derived key is for and between whom. Binding every pairwise key to this context
/// means a key agreed for one round or purpose can never be replayed as the key of another:
/// the same X25519 secret yields unrelated keys for "share encryption" and "pairwise mask",
/// and for round 7 and round 8.
public struct KeyContext: Sendable, Hashable {
    /// The use of the key, for example `"tessera.secagg.share-encryption"`. Compared as UTF-8 bytes.
    public var purpose: String
    /// The round the key belongs to.
    public var roundID: UInt64
    /// One participant of the pair. The order of ``firstID`` and ``secondID`` does not matter:
    /// the derivation sorts them, so both participants derive the same key.
    public var firstID: UInt32
    /// The other participant of the pair.
    public var secondID: UInt32

    public init(purpose: String, roundID: UInt64, firstID: UInt32, secondID: UInt32) {
        self.purpose = purpose
        self.roundID = roundID
        self.firstID = firstID
        self.secondID = secondID
    }
}

/// Key derivation from an X25519 shared secret, with libsodium's keyed BLAKE2b
/// (`crypto_generichash`).
///
/// Construction (version 1), with all integers little-endian:
///
///     key     = BLAKE2b(key: sharedSecret, outlen: length, message: encoding)
///     encoding = "tessera-kdf-v1"                       14 bytes, domain separation
///             || u32(len(purpose)) || utf8(purpose)     length-prefixed, so no two contexts collide
///             || u64(roundID)
///             || u32(min(firstID, secondID))
///             || u32(max(firstID, secondID))
///
/// BLAKE2b keyed with a uniformly random 32-byte secret is a PRF, so the output is a
/// pseudorandom key unique to the context. The output length is part of BLAKE2b's parameter
/// block, so keys of different lengths from the same context are unrelated too.
public enum KeyDerivation {
    /// The domain-separation prefix of the encoding; changing the construction means a new tag.
    static let domainTag: [UInt8] = Array("tessera-kdf-v1".utf8)

    /// Derives `length` bytes (16...64) bound to `context` from `sharedSecret` (16...64 bytes,
    /// in practice the 32-byte X25519 output). Both ranges are preconditions: they come from
    /// the program, never from the network.
    public static func deriveKey(from sharedSecret: SecretBytes, context: KeyContext, length: Int = 32) -> SecretBytes {
        precondition(
            (Int(crypto_generichash_BYTES_MIN)...Int(crypto_generichash_BYTES_MAX)).contains(length),
            "KeyDerivation.deriveKey: length must be 16...64 bytes, got \(length)"
        )
        precondition(
            (Int(crypto_generichash_KEYBYTES_MIN)...Int(crypto_generichash_KEYBYTES_MAX)).contains(sharedSecret.count),
            "KeyDerivation.deriveKey: the shared secret must be 16...64 bytes, got \(sharedSecret.count)"
        )
        Sodium.ensureInitialized()
        let message = encode(context)
        return SecretBytes(count: length) { out in
            let status = sharedSecret.withUnsafeBytes { key in
                message.withUnsafeBytes { input in
                    crypto_generichash(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
                        input.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(input.count),
                        key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count
                    )
                }
            }
            // Only fails for out-of-range lengths, which the preconditions exclude.
            precondition(status == 0, "crypto_generichash failed with valid lengths")
        }
    }

    /// The unambiguous byte encoding of `context` described on ``KeyDerivation``.
    static func encode(_ context: KeyContext) -> [UInt8] {
        let purpose = Array(context.purpose.utf8)
        precondition(purpose.count <= Int(UInt32.max), "KeyContext.purpose is too long to encode")
        var bytes = domainTag
        bytes.reserveCapacity(domainTag.count + 4 + purpose.count + 16)
        appendLittleEndian(UInt32(truncatingIfNeeded: purpose.count), to: &bytes)
        bytes += purpose
        appendLittleEndian(context.roundID, to: &bytes)
        appendLittleEndian(min(context.firstID, context.secondID), to: &bytes)
        appendLittleEndian(max(context.firstID, context.secondID), to: &bytes)
        return bytes
    }
}

@inline(__always)
func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    var v = value.littleEndian
    withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
}
