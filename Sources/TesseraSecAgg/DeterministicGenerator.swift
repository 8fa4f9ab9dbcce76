import TesseraSupport

/// The generator of SecAgg's public randomness: `TesseraSupport`'s ``Xoshiro256StarStar``, with
/// the byte seeding and the bounded-integer method that the round's contract fixes.
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
    private var generator: Xoshiro256StarStar

    /// Seeds from one 64-bit value (expanded with SplitMix64, so nearby seeds give unrelated
    /// streams).
    public init(seed: UInt64) {
        generator = Xoshiro256StarStar(seed: seed)
    }

    /// Seeds from bytes: each little-endian 8-byte word (zero-padded) is folded through
    /// SplitMix64 into the seed, so every byte of the seed matters and any length works.
    public init(seed bytes: [UInt8]) {
        // "Tessera!" as a domain constant, then the length, then every word.
        var folder = SplitMix64(seed: 0x5465_7373_6572_6121 ^ UInt64(bytes.count))
        var mixed = folder.next()
        var index = 0
        while index < bytes.count {
            var word: UInt64 = 0
            for offset in 0..<8 where index + offset < bytes.count {
                word |= UInt64(bytes[index + offset]) << (8 * UInt64(offset))
            }
            folder.state ^= word
            mixed ^= folder.next()
            index += 8
        }
        generator = Xoshiro256StarStar(seed: mixed ^ folder.state)
    }

    public mutating func next() -> UInt64 { generator.next() }

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
