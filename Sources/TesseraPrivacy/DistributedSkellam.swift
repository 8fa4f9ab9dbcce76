/// One round's public parameters of distributed DP: every site and the coordinator build the same
/// value (``calibrate(dimension:clipNorm:noiseMultiplier:minimumSurvivors:maximumCohort:bitNoise:ringBits:)``
/// uses only IEEE-exact arithmetic, so a site can recompute and compare what it is sent).
///
/// A site scales its clipped update by γ, rotates it (``RandomizedHadamard``), rounds it to
/// integers with conditional randomised rounding so that its squared norm is at most B, appends
/// the adaptive-clipping bit, adds Sk(μ/t) to every word and reduces mod 2^32. Secure aggregation
/// sums the words; the sum of m ≥ t survivors carries Sk(m·μ/t) ⊇ Sk(μ), the noise the
/// accountant charges for (``mechanism``), whose Gaussian-equivalent multiplier is z over the
/// whole sensitivity √(B + bitScale²/4).
///
/// The ring is sized so that the sum over the largest cohort stays within ±2^(ringBits−1) except
/// with probability about 2·exp(−k²/2) per coordinate, k = ``wrapSigmas`` (about 2.5·10⁻¹⁴ for
/// k = 8). A wrap only harms utility: the wrapped value is a function of the noised sum, so it is
/// post-processing and privacy is unaffected.
public struct DistributedSkellam: Sendable, Hashable, Codable {
    /// The model's parameter count.
    public var dimension: Int
    /// C, real units: every site's update is clipped to this L2 norm.
    public var clipNorm: Double
    /// γ: real → integer units, a power of two so that scaling and its inverse are exact.
    public var scale: Double
    /// B: conditional rounding guarantees ‖rounded‖² ≤ B (integer units).
    public var squaredNormBound: Double
    /// Each site adds Sk(perSiteMu) to every word.
    public var perSiteMu: Double
    /// t: the noise is calibrated for this many survivors.
    public var minimumSurvivors: Int
    /// The largest number of sites whose encodings are ever summed: the ring is sized for it.
    public var maximumCohort: Int
    /// 0 = no adaptive bit; else the bit word is (b − 1/2)·bitScale (bitScale even).
    public var bitScale: Int64
    /// The ring is Z_(2^ringBits), 8...32; words travel as UInt32 and sum mod 2^32, which 2^ringBits divides.
    public var ringBits: Int

    /// The ring holds the largest cohort's sum within this many standard deviations.
    public static let wrapSigmas = 8.0
    /// Conditional rounding's failure parameter β = e^−1/2 (Kairouz et al.), so √(2 ln(1/β)) = 1:
    /// one rounding attempt meets B with probability at least 1 − β, and far more in practice.
    static let roundingSlack = 1.0
    /// Rounding attempts before an encode gives up; an honest update fails all of them with
    /// probability below (e^−1/2)⁶⁴ ≈ 10⁻¹⁴.
    public static let maximumRoundingAttempts = 64
    /// γ must be large enough that rounding inflates the squared sensitivity by at most this
    /// fraction: B ≤ (1 + 10⁻³)(γC)².
    public static let precisionFloor = 1e-3
    /// The largest cohort accepted.
    public static let largestCohort = 1 << 20
    /// B stays below 2⁵²: every rounded coordinate, its square and their sum are exact in Double and Int64.
    static let largestSquaredNormBound = 0x1p52

    /// Chooses γ, B, μ and the bit scale so that (a) the accountant's mechanism has total noise
    /// μ_total = perSiteMu·t with 2μ_total = z²·(B + bitScale²/4); (b) with the adaptive bit, the
    /// count's noise std is `bitNoise` (bitScale = √(2μ_total)/bitNoise rounded to even, which
    /// needs 2·bitNoise > z); (c) the sum over `maximumCohort` sites of rotated rounded vectors
    /// plus their noise stays inside ±2^(ringBits−1) but for about 2·exp(−``wrapSigmas``²/2) per
    /// coordinate; (d) γ is the largest power of two meeting (c) with perSiteMu ≤
    /// ``SkellamNoise/largestMu`` and B ≤ 2⁵², and must reach ``precisionFloor``.
    ///
    /// Ring sizing per coordinate, for a cohort of N ≤ `maximumCohort` sites: the rotated signal sum
    /// is sub-Gaussian with variance proxy (γC)²N²/n in the worst case of aligned updates, the
    /// rounding errors add at most N/4, and the noise Sk(N·perSiteMu) has variance 2N·perSiteMu
    /// (more survivors than t only add noise). The bit word is bounded by N·bitScale/2 plus its noise.
    public static func calibrate(
        dimension: Int, clipNorm: Double, noiseMultiplier: Double, minimumSurvivors: Int, maximumCohort: Int,
        bitNoise: Double? = nil, ringBits: Int = 32
    ) throws(PrivacyError) -> DistributedSkellam {
        let padded = try RandomizedHadamard(dimension: dimension, seed: 0).paddedDimension
        guard clipNorm.isFinite, clipNorm > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Distributed DP: the clip norm must be positive and finite, got \(clipNorm).")
        }
        guard noiseMultiplier.isFinite, noiseMultiplier > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Distributed DP: the noise multiplier must be positive and finite, got \(noiseMultiplier).")
        }
        guard minimumSurvivors >= 1, minimumSurvivors <= maximumCohort, maximumCohort <= largestCohort else {
            throw PrivacyError(
                code: .invalidParameter,
                message:
                    "Distributed DP: need 1 ≤ minimum survivors ≤ maximum cohort ≤ \(largestCohort), "
                    + "got \(minimumSurvivors) and \(maximumCohort).")
        }
        if let bitNoise {
            guard bitNoise.isFinite, 2 * bitNoise > noiseMultiplier else {
                throw PrivacyError(
                    code: .invalidParameter,
                    message:
                        "Distributed DP: the adaptive-clipping count's noise must exceed half the noise multiplier "
                        + "(2σ_b > z), got σ_b = \(bitNoise), z = \(noiseMultiplier).")
            }
        }
        guard (8...32).contains(ringBits) else {
            throw PrivacyError(
                code: .invalidParameter, message: "Distributed DP: ring bits must be in 8...32, got \(ringBits).")
        }

        func candidate(_ exponent: Int) -> DistributedSkellam {
            parameters(
                dimension: dimension, padded: padded, clipNorm: clipNorm,
                scale: Double(sign: .plus, exponent: exponent, significand: 1),
                noiseMultiplier: noiseMultiplier, minimumSurvivors: minimumSurvivors, maximumCohort: maximumCohort,
                bitNoise: bitNoise, ringBits: ringBits)
        }
        // γ = 2^e for the largest e that fits; the search runs down from a scale no 32-bit ring holds.
        var exponent = 64
        while exponent >= -64, !candidate(exponent).fitsLimits { exponent -= 1 }
        let chosen = candidate(exponent)
        let precision = chosen.squaredNormBound / (chosen.scale * clipNorm * chosen.scale * clipNorm) - 1
        guard exponent >= -64, precision <= precisionFloor else {
            let limitedByMu = !candidate(exponent + 1).withinNoiseLimit
            let reason =
                limitedByMu
                ? "the per-site noise would exceed μ = 2^40, the sampler's limit: lower the noise multiplier or "
                    + "raise the minimum survivors"
                : "the ring of \(ringBits) bits cannot hold the sum of \(maximumCohort) sites with noise for "
                    + "\(minimumSurvivors) survivors at z = \(noiseMultiplier) within \(Int(wrapSigmas)) standard deviations: "
                    + "lower the maximum cohort, raise the minimum survivors"
                    + (ringBits < 32 ? " or use more ring bits" : "")
            throw PrivacyError(
                code: .ringOverflow,
                message:
                    "Distributed DP for \(dimension) parameters: no scale keeps rounding negligible (B ≤ (1 + 10⁻³)(γC)²) "
                    + "because \(reason).")
        }
        return chosen
    }

    /// The parameters for one scale γ, without checking the ring.
    static func parameters(
        dimension: Int, padded: Int, clipNorm: Double, scale: Double, noiseMultiplier z: Double,
        minimumSurvivors: Int, maximumCohort: Int, bitNoise: Double?, ringBits: Int
    ) -> DistributedSkellam {
        let g = scale * clipNorm
        let n = Double(padded)
        let rootN = n.squareRoot()
        let bound = min(g * g + n / 4 + roundingSlack * (g + rootN / 2), (g + rootN) * (g + rootN))
        var bitScale: Int64 = 0
        if let bitNoise {
            // 2μ = z²(B + s²/4) with s = √(2μ)/σ_b solves to 2μ = z²B / (1 − (z/2σ_b)²); s is then
            // rounded to an even integer and μ recomputed from it, so (a) holds exactly.
            let twiceMu = z * z * bound / (1 - (z * z) / (4 * bitNoise * bitNoise))
            let ideal = twiceMu.squareRoot() / bitNoise
            bitScale = ideal < 0x1p60 ? 2 * max(1, Int64((ideal / 2).rounded())) : Int64.max - 1
        }
        let bitSquared = Double(bitScale) * Double(bitScale) / 4
        let totalMu = z * z * (bound + bitSquared) / 2
        return DistributedSkellam(
            dimension: dimension, clipNorm: clipNorm, scale: scale, squaredNormBound: bound,
            perSiteMu: totalMu / Double(minimumSurvivors), minimumSurvivors: minimumSurvivors,
            maximumCohort: maximumCohort, bitScale: bitScale, ringBits: ringBits)
    }

    /// Memberwise, for ``calibrate(dimension:clipNorm:noiseMultiplier:minimumSurvivors:maximumCohort:bitNoise:ringBits:)``
    /// and decoding; call ``validate()`` on values that did not come from `calibrate`.
    public init(
        dimension: Int, clipNorm: Double, scale: Double, squaredNormBound: Double, perSiteMu: Double,
        minimumSurvivors: Int, maximumCohort: Int, bitScale: Int64, ringBits: Int
    ) {
        self.dimension = dimension
        self.clipNorm = clipNorm
        self.scale = scale
        self.squaredNormBound = squaredNormBound
        self.perSiteMu = perSiteMu
        self.minimumSurvivors = minimumSurvivors
        self.maximumCohort = maximumCohort
        self.bitScale = bitScale
        self.ringBits = ringBits
    }

    /// perSiteMu ≤ 2^40 and B ≤ 2^52.
    var withinNoiseLimit: Bool {
        perSiteMu <= SkellamNoise.largestMu
            && squaredNormBound + Double(bitScale) * Double(bitScale) / 4 <= Self.largestSquaredNormBound
    }

    /// The noise limits and the ring condition (c) for ``maximumCohort`` sites.
    var fitsLimits: Bool {
        guard withinNoiseLimit else { return false }
        let cohort = Double(maximumCohort)
        let g = scale * clipNorm
        let noiseVariance = 2 * cohort * perSiteMu
        let variance = g * g * cohort * cohort / Double(paddedDimension) + cohort / 4 + noiseVariance
        let half = ringHalf
        let bitExtent = cohort * Double(bitScale) / 2 + Self.wrapSigmas * noiseVariance.squareRoot()
        return Self.wrapSigmas * variance.squareRoot() <= half && (bitScale == 0 || bitExtent <= half)
    }

    /// 2^(ringBits−1) − 1: the largest magnitude the centred lift recovers.
    var ringHalf: Double { Double((Int64(1) << Int64(ringBits - 1)) - 1) }

    /// The dimension padded to a power of two: the rotated vector's length.
    public var paddedDimension: Int {
        var padded = 1
        while padded < dimension { padded <<= 1 }
        return padded
    }

    /// Words a site sends: paddedDimension + (bitScale > 0 ? 1 : 0).
    public var words: Int { paddedDimension + (bitScale > 0 ? 1 : 0) }

    /// Δ2² = B + bitScale²/4: the squared L2 norm of everything one site contributes.
    public var squaredSensitivity: Double { squaredNormBound + Double(bitScale) * Double(bitScale) / 4 }

    /// For the accountant: .skellam(mu: perSiteMu·t, l1: min(Δ2², √words·Δ2), l2: Δ2) with
    /// Δ2² = B + bitScale²/4. An integer vector's L1 norm is at most its squared L2 norm, and at
    /// most √words times its L2 norm.
    public var mechanism: PrivacyMechanism {
        let l2 = squaredSensitivity.squareRoot()
        let l1 = min(squaredSensitivity, Double(words).squareRoot() * l2)
        return .skellam(mu: perSiteMu * Double(minimumSurvivors), l1Sensitivity: l1, l2Sensitivity: l2)
    }

    /// Checks every field of a value that did not come from `calibrate` (read from the wire or a file).
    public func validate() throws(PrivacyError) {
        func fail(_ field: String, _ detail: String) -> PrivacyError {
            PrivacyError(code: .invalidParameter, message: "Distributed DP parameters: \(field) \(detail).")
        }
        guard (1...RandomizedHadamard.largestDimension).contains(dimension) else {
            throw fail("dimension", "must be in 1...\(RandomizedHadamard.largestDimension), got \(dimension)")
        }
        guard clipNorm.isFinite, clipNorm > 0 else {
            throw fail("clipNorm", "must be positive and finite, got \(clipNorm)")
        }
        guard scale.isFinite, scale > 0 else { throw fail("scale", "must be positive and finite, got \(scale)") }
        let signal = scale * clipNorm
        guard squaredNormBound >= signal * signal, squaredSensitivity <= Self.largestSquaredNormBound else {
            throw fail("squaredNormBound", "must be in (γC)²...2^52, got \(squaredNormBound)")
        }
        guard perSiteMu >= 0, perSiteMu <= SkellamNoise.largestMu else {
            throw fail("perSiteMu", "must be in 0...2^40, got \(perSiteMu)")
        }
        guard minimumSurvivors >= 1, minimumSurvivors <= maximumCohort, maximumCohort <= Self.largestCohort else {
            throw fail(
                "minimumSurvivors/maximumCohort",
                "need 1 ≤ t ≤ N ≤ \(Self.largestCohort), got \(minimumSurvivors) and \(maximumCohort)")
        }
        guard bitScale >= 0, bitScale % 2 == 0 else {
            throw fail("bitScale", "must be even and non-negative, got \(bitScale)")
        }
        guard (8...32).contains(ringBits) else { throw fail("ringBits", "must be in 8...32, got \(ringBits)") }
    }

    private enum CodingKeys: String, CodingKey {
        case dimension, clipNorm, scale, squaredNormBound, perSiteMu, minimumSurvivors, maximumCohort, bitScale,
            ringBits
    }

    /// Decodes and validates: parameters from the wire get the same checks as any other input.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dimension: try container.decode(Int.self, forKey: .dimension),
            clipNorm: try container.decode(Double.self, forKey: .clipNorm),
            scale: try container.decode(Double.self, forKey: .scale),
            squaredNormBound: try container.decode(Double.self, forKey: .squaredNormBound),
            perSiteMu: try container.decode(Double.self, forKey: .perSiteMu),
            minimumSurvivors: try container.decode(Int.self, forKey: .minimumSurvivors),
            maximumCohort: try container.decode(Int.self, forKey: .maximumCohort),
            bitScale: try container.decode(Int64.self, forKey: .bitScale),
            ringBits: try container.decode(Int.self, forKey: .ringBits))
        do {
            try validate()
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    // MARK: Site side

    /// Site side: `update` must already be clipped to clipNorm (else throws .sensitivityExceeded);
    /// scale by γ, rotate with the round's public seed, conditional randomised rounding until
    /// ‖·‖² ≤ B (at most ``maximumRoundingAttempts``, then throw), append the bit word when
    /// bitScale > 0 (`withinClip` says whether the update's norm before clipping was within the
    /// clip norm), add Sk(perSiteMu) to every word, reduce mod 2^ringBits.
    ///
    /// Random words are drawn from `generator` in blocks of 4096 (the last block may be drawn and
    /// not used); inlinable so that drawing is specialised for the caller's generator while the
    /// numeric work stays in this module.
    @inlinable
    public func encode<G: RandomNumberGenerator>(
        _ update: [Float], withinClip: Bool, rotationSeed: UInt64, using generator: inout G
    ) throws(PrivacyError) -> [UInt32] {
        try encode(
            update, withinClip: withinClip, rotationSeed: rotationSeed,
            randomWords: { block in
                for index in block.indices { block[index] = generator.next() }
            })
    }

    /// ``encode(_:withinClip:rotationSeed:using:)`` with random words supplied a block at a time:
    /// `randomWords` must fill each buffer it is given with uniform words. A participant passes its
    /// CSPRNG's bulk fill here (`SecureRandomGenerator.fill`), which is far cheaper than a locked
    /// `next()` per word.
    public func encode(
        _ update: [Float], withinClip: Bool, rotationSeed: UInt64,
        randomWords fill: (UnsafeMutableBufferPointer<UInt64>) -> Void
    ) throws(PrivacyError) -> [UInt32] {
        try checkUsable(when: "encode")
        guard update.count == dimension else {
            throw PrivacyError(
                code: .malformedInput,
                message:
                    "Distributed DP encode: the update has \(update.count) parameters, the round expects \(dimension).")
        }
        let norm = Clipping.norm(update)
        guard norm.isFinite else {
            throw PrivacyError(
                code: .malformedInput, message: "Distributed DP encode: the update has a non-finite value.")
        }
        guard norm <= clipNorm else {
            throw PrivacyError(
                code: .sensitivityExceeded,
                message:
                    "Distributed DP encode: the update's norm \(norm) exceeds the clip norm \(clipNorm); clip it first."
            )
        }
        let rotation = try RandomizedHadamard(dimension: dimension, seed: rotationSeed)
        let padded = rotation.paddedDimension
        let bound = Int64(squaredNormBound.rounded(.down))
        let sampler = PoissonSampler(lambda: perSiteMu)
        let mask: UInt32 = ringBits == 32 ? .max : (UInt32(1) << UInt32(ringBits)) - 1
        var rotated = [Double](repeating: 0, count: padded)
        var out = [UInt32](repeating: 0, count: words)
        let rounded: Bool = withoutActuallyEscaping(fill) { fill in
            var random = BlockGenerator(fill: fill)
            return rotated.withUnsafeMutableBufferPointer { rotated in
                out.withUnsafeMutableBufferPointer { out in
                    update.withUnsafeBufferPointer { rotation.rotate($0, scale: scale, into: rotated) }
                    var attempts = 0
                    while !Self.roundConditionally(
                        UnsafeBufferPointer(rotated), into: out, bound: bound, using: &random)
                    {
                        attempts += 1
                        if attempts == Self.maximumRoundingAttempts { return false }
                    }
                    if bitScale > 0 {
                        out[padded] = UInt32(truncatingIfNeeded: withinClip ? bitScale / 2 : -(bitScale / 2))
                    }
                    for index in out.indices {
                        let noise = sampler.next(using: &random) &- sampler.next(using: &random)
                        out[index] = (out[index] &+ UInt32(truncatingIfNeeded: noise)) & mask
                    }
                    return true
                }
            }
        }
        guard rounded else {
            throw PrivacyError(
                code: .sensitivityExceeded,
                message:
                    "Distributed DP encode: \(Self.maximumRoundingAttempts) conditional roundings all exceeded the norm "
                    + "bound B = \(squaredNormBound); the update or the parameters are inconsistent.")
        }
        return out
    }

    /// One attempt of randomised rounding of `values` into `out` (two's complement words): each
    /// coordinate rounds up with probability equal to its fractional part. Returns whether the
    /// rounded vector's squared norm is within `bound`.
    static func roundConditionally<R: RandomNumberGenerator>(
        _ values: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<UInt32>, bound: Int64,
        using random: inout R
    ) -> Bool {
        var squaredNorm: Int64 = 0
        for index in values.indices {
            let value = values[index]
            let truncated = Int64(value)
            let floor = truncated &- (Double(truncated) > value ? 1 : 0)
            let up: Int64 = unitInterval(random.next()) < value - Double(floor) ? 1 : 0
            let integer = floor &+ up
            squaredNorm &+= integer &* integer
            out[index] = UInt32(truncatingIfNeeded: integer)
        }
        return squaredNorm <= bound
    }

    // MARK: Coordinator side

    /// Coordinator side: the mod-2^32 sum of `inputCount` encodings → centred lift to signed,
    /// inverse rotation, ÷γ: the noisy sum of clipped updates (length `dimension`, real units), and
    /// the noisy count of sites within the clip (nil without the bit): S_bit/bitScale + inputCount/2.
    /// Throws .malformedInput on a wrong length, and .invalidParameter when `inputCount` is outside
    /// minimumSurvivors...maximumCohort (fewer survivors leave the sum under-noised: do not release it).
    public func decode(
        _ sum: [UInt32], inputCount: Int, rotationSeed: UInt64
    ) throws(PrivacyError) -> (sum: [Double], countWithinClip: Double?) {
        try checkUsable(when: "decode")
        guard sum.count == words else {
            throw PrivacyError(
                code: .malformedInput,
                message: "Distributed DP decode: the sum has \(sum.count) words, the round expects \(words).")
        }
        guard inputCount >= minimumSurvivors, inputCount <= maximumCohort else {
            throw PrivacyError(
                code: .invalidParameter,
                message:
                    "Distributed DP decode: \(inputCount) inputs, outside the \(minimumSurvivors)...\(maximumCohort) "
                    + "the noise and the ring were calibrated for; a sum of fewer survivors is under-noised.")
        }
        let rotation = try RandomizedHadamard(dimension: dimension, seed: rotationSeed)
        let padded = rotation.paddedDimension
        let shift = UInt32(32 - ringBits)
        var work = [Double](unsafeUninitializedCapacity: padded) { work, initialised in
            for index in 0..<padded { work[index] = Double(lift(sum[index], shift: shift)) }
            initialised = padded
        }
        work.withUnsafeMutableBufferPointer { rotation.inverseInPlace($0, scale: 1 / scale) }
        work.removeLast(padded - dimension)
        let count: Double? =
            bitScale > 0 ? Double(lift(sum[padded], shift: shift)) / Double(bitScale) + Double(inputCount) / 2 : nil
        return (work, count)
    }

    /// The fields encode and decode rely on to stay within their arithmetic (a hand-built value
    /// skips `calibrate`), checked in O(1).
    private func checkUsable(when stage: String) throws(PrivacyError) {
        let boundUsable = squaredNormBound >= 0 && squaredSensitivity <= Self.largestSquaredNormBound
        guard perSiteMu >= 0, perSiteMu <= SkellamNoise.largestMu, boundUsable, scale.isFinite, scale > 0,
            bitScale >= 0, bitScale % 2 == 0, (8...32).contains(ringBits)
        else {
            throw PrivacyError(
                code: .invalidParameter,
                message:
                    "Distributed DP \(stage): unusable parameters (μ = \(perSiteMu), B = \(squaredNormBound), "
                    + "γ = \(scale), bitScale = \(bitScale), ringBits = \(ringBits)); build them with calibrate.")
        }
    }

    /// The centred representative in [−2^(ringBits−1), 2^(ringBits−1)) of a word mod 2^ringBits:
    /// shift the ring's bits to the top of an Int32, then shift back arithmetically.
    @inline(__always)
    private func lift(_ word: UInt32, shift: UInt32) -> Int64 {
        Int64(Int32(bitPattern: word << shift) >> Int32(shift))
    }
}

/// The caller's random words, drawn a block at a time so that the per-coordinate samplers run on a
/// concrete generator inside this module.
struct BlockGenerator: RandomNumberGenerator {
    private var block = [UInt64](repeating: 0, count: 4096)
    private var index = 4096
    private let fill: (UnsafeMutableBufferPointer<UInt64>) -> Void

    init(fill: @escaping (UnsafeMutableBufferPointer<UInt64>) -> Void) {
        self.fill = fill
    }

    mutating func next() -> UInt64 {
        if index == block.count {
            block.withUnsafeMutableBufferPointer { fill($0) }
            index = 0
        }
        defer { index += 1 }
        return block[index]
    }
}
