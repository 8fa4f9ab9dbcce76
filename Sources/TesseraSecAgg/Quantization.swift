public import TesseraCrypto

/// Fixed-point codec between real-valued model updates and vectors in Z_(2^32), the group in
/// which secure aggregation adds masked inputs.
///
/// ## Scheme (weighted mean through one extra coordinate)
///
/// Let `c` be ``clip``, `Q = 2^(bits−1) − 1` the largest quantized magnitude, `Δ = c / Q` the
/// quantization step, and `W` ``maxWeight``. A participant with update `x` and integer sample
/// weight `w ≤ W` sends `d + 1` words:
///
///     q_j   = SR( (w / W) · clamp(x_j, −c, c) / Δ )   ∈ [−Q, Q]   (two's complement in UInt32)
///     q_d   = w                                                     (the weight, exact)
///
/// where `SR(v) = ⌊v⌋ + Bernoulli(v − ⌊v⌋)` is unbiased stochastic rounding, `E[SR(v)] = v`.
/// The server learns only the sums `S_j = Σ_k q_kj` and `S_d = Σ_k w_k`, and decodes
///
///     mean_j = S_j · Δ · W / S_d        ≈  Σ_k w_k clamp(x_kj) / Σ_k w_k
///
/// Pre-multiplying by the *normalised* weight `w / W ∈ [0, 1]`, rather than by `w` itself,
/// keeps the 32-bit budget for precision: the sum needs `m · Q < 2^31` and `m · W < 2^32`
/// for `m` summed inputs, independently of each other, instead of `m · W · Q < 2^31`.
///
/// ## Error bound
///
/// Each participant's rounding error is below one step, `|SR(v) − v| < 1`, so for `m` summed
/// inputs of total weight `S_d` every decoded coordinate satisfies (before floating-point
/// error, which is far smaller)
///
///     | mean_j − Σ_k w_k clamp(x_kj) / Σ_k w_k |  <  m · Δ · W / S_d
///
/// (see ``errorBound(inputCount:totalWeight:)``). With equal weights at `W` this is `Δ`.
/// The error is unbiased, so in practice it is about `√m · Δ · W / S_d`. Choose `W` close to
/// the real sample counts: a `W` much larger than the weights wastes precision.
///
/// ## Overflow
///
/// The decoded sums are exact only if no coordinate wraps around 2^32. That is checked when
/// the codec is created, against the largest cohort it will serve (``maxInputs``), and again
/// at decode time against the number of inputs **actually summed**, because that is the
/// number that matters and a mis-configured caller might pass a larger cohort.
public struct QuantizationCodec: Sendable, Hashable {
    /// Every coordinate is clipped to `[−clip, clip]` before quantization.
    public let clip: Double
    /// Bits per quantized coordinate, sign included: values lie in `[−(2^(bits−1)−1), 2^(bits−1)−1]`.
    public let bits: Int
    /// The largest sample weight a participant may send.
    public let maxWeight: UInt32
    /// The largest number of inputs that will ever be summed (the cohort size).
    public let maxInputs: Int

    /// Validates `clip`, `bits`, `maxWeight` and `maxInputs` together and fails loudly with
    /// ``SecAggError/Code-swift.struct/quantizationOverflow`` if `maxInputs` quantized inputs
    /// could wrap around 2^32.
    ///
    /// - Parameters:
    ///   - clip: positive, finite clipping bound `c`.
    ///   - bits: 2...32.
    ///   - maxWeight: at least 1.
    ///   - maxInputs: at least 1.
    public init(clip: Double, bits: Int, maxWeight: UInt32, maxInputs: Int) throws(SecAggError) {
        guard clip.isFinite, clip > 0 else {
            throw SecAggError(
                code: .invalidConfiguration, message: "Quantization clip must be positive and finite, got \(clip).")
        }
        guard (2...32).contains(bits) else {
            throw SecAggError(code: .invalidConfiguration, message: "Quantization bits must be in 2...32, got \(bits).")
        }
        guard maxWeight >= 1 else {
            throw SecAggError(code: .invalidConfiguration, message: "Quantization maxWeight must be at least 1.")
        }
        guard maxInputs >= 1 else {
            throw SecAggError(
                code: .invalidConfiguration, message: "Quantization maxInputs must be at least 1, got \(maxInputs).")
        }
        self.clip = clip
        self.bits = bits
        self.maxWeight = maxWeight
        self.maxInputs = maxInputs
        try checkCapacity(inputCount: maxInputs, when: "configuration")
    }

    /// `Q = 2^(bits−1) − 1`, the largest quantized magnitude.
    public var levels: UInt64 { (UInt64(1) << UInt64(bits - 1)) - 1 }

    /// The quantization step `Δ = clip / Q`.
    public var step: Double { clip / Double(levels) }

    /// The largest number of inputs whose sum cannot wrap: `min(⌊(2^31−1)/Q⌋, ⌊(2^32−1)/W⌋)`.
    public var capacity: Int {
        let byValues = UInt64(Int32.max) / levels
        let byWeights = UInt64(UInt32.max) / UInt64(maxWeight)
        return Int(min(byValues, byWeights))
    }

    /// Throws unless `inputCount` quantized inputs can be summed without wrapping.
    public func checkCapacity(inputCount: Int, when context: String = "decode") throws(SecAggError) {
        guard inputCount >= 0, inputCount <= capacity else {
            throw SecAggError(
                code: .quantizationOverflow,
                message:
                    "At \(context): \(inputCount) inputs quantized to \(bits) bits (|q| ≤ \(levels)) with weights up to "
                    + "\(maxWeight) can overflow Z_(2^32): at most \(capacity) inputs fit (need n·Q < 2^31 and n·W < 2^32). "
                    + "Lower the bits, the maximum weight, or the cohort size."
            )
        }
    }

    /// The number of words a quantized vector of `dimension` coordinates takes (one more, for
    /// the weight).
    public static func encodedLength(dimension: Int) -> Int { dimension + 1 }

    /// The decode error bound per coordinate for `inputCount` summed inputs of total weight
    /// `totalWeight`: `inputCount · Δ · W / totalWeight` (see the type's documentation).
    /// Infinite when the total weight is zero (nothing to average).
    public func errorBound(inputCount: Int, totalWeight: UInt64) -> Double {
        guard totalWeight > 0 else { return .infinity }
        return Double(inputCount) * step * Double(maxWeight) / Double(totalWeight)
    }

    /// Quantizes `values` with weight `weight`, drawing the stochastic rounding from
    /// `generator`, one word per coordinate in order. Throws for non-finite values or a weight
    /// above ``maxWeight``.
    ///
    /// Inlinable so that it is specialised for the caller's generator: through the generic
    /// witness, one random draw per coordinate was most of the cost of a participant's round.
    @inlinable
    public func encode<G: RandomNumberGenerator>(
        _ values: [Float], weight: UInt32, using generator: inout G
    ) throws(SecAggError) -> [UInt32] {
        try quantize(values, weight: weight) { values, out, round in
            for index in values.indices {
                let value = values[index]
                guard value.isFinite else { return index }
                out[index] = round(value, uniform: Self.unitInterval(generator.next()))
            }
            return nil
        }
    }

    /// ``encode(_:weight:using:)`` with the system CSPRNG, drawn in blocks of
    /// ``drawBlockWords`` words through `SecureRandomGenerator.fill(_:)`: what a deployed
    /// participant runs. Coordinate `i` still uses the `i`-th word drawn; drawing in blocks keeps
    /// the CSPRNG's per-call cost out of the per-coordinate loop.
    public func encode(
        _ values: [Float], weight: UInt32, using generator: inout SecureRandomGenerator
    ) throws(SecAggError) -> [UInt32] {
        var words = [UInt64](repeating: 0, count: min(Self.drawBlockWords, values.count))
        return try quantize(values, weight: weight) { values, out, round in
            words.withUnsafeMutableBufferPointer { words in
                var start = 0
                while start < values.count {
                    let length = min(words.count, values.count - start)
                    generator.fill(UnsafeMutableBufferPointer(rebasing: words[0..<length]))
                    for offset in 0..<length {
                        let value = values[start + offset]
                        guard value.isFinite else { return start + offset }
                        out[start + offset] = round(value, uniform: Self.unitInterval(words[offset]))
                    }
                    start += length
                }
                return nil
            }
        }
    }

    /// How many random words the CSPRNG encoder draws at once (32 KiB).
    static let drawBlockWords = 4096

    /// One coordinate's stochastic rounding, for a given weight.
    @usableFromInline
    struct Rounding {
        @usableFromInline let scale: Double
        @usableFromInline let q: Double
        @usableFromInline let clip: Double

        @inlinable
        init(scale: Double, q: Double, clip: Double) {
            self.scale = scale
            self.q = q
            self.clip = clip
        }

        /// `SR(value)` in two's complement, rounding up when `uniform` (in `[0, 1)`) falls below
        /// the fractional part.
        @inlinable @inline(__always)
        func callAsFunction(_ value: Float, uniform: Double) -> UInt32 {
            let clipped = min(max(Double(value), -clip), clip)
            // |v| ≤ Q because w ≤ W and |clipped| ≤ c; the clamp guards against rounding just past Q.
            let v = min(max(clipped * scale, -q), q)
            // floor(v) without a libm call (truncate, then step down for negative non-integers),
            // and round up with probability v − floor(v). Written without branches, and drawing
            // for every coordinate: the two data-dependent branches mispredicted about half the
            // time and dominated the loop.
            let truncated = Int64(v)
            let floor = truncated &- (Double(truncated) > v ? 1 : 0)
            let fraction = v - Double(floor)
            let up: Int64 = uniform < fraction ? 1 : 0
            return UInt32(truncatingIfNeeded: floor &+ up)
        }
    }

    /// Checks the weight, then lets `body` fill the quantized coordinates of the finite
    /// `values` (it returns the index of the first non-finite one, or `nil`) and appends the
    /// weight word.
    @inlinable
    func quantize(
        _ values: [Float], weight: UInt32,
        _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<UInt32>, Rounding) -> Int?
    ) throws(SecAggError) -> [UInt32] {
        guard weight <= maxWeight else {
            throw SecAggError(
                code: .valueOutOfRange,
                message: "Sample weight \(weight) exceeds the configured maximum weight \(maxWeight).")
        }
        let round = Rounding(scale: Double(weight) / Double(maxWeight) / step, q: Double(levels), clip: clip)
        var nonFinite: Int?
        let out = [UInt32](unsafeUninitializedCapacity: values.count + 1) { out, initialised in
            nonFinite = values.withUnsafeBufferPointer { values in body(values, out, round) }
            // On a non-finite coordinate the body stopped early and the result is thrown away:
            // claim no element, since the rest was never written.
            guard nonFinite == nil else { return }
            out[values.count] = weight
            initialised = values.count + 1
        }
        if let nonFinite {
            throw SecAggError(
                code: .valueOutOfRange,
                message: "Coordinate \(nonFinite) is not finite (\(values[nonFinite])); cannot quantize.")
        }
        return out
    }

    /// The result of decoding a sum.
    public struct Aggregate: Sendable, Hashable {
        /// The weighted mean `Σ w_k clamp(x_k) / Σ w_k`, within ``QuantizationCodec/errorBound(inputCount:totalWeight:)``.
        public var mean: [Double]
        /// `Σ w_k`, exact.
        public var totalWeight: UInt64
        /// The number of inputs that were summed.
        public var inputCount: Int
    }

    /// Decodes the sum of `inputCount` quantized vectors into their weighted mean.
    ///
    /// Fails loudly rather than returning a wrong mean: when `inputCount` inputs could have
    /// wrapped (``SecAggError/Code-swift.struct/quantizationOverflow``), when the total weight
    /// is zero or larger than `inputCount · W`, or when a coordinate lies outside the range
    /// `m` honest inputs can reach (``SecAggError/Code-swift.struct/valueOutOfRange``; a sign of
    /// masks that were not removed, or of the wrong `inputCount`).
    public func decode(sum: [UInt32], inputCount: Int) throws(SecAggError) -> Aggregate {
        try checkCapacity(inputCount: inputCount)
        guard let weightWord = sum.last else {
            throw SecAggError(
                code: .valueOutOfRange, message: "Cannot decode an empty sum: the weight coordinate is missing.")
        }
        let totalWeight = UInt64(weightWord)
        guard totalWeight > 0 else {
            throw SecAggError(
                code: .valueOutOfRange,
                message: "The summed weight of \(inputCount) inputs is 0: there is no mean to take.")
        }
        guard totalWeight <= UInt64(inputCount) * UInt64(maxWeight) else {
            throw SecAggError(
                code: .valueOutOfRange,
                message: "The summed weight \(totalWeight) exceeds \(inputCount) × maxWeight \(maxWeight): "
                    + "the sum is corrupt (unremoved masks?) or inputCount is wrong.")
        }
        let bound = Int64(inputCount) * Int64(levels)
        let factor = step * Double(maxWeight) / Double(totalWeight)
        var mean = [Double](repeating: 0, count: sum.count - 1)
        for index in 0..<(sum.count - 1) {
            let signed = Int64(Int32(bitPattern: sum[index]))
            guard abs(signed) <= bound else {
                throw SecAggError(
                    code: .valueOutOfRange,
                    message:
                        "Coordinate \(index) of the sum is \(signed), outside ±\(bound) reachable by \(inputCount) inputs: "
                        + "the sum is corrupt (unremoved masks?) or inputCount is wrong.")
            }
            mean[index] = Double(signed) * factor
        }
        return Aggregate(mean: mean, totalWeight: totalWeight, inputCount: inputCount)
    }

    /// A word's top 53 bits as a uniform value in `[0, 1)`.
    @inline(__always)
    @inlinable
    static func unitInterval(_ word: UInt64) -> Double {
        Double(word >> 11) * 0x1.0p-53
    }
}
