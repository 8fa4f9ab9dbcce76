import CSodium
import TesseraSupport

/// An Ed25519 signing key (RFC 8032), used in the active-adversary setting of secure
/// aggregation: each participant signs the public keys it advertises, so the coordinator cannot
/// substitute its own keys and learn pairwise masks (Bonawitz et al. 2017, ConsistencyCheck).
///
/// The 32-byte seed is the secret; libsodium's 64-byte expanded key (seed || public key) is kept
/// in ``SecretBytes`` so it is wiped on release and never printed.
public struct Ed25519PrivateKey: Sendable, CustomStringConvertible {
    /// Seed size in bytes.
    public static let seedByteCount = Int(crypto_sign_SEEDBYTES)
    /// Signature size in bytes.
    public static let signatureByteCount = Int(crypto_sign_BYTES)

    private let expandedKey: SecretBytes
    /// The matching public key.
    public let publicKey: Ed25519PublicKey

    /// A fresh key from the operating system's CSPRNG.
    public init() {
        let seed = SecureRandom.secret(Self.seedByteCount)
        self.init(validatedSeed: seed)
    }

    /// Restores a key from its 32-byte seed (RFC 8032's "secret key").
    public init(seed: some Collection<UInt8>) throws {
        guard seed.count == Self.seedByteCount else {
            throw CryptoError(
                code: .invalidLength,
                message: "An Ed25519 seed is \(Self.seedByteCount) bytes, but \(seed.count) bytes were given."
            )
        }
        self.init(validatedSeed: SecretBytes(seed))
    }

    private init(validatedSeed seed: SecretBytes) {
        Sodium.ensureInitialized()
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var status: Int32 = -1
        self.expandedKey = SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { secretOut in
            status = seed.withUnsafeBytes { s in
                publicBytes.withUnsafeMutableBufferPointer { pk in
                    crypto_sign_seed_keypair(
                        pk.baseAddress!,
                        secretOut.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    )
                }
            }
        }
        // Key generation from a seed has no failure mode in libsodium; non-zero is a defect.
        precondition(status == 0, "crypto_sign_seed_keypair failed")
        self.publicKey = Ed25519PublicKey(trusted: publicBytes)
    }

    /// The 32-byte seed, inside wiped storage: the only thing to persist to restore this key.
    public var rawSeed: SecretBytes {
        expandedKey.withUnsafeBytes { SecretBytes($0.prefix(Self.seedByteCount)) }
    }

    /// The 64-byte deterministic Ed25519 signature of `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        var signature = [UInt8](repeating: 0, count: Self.signatureByteCount)
        var length: UInt64 = 0
        let status = signature.withUnsafeMutableBufferPointer { sig in
            expandedKey.withUnsafeBytes { sk in
                withNonNullBytes(message) { m, mlen in
                    crypto_sign_detached(
                        sig.baseAddress!, &length, m, mlen, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        precondition(status == 0 && Int(length) == Self.signatureByteCount, "crypto_sign_detached failed")
        return signature
    }

    public var description: String { "Ed25519PrivateKey(public: \(publicKey), secret redacted)" }
}

/// An Ed25519 verification key: 32 bytes.
public struct Ed25519PublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte encoded point (RFC 8032 §5.1.2).
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: some Collection<UInt8>) throws {
        guard rawRepresentation.count == Int(crypto_sign_PUBLICKEYBYTES) else {
            throw CryptoError(
                code: .invalidLength,
                message:
                    "An Ed25519 public key is \(crypto_sign_PUBLICKEYBYTES) bytes, but \(rawRepresentation.count) bytes were given."
            )
        }
        self.rawRepresentation = Array(rawRepresentation)
    }

    init(trusted bytes: [UInt8]) {
        self.rawRepresentation = bytes
    }

    /// `true` only when `signature` is a valid signature of `message` by this key. A malformed
    /// signature (wrong length, non-canonical encoding) or a weak public key is simply invalid:
    /// the caller's only decision is to accept or reject the message.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == Ed25519PrivateKey.signatureByteCount else { return false }
        Sodium.ensureInitialized()
        return signature.withUnsafeBufferPointer { sig in
            rawRepresentation.withUnsafeBufferPointer { pk in
                withNonNullBytes(message) { m, mlen in
                    crypto_sign_verify_detached(sig.baseAddress!, m, mlen, pk.baseAddress!) == 0
                }
            }
        }
    }

    public var description: String { "Ed25519PublicKey(\(Hex.encode(rawRepresentation)))" }
}
