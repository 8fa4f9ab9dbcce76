import Foundation
import TesseraPrivacy
import TesseraSupport
import Testing

/// A random update clipped to `norm`.
private func clippedUpdate(_ dimension: Int, norm: Double, using generator: inout Xoshiro256StarStar) -> [Float] {
    var update = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
    Clipping.clip(&update, to: norm)
    return update
}

/// Element-wise wrapping sum: what secure aggregation reveals.
private func ringSum(_ encodings: [[UInt32]]) -> [UInt32] {
    var sum = [UInt32](repeating: 0, count: encodings[0].count)
    for encoding in encodings {
        for index in sum.indices { sum[index] &+= encoding[index] }
    }
    return sum
}

/// The PrivacyError `body` throws (nil if it returns, or throws anything else).
private func thrown(_ body: () throws -> Void) -> PrivacyError? {
    do {
        try body()
        return nil
    } catch {
        return error as? PrivacyError
    }
}

@Suite struct DistributedSkellamTests {
    /// The sum of n encodings decodes to the sum of the updates plus noise of per-coordinate
    /// variance 2·perSiteMu·n/γ² (rounding adds at most n/(4γ²), negligible), unbiased.
    @Test func theDecodedSumCarriesExactlyTheSurvivorsNoise() throws {
        let dimension = 610
        let parameters = try DistributedSkellam.calibrate(
            dimension: dimension, clipNorm: 1, noiseMultiplier: 0.8, minimumSurvivors: 3, maximumCohort: 6)
        let sites = 5
        var generator = Xoshiro256StarStar(seed: 1831)
        var errors: [Double] = []
        for round in 0..<40 {
            let updates = (0..<sites).map { _ in clippedUpdate(dimension, norm: 1, using: &generator) }
            let seed = UInt64(1000 + round)
            let encodings = try updates.map {
                try parameters.encode($0, withinClip: true, rotationSeed: seed, using: &generator)
            }
            let decoded = try parameters.decode(ringSum(encodings), inputCount: sites, rotationSeed: seed)
            #expect(decoded.sum.count == dimension)
            for index in 0..<dimension {
                let truth = updates.reduce(0.0) { $0 + Double($1[index]) }
                errors.append(decoded.sum[index] - truth)
            }
        }
        let count = Double(errors.count)
        let mean = errors.reduce(0, +) / count
        let variance = errors.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)
        let expected = 2 * parameters.perSiteMu * Double(sites) / (parameters.scale * parameters.scale)
        // For z = 0.8 and C = 1 that is z²·n/t ≈ 1.07 in real units.
        #expect(abs(expected - 0.64 * 5 / 3) < 0.01)
        #expect(abs(mean) <= 5 * (expected / count).squareRoot())
        #expect(
            abs(variance / expected - 1) <= 5 * (2 / count).squareRoot(), "variance \(variance), expected \(expected)")
    }

    /// Without noise, the decoded sum is the true sum up to rounding (|error| < n/γ per rotated
    /// coordinate), and the bit word counts the sites within the clip exactly.
    @Test func withoutNoiseTheSumAndTheCountAreExact() throws {
        var parameters = try DistributedSkellam.calibrate(
            dimension: 50, clipNorm: 2, noiseMultiplier: 1, minimumSurvivors: 2, maximumCohort: 10, bitNoise: 3)
        parameters.perSiteMu = 0
        var generator = Xoshiro256StarStar(seed: 1832)
        let updates = (0..<7).map { _ in clippedUpdate(50, norm: 2, using: &generator) }
        let within = [true, false, true, true, false, true, true]
        let encodings = try zip(updates, within).map {
            try parameters.encode($0, withinClip: $1, rotationSeed: 9, using: &generator)
        }
        let decoded = try parameters.decode(ringSum(encodings), inputCount: 7, rotationSeed: 9)
        #expect(decoded.countWithinClip == 5)
        let error =
            (0..<50).map { index in
                abs(decoded.sum[index] - updates.reduce(0.0) { $0 + Double($1[index]) })
            }.max() ?? 0
        #expect(error < 7 * 8 / parameters.scale)
    }

    /// The count decodes to the true count with noise of std σ_b·√(n/t) in count units.
    @Test func theNoisyCountIsUnbiasedWithTheRequestedNoise() throws {
        let bitNoise = 4.0
        let parameters = try DistributedSkellam.calibrate(
            dimension: 1, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 4, maximumCohort: 8, bitNoise: bitNoise)
        var generator = Xoshiro256StarStar(seed: 1833)
        let sites = 6
        var deviations: [Double] = []
        for round in 0..<3000 {
            let encodings = try (0..<sites).map { site in
                try parameters.encode([0.5], withinClip: site < 2, rotationSeed: UInt64(round), using: &generator)
            }
            let decoded = try parameters.decode(ringSum(encodings), inputCount: sites, rotationSeed: UInt64(round))
            deviations.append(try #require(decoded.countWithinClip) - 2)
        }
        let count = Double(deviations.count)
        let mean = deviations.reduce(0, +) / count
        let variance = deviations.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)
        let expected = bitNoise * bitNoise * Double(sites) / 4
        #expect(abs(mean) <= 5 * (expected / count).squareRoot())
        #expect(abs(variance / expected - 1) <= 5 * (2 / count).squareRoot())
    }

    /// Invariants (a)–(d) of `calibrate`, on the lead's worked example and a larger model.
    @Test(
        arguments: [(610, 30, 100, nil), (610, 30, 100, 5.0), (1_000_000, 50, 500, 2.0)] as [(Int, Int, Int, Double?)])
    func calibrationMeetsItsInvariants(dimension: Int, survivors: Int, cohort: Int, bitNoise: Double?) throws {
        let z = 1.0
        let clip = 0.7
        let p = try DistributedSkellam.calibrate(
            dimension: dimension, clipNorm: clip, noiseMultiplier: z, minimumSurvivors: survivors,
            maximumCohort: cohort, bitNoise: bitNoise)
        let totalMu = p.perSiteMu * Double(survivors)
        let sensitivity = p.squaredNormBound + Double(p.bitScale) * Double(p.bitScale) / 4
        // (a) the Gaussian-equivalent multiplier over the whole sensitivity is z.
        #expect(abs(2 * totalMu / (z * z * sensitivity) - 1) < 1e-12)
        guard case .skellam(let mu, let l1, let l2) = p.mechanism else {
            Issue.record("not a Skellam mechanism")
            return
        }
        #expect(abs(mu / totalMu - 1) < 1e-12)
        #expect(abs(l2 * l2 / sensitivity - 1) < 1e-12)
        #expect(l1 <= l2 * l2 && l1 <= Double(p.words).squareRoot() * l2 * (1 + 1e-12))
        // (b) the count's noise, in count units.
        if let bitNoise {
            #expect(p.bitScale > 0 && p.bitScale % 2 == 0)
            #expect(abs((2 * totalMu).squareRoot() / Double(p.bitScale) / bitNoise - 1) < 1e-5)
            #expect(p.words == p.paddedDimension + 1)
        } else {
            #expect(p.bitScale == 0 && p.words == p.paddedDimension)
        }
        // (c) the largest cohort's sum fits the ring at 8 standard deviations.
        let g = p.scale * clip
        let n = Double(p.paddedDimension)
        let noiseVariance = 2 * Double(cohort) * p.perSiteMu
        let variance = g * g * Double(cohort * cohort) / n + Double(cohort) / 4 + noiseVariance
        #expect(8 * variance.squareRoot() <= 0x1p31 - 1)
        #expect(Double(cohort) * Double(p.bitScale) / 2 + 8 * noiseVariance.squareRoot() <= 0x1p31 - 1)
        // (d) γ is a power of two, rounding is negligible, and μ is within the sampler's range.
        #expect(p.scale.significand == 1)
        #expect(p.squaredNormBound <= 1.001 * g * g && p.squaredNormBound >= g * g)
        #expect(p.perSiteMu <= SkellamNoise.largestMu)
        #expect(throws: Never.self) { try p.validate() }
    }

    @Test func anUnclippedUpdateIsRefused() throws {
        let p = try DistributedSkellam.calibrate(
            dimension: 3, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 2, maximumCohort: 5)
        var generator = Xoshiro256StarStar(seed: 1834)
        let error = thrown { _ = try p.encode([1, 1, 0], withinClip: false, rotationSeed: 1, using: &generator) }
        #expect(error?.code == .sensitivityExceeded)
        #expect(error?.message.contains("clip it first") == true)
        let nonFinite = thrown { _ = try p.encode([.nan, 0, 0], withinClip: true, rotationSeed: 1, using: &generator) }
        #expect(nonFinite?.code == .malformedInput)
    }

    @Test func wrongLengthsAndCountsAreRefused() throws {
        let p = try DistributedSkellam.calibrate(
            dimension: 10, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 2, maximumCohort: 5, bitNoise: 2)
        var generator = Xoshiro256StarStar(seed: 1835)
        let short = thrown { _ = try p.encode([0.1, 0.1], withinClip: true, rotationSeed: 1, using: &generator) }
        #expect(short?.code == .malformedInput)
        let words = [UInt32](repeating: 0, count: p.words)
        let wrongSum = thrown { _ = try p.decode(Array(words.dropLast()), inputCount: 3, rotationSeed: 1) }
        #expect(wrongSum?.code == .malformedInput)
        #expect(wrongSum?.message.contains("\(p.words)") == true)
        let underNoised = thrown { _ = try p.decode(words, inputCount: 1, rotationSeed: 1) }
        #expect(underNoised?.code == .invalidParameter)
        #expect(underNoised?.message.contains("under-noised") == true)
        let overCohort = thrown { _ = try p.decode(words, inputCount: 6, rotationSeed: 1) }
        #expect(overCohort?.code == .invalidParameter)
    }

    @Test func aRingTooSmallForTheCohortIsRefusedWithWhatToChange() {
        let error = thrown {
            _ = try DistributedSkellam.calibrate(
                dimension: 1000, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 10, maximumCohort: 10_000,
                ringBits: 12)
        }
        #expect(error?.code == .ringOverflow)
        #expect(error?.message.contains("maximum cohort") == true)
        #expect(error?.message.contains("ring bits") == true)
    }

    @Test func invalidCalibrationInputsAreRefused() {
        let cases: [() throws -> Void] = [
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 0, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 1, maximumCohort: 2)
            },
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 5, clipNorm: 0, noiseMultiplier: 1, minimumSurvivors: 1, maximumCohort: 2)
            },
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 5, clipNorm: 1, noiseMultiplier: 0, minimumSurvivors: 1, maximumCohort: 2)
            },
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 5, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 3, maximumCohort: 2)
            },
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 5, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 1, maximumCohort: 2, bitNoise: 0.5)
            },
            {
                _ = try DistributedSkellam.calibrate(
                    dimension: 5, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 1, maximumCohort: 2, ringBits: 33)
            },
        ]
        for body in cases {
            #expect(thrown(body)?.code == .invalidParameter)
        }
    }

    /// Conditional rounding never returns a vector above B, even with γ small enough that B binds
    /// on a noticeable fraction of attempts, and it stays unbiased in aggregate.
    @Test func conditionalRoundingRespectsTheBoundAndIsUnbiased() throws {
        let dimension = 64
        let scale = 4.0
        let n = 64.0
        let g = scale * 1
        let bound = min(g * g + n / 4 + (g + n.squareRoot() / 2), (g + n.squareRoot()) * (g + n.squareRoot()))
        let p = DistributedSkellam(
            dimension: dimension, clipNorm: 1, scale: scale, squaredNormBound: bound, perSiteMu: 0,
            minimumSurvivors: 1, maximumCohort: 1, bitScale: 0, ringBits: 32)
        var generator = Xoshiro256StarStar(seed: 1836)
        let update = clippedUpdate(dimension, norm: 1, using: &generator)
        let target = try RandomizedHadamard(dimension: dimension, seed: 4).rotate(update).map { $0 * scale }
        var totals = [Double](repeating: 0, count: dimension)
        let draws = 20_000
        for _ in 0..<draws {
            let words = try p.encode(update, withinClip: true, rotationSeed: 4, using: &generator)
            let rounded = words.map { Int64(Int32(bitPattern: $0)) }
            #expect(rounded.reduce(0) { $0 + $1 * $1 } <= Int64(bound))
            for index in 0..<dimension { totals[index] += Double(rounded[index]) }
        }
        let bias = zip(totals, target).map { abs($0 / Double(draws) - $1) }.max() ?? 0
        // Each coordinate's mean of 20 000 roundings has std ≤ 0.5/√20000 ≈ 0.0035.
        #expect(bias < 0.03, "largest bias \(bias)")
    }

    @Test func anUnreachableNormBoundFailsLoudly() {
        let p = DistributedSkellam(
            dimension: 16, clipNorm: 1, scale: 8, squaredNormBound: 1, perSiteMu: 0, minimumSurvivors: 1,
            maximumCohort: 1, bitScale: 0, ringBits: 32)
        var generator = Xoshiro256StarStar(seed: 1837)
        let update = [Float](repeating: 0.25, count: 16)
        let error = thrown { _ = try p.encode(update, withinClip: true, rotationSeed: 1, using: &generator) }
        #expect(error?.code == .sensitivityExceeded)
    }

    @Test func decodingParametersValidatesThem() throws {
        let p = try DistributedSkellam.calibrate(
            dimension: 610, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 30, maximumCohort: 100, bitNoise: 5)
        let data = try JSONEncoder().encode(p)
        #expect(try JSONDecoder().decode(DistributedSkellam.self, from: data) == p)
        var odd = p
        odd.bitScale += 1
        let bad = try JSONEncoder().encode(odd)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DistributedSkellam.self, from: bad) }
    }

    /// A narrower ring decodes the same way: words are reduced mod 2^ringBits and summed mod 2^32.
    @Test func aNarrowerRingRoundTrips() throws {
        var p = try DistributedSkellam.calibrate(
            dimension: 20, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 2, maximumCohort: 4, ringBits: 24)
        p.perSiteMu = 0
        var generator = Xoshiro256StarStar(seed: 1838)
        let updates = (0..<3).map { _ in clippedUpdate(20, norm: 1, using: &generator) }
        let encodings = try updates.map { try p.encode($0, withinClip: true, rotationSeed: 2, using: &generator) }
        #expect(encodings.allSatisfy { $0.allSatisfy { $0 < 1 << 24 } })
        let decoded = try p.decode(ringSum(encodings), inputCount: 3, rotationSeed: 2)
        let error = (0..<20).map { index in abs(decoded.sum[index] - updates.reduce(0.0) { $0 + Double($1[index]) }) }
        #expect((error.max() ?? 1) < 3 * 5 / p.scale)
    }
}

@Suite struct DistributedSkellamHandBuiltTests {
    /// Values that skip `calibrate` are checked before their arithmetic can trap.
    @Test func unusableHandBuiltParametersAreRefused() {
        let usable = DistributedSkellam(
            dimension: 4, clipNorm: 1, scale: 16, squaredNormBound: 300, perSiteMu: 10, minimumSurvivors: 1,
            maximumCohort: 2, bitScale: 0, ringBits: 32)
        var tooMuchNoise = usable
        tooMuchNoise.perSiteMu = 0x1p41
        var nonFiniteBound = usable
        nonFiniteBound.squaredNormBound = .infinity
        var oddBit = usable
        oddBit.bitScale = 3
        var wideRing = usable
        wideRing.ringBits = 40
        var generator = Xoshiro256StarStar(seed: 1839)
        let update: [Float] = [0.5, 0.5, 0, 0]
        #expect(throws: Never.self) {
            _ = try usable.encode(update, withinClip: true, rotationSeed: 1, using: &generator)
        }
        for parameters in [tooMuchNoise, nonFiniteBound, oddBit, wideRing] {
            let encodeError = thrown {
                _ = try parameters.encode(update, withinClip: true, rotationSeed: 1, using: &generator)
            }
            #expect(encodeError?.code == .invalidParameter)
            let decodeError = thrown {
                _ = try parameters.decode(
                    [UInt32](repeating: 0, count: parameters.words), inputCount: 1, rotationSeed: 1)
            }
            #expect(decodeError?.code == .invalidParameter)
        }
    }
}
