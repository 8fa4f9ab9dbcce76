import CSodium
import TesseraSupport

/// An X25519 private key (RFC 7748), used by secure aggregation for pairwise key agreement.
///
/// The 32 secret bytes live in ``SecretBytes`` so they are wiped on release and never printed.
/// They are reachable only through the deliberately loud ``rawSecret`` and
/// ``withUnsafeSecretBytes(_:)``: secure aggregation must Shamir-share this key so that the
/// survivors can reconstruct a dropped participant's pairwise masks, and that is the only
/// legitimate reason to touch the bytes.
///
/// The public key is computed once at initialisation, because the protocol asks for it often
/// (advertising, signing, deriving every pairwise key) and it is not secret.
public struct X25519PrivateKey: Sendable, CustomStringConvertible {
    /// Size of a private scalar, a public point, and a shared secret, in bytes.
    public static let byteCount = 32

    private let secret: SecretBytes
    /// The matching public key.
    public let publicKey: X25519PublicKey

    /// A fresh key from the operating system's CSPRNG.
    public init() {
        let secret = SecureRandom.secret(Self.byteCount)
        self.init(validated: secret)
    }

    /// A key drawn from `generator`. Deterministic for a seeded generator, which is what tests
    /// and reproducible simulations want; production code uses ``init()``.
    public init<G: RandomNumberGenerator>(using generator: inout G) {
        var words = (generator.next(), generator.next(), generator.next(), generator.next())
        let secret = withUnsafeBytes(of: &words) { raw in
            SecretBytes(count: Self.byteCount) { $0.copyMemory(from: raw) }
        }
        // Wipe the stack copy of the scalar.
        withUnsafeMutableBytes(of: &words) { sodium_memzero($0.baseAddress!, $0.count) }
        self.init(validated: secret)
    }

    /// Restores a key from its 32 raw bytes (for example after Shamir reconstruction).
    /// Any 32 bytes are a valid scalar: clamping (RFC 7748 §5) happens inside the scalar
    /// multiplication, so the bytes are kept as given.
    public init(rawRepresentation: some Collection<UInt8>) throws {
        guard rawRepresentation.count == Self.byteCount else {
            throw CryptoError(
                code: .invalidLength,
                message:
                    "An X25519 private key is \(Self.byteCount) bytes, but \(rawRepresentation.count) bytes were given."
            )
        }
        self.init(validated: SecretBytes(rawRepresentation))
    }

    /// Restores a key from secret bytes without copying them out of wiped storage.
    public init(rawSecret: SecretBytes) throws {
        guard rawSecret.count == Self.byteCount else {
            throw CryptoError(
                code: .invalidLength,
                message: "An X25519 private key is \(Self.byteCount) bytes, but \(rawSecret.count) bytes were given."
            )
        }
        self.init(validated: rawSecret)
    }

    private init(validated secret: SecretBytes) {
        Sodium.ensureInitialized()
        self.secret = secret
        var point = [UInt8](repeating: 0, count: Self.byteCount)
        let status = secret.withUnsafeBytes { scalar in
            point.withUnsafeMutableBytes { out in
                crypto_scalarmult_base(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    scalar.baseAddress!.assumingMemoryBound(to: UInt8.self)
                )
            }
        }
        // A clamped scalar is a non-zero multiple of 8 below the group order times 8, so the base
        // point multiple can never be the identity: a failure here is a libsodium defect.
        precondition(status == 0, "crypto_scalarmult_base failed for a clamped scalar")
        self.publicKey = X25519PublicKey(trusted: point)
    }

    /// The raw 32-byte private scalar, still inside wiped storage. Only for secret-sharing the
    /// key in the SecAgg protocol; never log, persist unencrypted, or send it.
    public var rawSecret: SecretBytes { secret }

    /// Read access to the raw private scalar; same caveats as ``rawSecret``.
    public func withUnsafeSecretBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try secret.withUnsafeBytes(body)
    }

    /// The X25519 shared secret with `peer` (RFC 7748 §6.1), before key derivation.
    ///
    /// Do not use the result as a key directly: pass it through
    /// ``KeyDerivation/deriveKey(from:context:length:)`` to bind it to the round and the pair of
    /// participants. Throws ``CryptoError/Code/invalidKey`` when the peer's point has small
    /// order, which would make the "secret" all zeros and known to everyone (RFC 7748 §6.1
    /// recommends this check); a malicious participant could otherwise force a known mask.
    public func sharedSecret(with peer: X25519PublicKey) throws -> SecretBytes {
        Sodium.ensureInitialized()
        var status: Int32 = -1
        let shared = SecretBytes(count: Self.byteCount) { out in
            status = secret.withUnsafeBytes { scalar in
                peer.rawRepresentation.withUnsafeBytes { point in
                    crypto_scalarmult(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        scalar.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        point.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    )
                }
            }
        }
        let isZero = shared.withUnsafeBytes {
            sodium_is_zero($0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) == 1
        }
        guard status == 0, !isZero else {
            throw CryptoError(
                code: .invalidKey,
                message:
                    "The peer's X25519 public key is a low-order point; the shared secret would be all zeros. Reject this peer's key."
            )
        }
        return shared
    }

    public var description: String { "X25519PrivateKey(public: \(publicKey), secret redacted)" }
}

/// An X25519 public key: 32 bytes, the u-coordinate of a Curve25519 point.
///
/// Any 32 bytes are accepted here, as RFC 7748 requires; weak (small-order) points are caught
/// where they would matter, in ``X25519PrivateKey/sharedSecret(with:)``.
public struct X25519PublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32 little-endian bytes of the u-coordinate.
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: some Collection<UInt8>) throws {
        guard rawRepresentation.count == X25519PrivateKey.byteCount else {
            throw CryptoError(
                code: .invalidLength,
                message:
                    "An X25519 public key is \(X25519PrivateKey.byteCount) bytes, but \(rawRepresentation.count) bytes were given."
            )
        }
        self.rawRepresentation = Array(rawRepresentation)
    }

    init(trusted bytes: [UInt8]) {
        self.rawRepresentation = bytes
    }

    public var description: String { "X25519PublicKey(\(Hex.encode(rawRepresentation)))" }
}
