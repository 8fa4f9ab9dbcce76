/// xoshiro256** (Blackman & Vigna, 2018), Tessera's one seeded pseudo-random generator.
///
/// It is fully determined by its seed, so training runs, partitions and the SecAgg+ graph
/// permutation are reproducible across machines and toolchains; its output sequence for a
/// seed is part of that contract and must never change. It is **not** cryptographic: secrets
/// come from `TesseraCrypto`'s `SecureRandomGenerator`.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable, Hashable {
    // Visible to inlined code so that `next()` inlines into callers in other modules
    // (stochastic rounding draws one word per coordinate).
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    /// The state is the first four outputs of ``SplitMix64`` seeded with `seed`, as the
    /// algorithm's authors recommend, so nearby seeds give unrelated streams.
    public init(seed: UInt64) {
        var expander = SplitMix64(seed: seed)
        s0 = expander.next()
        s1 = expander.next()
        s2 = expander.next()
        s3 = expander.next()
    }

    @inlinable
    static func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = Self.rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotateLeft(s3, 45)
        return result
    }
}

/// SplitMix64 (Steele, Lea & Flood, 2014): expands one 64-bit seed into the state of
/// ``Xoshiro256StarStar`` and folds seed material; its `state` is public so a caller can mix
/// words into it.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    /// The counter; each call to ``next()`` advances it by the golden-ratio increment.
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
