import Foundation
public import TesseraSupport

/// The seeded generator of training, initialisation and partitioning: ``Xoshiro256StarStar``
/// (from `TesseraSupport`) plus the exactly specified derived draws the numeric code uses.
///
/// It is fully determined by its seed, which is what makes training runs reproducible. It is
/// **not** a cryptographic generator: secrets come from libsodium in `TesseraCrypto`, never
/// from here.
///
/// Derived values are specified exactly so that runs are bit-identical across machines:
/// - `nextFloat()` takes the top 24 bits of one word: `Float(w >> 40) * 2^-24`, in `[0, 1)`.
/// - `nextNormal()` uses the Box–Muller transform on two such uniforms (with `1 − u1` so the
///   logarithm never sees zero) and keeps the second variate for the next call.
public struct TesseraRandom: RandomNumberGenerator, Sendable, Hashable {
    // Visible to inlined code only, so that `next()` inlines into callers in other modules.
    @usableFromInline var generator: Xoshiro256StarStar
    private var spareNormal: Float?

    /// A generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        generator = Xoshiro256StarStar(seed: seed)
        spareNormal = nil
    }

    /// An independent stream for a sub-task (a layer, a site, an epoch), so that adding a
    /// consumer of randomness in one place does not shift the numbers seen elsewhere.
    public func derived(_ stream: UInt64) -> TesseraRandom {
        var copy = self
        let a = copy.next()
        return TesseraRandom(seed: a ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
    }

    @inlinable
    public mutating func next() -> UInt64 { generator.next() }

    /// A uniform value in `[0, 1)` with 24 random bits.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform value in `[lower, upper)`.
    public mutating func nextFloat(in lower: Float, _ upper: Float) -> Float {
        lower + (upper - lower) * nextFloat()
    }

    /// A standard normal variate (Box–Muller, second value cached).
    public mutating func nextNormal() -> Float {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let u1 = 1.0 - Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let radius = (-2.0 * log(u1)).squareRoot()
        let angle = 2.0 * Double.pi * u2
        spareNormal = Float(radius * sin(angle))
        return Float(radius * cos(angle))
    }

    /// A uniform integer in `0..<bound` without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// Fisher–Yates shuffle driven by this generator (the standard library's `shuffle(using:)`
    /// does not document its algorithm, so reproducibility across toolchains is not promised).
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ c: inout C) where C.Index == Int {
        var i = c.count - 1
        while i > 0 {
            let j = nextInt(below: i + 1)
            c.swapAt(c.startIndex + i, c.startIndex + j)
            i -= 1
        }
    }
}
