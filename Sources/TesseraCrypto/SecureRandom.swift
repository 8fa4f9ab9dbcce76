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
