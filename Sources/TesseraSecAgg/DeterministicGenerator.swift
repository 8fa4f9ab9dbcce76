/// A small, fully specified pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Why not `SystemRandomNumberGenerator` or the standard library's `random(in:using:)`:
/// the server and every client must derive the *same* neighbourhood graph from the public
/// round seed, possibly on different builds and Swift versions. The standard library does
/// not promise a stable algorithm for `random(in:using:)`, so this type fixes both the
/// generator and the bounded-integer method (``next(below:)``), and that pair is part of the
/// round's public contract.
///
/// It is **not** cryptographic. It is used only for public randomness (the graph permutation)
/// and as a seeded source for tests and simulations. Secrets (keys, self-mask seeds, Shamir
/// coefficients) come from `SecureRandomGenerator` in production.
public struct DeterministicGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Seeds from one 64-bit value (expanded with SplitMix64, so nearby seeds give unrelated
    /// streams).
    public init(seed: UInt64) {
        var sm = seed
        state = (Self.splitMix(&sm), Self.splitMix(&sm), Self.splitMix(&sm), Self.splitMix(&sm))
    }

    /// Seeds from bytes: each little-endian 8-byte word (zero-padded) is folded through
    /// SplitMix64 into the state, so every byte of the seed matters and any length works.
    public init(seed bytes: [UInt8]) {
        var sm: UInt64 = 0x5465_7373_6572_6121  // "Tessera!" as a domain constant
        var words: [UInt64] = []
        var index = 0
        while index < bytes.count {
            var word: UInt64 = 0
            for offset in 0..<8 where index + offset < bytes.count {
                word |= UInt64(bytes[index + offset]) << (8 * UInt64(offset))
            }
            words.append(word)
            index += 8
        }
        sm ^= UInt64(bytes.count)
        var mixed: UInt64 = Self.splitMix(&sm)
        for word in words {
            sm ^= word
            mixed ^= Self.splitMix(&sm)
        }
        var seedState = mixed ^ sm
        state = (
            Self.splitMix(&seedState), Self.splitMix(&seedState), Self.splitMix(&seedState),
            Self.splitMix(&seedState)
        )
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = Self.rotl(state.3, 45)
        return result
    }

    /// A uniform integer in `0..<bound` by rejection sampling (no modulo bias). Fixed
    /// algorithm: draw 64 bits, reject values at or above the largest multiple of `bound`.
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "DeterministicGenerator.next(below:) needs a positive bound")
        let limit = UInt64.max - (UInt64.max % bound)  // values >= limit are rejected
        while true {
            let x = next()
            if x < limit { return x % bound }
        }
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func nextUnitInterval() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}
