import CSodium
import Synchronization

/// A `RandomNumberGenerator` that draws every value from libsodium's `randombytes_buf`, i.e. the
/// operating system's CSPRNG (`getrandom` on Linux).
///
/// Values are fetched in batches (8 words, then twice as many each time, up to 4 KiB), because
/// one system call per word made quantizing a 1M-parameter update cost a million calls. The
/// batch lives in a pool that copies of a generator share, so copies never replay each other's
/// output; every word is zeroed as it is handed out, so the pool never keeps a value that was
/// used. Production code passes it wherever an API takes a generator (Shamir coefficients,
/// stochastic rounding, key generation); tests pass a seeded generator instead to get fixed
/// vectors.
///
/// For many words at once, ``fill(_:)`` is much faster than `next()` in a loop (see there);
/// `QuantizationCodec` uses it for stochastic rounding.
public struct SecureRandomGenerator: RandomNumberGenerator, Sendable {
    private final class Pool: Sendable {
        struct Batch {
            var words: [UInt64] = []
            var position = 0
        }
        let batch = Mutex(Batch())
    }

    /// The most words fetched at once: 4 KiB.
    static let maximumBatch = 512

    private let pool = Pool()

    /// A generator over the system CSPRNG; initialises libsodium on first use.
    public init() {
        Sodium.ensureInitialized()
    }

    /// Fills `words` with random words: the keystream of a ``MaskPRG`` (AES-128-CTR) whose
    /// 32-byte seed — key and starting counter — is drawn from the system CSPRNG for this call
    /// alone.
    ///
    /// This is a CTR-mode deterministic random bit generator in the manner of NIST SP 800-90A's
    /// CTR_DRBG, seeded afresh for every request: each output block is AES under a secret
    /// random key of a distinct counter, so the words are computationally indistinguishable from
    /// random, and copies of a generator never replay each other (each call has its own seed).
    /// The seed is wiped when the call returns. One system call for the seed replaces a lock per
    /// word and a system call per batch, and AES-CTR outruns the kernel's CSPRNG. If OpenSSL
    /// cannot set up the cipher, the words come from `randombytes_buf` instead.
    public mutating func fill(_ words: UnsafeMutableBufferPointer<UInt64>) {
        guard let base = words.baseAddress, !words.isEmpty else { return }
        let expanded = UnsafeMutableRawBufferPointer(words).withMemoryRebound(to: UInt32.self) { halves in
            (try? MaskPRG(seed: SecureRandom.secret(MaskPRG.seedByteCount)).fill(halves)) != nil
        }
        if !expanded {
            randombytes_buf(base, words.count * MemoryLayout<UInt64>.size)
        }
    }

    /// Eight fresh bytes from the CSPRNG.
    public mutating func next() -> UInt64 {
        pool.batch.withLock { batch in
            if batch.position == batch.words.count {
                let count = min(Self.maximumBatch, max(8, batch.words.count * 2))
                batch.words = [UInt64](unsafeUninitializedCapacity: count) { words, initialised in
                    randombytes_buf(words.baseAddress!, count * MemoryLayout<UInt64>.size)
                    initialised = count
                }
                batch.position = 0
            }
            let value = batch.words[batch.position]
            batch.words[batch.position] = 0
            batch.position += 1
            return value
        }
    }
}

/// Cryptographically secure random bytes, from libsodium's `randombytes_buf`.
public enum SecureRandom {
    /// `count` random bytes for values that are not secret on their own (nonces, ids).
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes count must not be negative")
        Sodium.ensureInitialized()
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialised in
            if let base = buffer.baseAddress, count > 0 {
                randombytes_buf(base, count)
            }
            initialised = count
        }
    }

    /// `count` random bytes of key material, generated directly into wiped-on-release storage.
    public static func secret(_ count: Int) -> SecretBytes {
        Sodium.ensureInitialized()
        return SecretBytes(count: count) { buffer in
            if let base = buffer.baseAddress, buffer.count > 0 {
                randombytes_buf(base, buffer.count)
            }
        }
    }
}

/// Comparison whose running time does not depend on the contents compared.
public enum ConstantTime {
    /// `true` when `a` and `b` hold the same bytes. Lengths are treated as public: different
    /// lengths return `false` immediately. Use this for tags, MACs and keys, never `==` on arrays,
    /// which stops at the first differing byte and so leaks its position through timing.
    /// (``SecretBytes`` already compares this way with `==`.)
    public static func isEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        Sodium.ensureInitialized()
        return a.withUnsafeBytes { lhs in
            b.withUnsafeBytes { rhs in
                sodium_memcmp(lhs.baseAddress!, rhs.baseAddress!, lhs.count) == 0
            }
        }
    }
}
