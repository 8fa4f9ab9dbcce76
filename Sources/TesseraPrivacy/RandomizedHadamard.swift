import TesseraSupport

/// The randomised Hadamard rotation x ↦ H·D·x / √n of Kairouz, Liu, Steinke (2021): D is a
/// diagonal of random signs drawn from the round's public seed and H the n×n Walsh–Hadamard
/// matrix, n the dimension padded to a power of two.
///
/// The rotation is orthonormal, so it keeps the L2 norm (the sensitivity) and its inverse is
/// itself followed by D. What it buys is flatness: each rotated coordinate of a vector of norm C
/// is sub-Gaussian with variance proxy C²/n, so a sum of updates needs a ring sized for C/√n per
/// coordinate instead of C, and per-coordinate rounding error stays small relative to the signal.
public struct RandomizedHadamard: Sendable, Hashable {
    /// The largest dimension accepted: 2²⁶ parameters (a 512 MiB rotated vector of Doubles).
    public static let largestDimension = 1 << 26

    public let dimension: Int
    /// The seed of the sign diagonal D: the `i`-th sign is bit `i % 64` of the `i / 64`-th output
    /// of `Xoshiro256StarStar(seed:)` (a set bit is −1). Part of the wire contract: every site
    /// and the coordinator must rotate alike.
    public let seed: UInt64
    /// The dimension padded to the next power of two.
    public let paddedDimension: Int

    public init(dimension: Int, seed: UInt64) throws(PrivacyError) {
        guard (1...Self.largestDimension).contains(dimension) else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "The rotation's dimension must be in 1...\(Self.largestDimension), got \(dimension).")
        }
        self.dimension = dimension
        self.seed = seed
        var padded = 1
        while padded < dimension { padded <<= 1 }
        paddedDimension = padded
    }

    /// Orthonormal H·D·x: zero-pad, signs from the seed, fast Walsh–Hadamard, scale 1/√n.
    /// `values` must have ``dimension`` elements.
    public func rotate(_ values: [Float]) -> [Double] {
        precondition(values.count == dimension, "rotate: \(values.count) values for dimension \(dimension)")
        return [Double](unsafeUninitializedCapacity: paddedDimension) { out, initialised in
            values.withUnsafeBufferPointer { values in rotate(values, scale: 1, into: out) }
            initialised = paddedDimension
        }
    }

    /// The inverse D·H·y / √n, truncated to ``dimension``. `rotated` must have
    /// ``paddedDimension`` elements.
    public func inverse(_ rotated: [Double]) -> [Double] {
        precondition(
            rotated.count == paddedDimension, "inverse: \(rotated.count) values for padded dimension \(paddedDimension)"
        )
        var work = rotated
        work.withUnsafeMutableBufferPointer { inverseInPlace($0, scale: 1) }
        work.removeLast(paddedDimension - dimension)
        return work
    }

    /// Calls `body` for every position of the padded vector with the word whose lowest bit is that
    /// position's sign: bit i % 64 of output i / 64 of `Xoshiro256StarStar(seed:)` (the wire
    /// contract every site and the coordinator share).
    @inline(__always)
    private func forEachSign(_ body: (Int, UInt64) -> Void) {
        var signs = Xoshiro256StarStar(seed: seed)
        var index = 0
        while index < paddedDimension {
            let word = signs.next()
            let end = min(index + 64, paddedDimension)
            for position in index..<end { body(position, word >> UInt64(position - index)) }
            index = end
        }
    }

    /// Writes `scale`·H·D·x/√n into `out` (``paddedDimension`` elements): one pass applies the
    /// signs and the scale, then the transform runs in place.
    func rotate(_ values: UnsafeBufferPointer<Float>, scale: Double, into out: UnsafeMutableBufferPointer<Double>) {
        let factor = scale / Double(paddedDimension).squareRoot()
        forEachSign { position, bits in
            let value = position < values.count ? Double(values[position]) * factor : 0
            out[position] = Self.flipSign(value, if: bits)
        }
        Self.walshHadamard(out)
    }

    /// Replaces `buffer` (``paddedDimension`` elements) by `scale`·D·H·y/√n; the caller reads the
    /// first ``dimension`` elements.
    func inverseInPlace(_ buffer: UnsafeMutableBufferPointer<Double>, scale: Double) {
        Self.walshHadamard(buffer)
        let factor = scale / Double(paddedDimension).squareRoot()
        forEachSign { position, bits in buffer[position] = Self.flipSign(buffer[position] * factor, if: bits) }
    }

    /// `value` with its sign flipped when the low bit of `bits` is set, without a branch.
    @inline(__always)
    static func flipSign(_ value: Double, if bits: UInt64) -> Double {
        Double(bitPattern: value.bitPattern ^ ((bits & 1) << 63))
    }

    /// The unnormalised Walsh–Hadamard transform in place (length a power of two). Levels run two
    /// at a time (radix 4) to halve the passes over memory, and the levels whose span fits in a
    /// 16 KiB block are done block by block while the block is in cache.
    static func walshHadamard(_ x: UnsafeMutableBufferPointer<Double>) {
        let n = x.count
        let block = min(n, 2048)
        var start = 0
        while start < n {
            transformLevels(x, start: start, count: block, fromSpan: 1, toSpan: block)
            start += block
        }
        transformLevels(x, start: 0, count: n, fromSpan: block, toSpan: n)
    }

    /// Applies the levels of span `fromSpan`, 2·`fromSpan`, … below `toSpan` to `x[start..<start+count]`.
    @inline(__always)
    private static func transformLevels(
        _ x: UnsafeMutableBufferPointer<Double>, start: Int, count: Int, fromSpan: Int, toSpan: Int
    ) {
        var span = fromSpan
        while span < toSpan {
            if span * 4 <= toSpan {
                var group = start
                while group < start + count {
                    for j in group..<(group + span) {
                        let a = x[j]
                        let b = x[j + span]
                        let c = x[j + 2 * span]
                        let d = x[j + 3 * span]
                        let sumAB = a + b
                        let differenceAB = a - b
                        let sumCD = c + d
                        let differenceCD = c - d
                        x[j] = sumAB + sumCD
                        x[j + span] = differenceAB + differenceCD
                        x[j + 2 * span] = sumAB - sumCD
                        x[j + 3 * span] = differenceAB - differenceCD
                    }
                    group += 4 * span
                }
                span *= 4
            } else {
                var group = start
                while group < start + count {
                    for j in group..<(group + span) {
                        let a = x[j]
                        let b = x[j + span]
                        x[j] = a + b
                        x[j + span] = a - b
                    }
                    group += 2 * span
                }
                span *= 2
            }
        }
    }
}
