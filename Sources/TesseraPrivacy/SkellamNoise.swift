import Foundation

/// Integer noise for distributed DP: the Skellam distribution Sk(μ, μ) = Poisson(μ) − Poisson(μ).
///
/// Its appeal is closure under sums: sites that each add Sk(μ/t) leave a sum of t or more
/// survivors carrying at least Sk(μ), exactly, in integers (Agarwal, Kairouz, Liu 2021).
public enum SkellamNoise {
    /// The largest λ (and Skellam μ) the samplers accept: 2⁴⁰. PTRS works on the deviation
    /// k − ⌊λ⌋, of order √λ ≤ 2²⁰, so its bin edges and its log acceptance ratio keep an absolute
    /// error below about 10⁻⁹ — the sampled pmf is exact to that relative precision — while every
    /// count stays an exact integer in Double with 13 bits to spare.
    public static let largestMu: Double = 0x1p40

    /// Poisson(λ), exact up to Double arithmetic: inversion for λ < 10, PTRS (Hörmann 1993)
    /// otherwise. `lambda` must be in `0...largestMu`.
    public static func poisson<G: RandomNumberGenerator>(_ lambda: Double, using generator: inout G) -> Int64 {
        PoissonSampler(lambda: lambda).next(using: &generator)
    }

    /// Sk(mu, mu) = Poisson(mu) − Poisson(mu); `mu` must be in `0...largestMu`.
    public static func sample<G: RandomNumberGenerator>(mu: Double, using generator: inout G) -> Int64 {
        let sampler = PoissonSampler(lambda: mu)
        return sampler.next(using: &generator) - sampler.next(using: &generator)
    }
}

/// A Poisson sampler with the constants of one λ computed once, so that drawing a noise word per
/// coordinate costs two or three random words and a few multiplications.
struct PoissonSampler: Sendable, Hashable {
    let lambda: Double
    /// Inversion (λ < 10): e^−λ.
    private let expMinusLambda: Double
    /// PTRS: λ = integerPart + fraction; `shift` is fraction + 0.43, Hörmann's offset.
    private let integerPart: Int64
    private let fraction: Double
    private let shift: Double
    private let logLambda: Double
    private let b: Double
    private let a: Double
    private let logInverseAlpha: Double
    private let quickAcceptBound: Double

    /// Below this λ, inversion by sequential search is faster than PTRS and exact.
    static let ptrsThreshold = 10.0

    init(lambda: Double) {
        precondition(
            lambda >= 0 && lambda <= SkellamNoise.largestMu,
            "Poisson λ must be in 0...2^40 (validated before it reaches here), got \(lambda)")
        self.lambda = lambda
        expMinusLambda = exp(-lambda)
        let floor = lambda.rounded(.down)
        integerPart = Int64(floor)
        fraction = lambda - floor
        shift = fraction + 0.43
        logLambda = log(lambda)
        let root = lambda.squareRoot()
        b = 0.931 + 2.53 * root
        a = -0.059 + 0.02483 * b
        logInverseAlpha = log(1.1239 + 1.1328 / (b - 3.4))
        quickAcceptBound = 0.9277 - 3.6224 / (b - 2)
    }

    func next<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        lambda < Self.ptrsThreshold ? inversion(using: &generator) : transformedRejection(using: &generator)
    }

    /// The smallest k with u < P(K ≤ k); stops if the pmf underflows, where u is within rounding of 1.
    private func inversion<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        let u = unitInterval(generator.next())
        var k: Int64 = 0
        var probability = expMinusLambda
        var cumulative = probability
        while u >= cumulative && probability > 0 {
            k += 1
            probability *= lambda / Double(k)
            cumulative += probability
        }
        return k
    }

    /// PTRS, with the candidate formed as ⌊λ⌋ + ⌊x + fraction + 0.43⌋ so that rounding at the
    /// scale of λ never moves a bin edge.
    private func transformedRejection<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        while true {
            let u = unitInterval(generator.next()) - 0.5
            let v = unitInterval(generator.next())
            let us = 0.5 - abs(u)
            if us < 0.013 && v > us { continue }
            guard us > 0 else { continue }
            let y = (2 * a / us + b) * u + shift
            // k = integerPart + ⌊y⌋ < 0 is rejected; a y beyond 2^53 has probability 0 in Double.
            guard y >= -Double(integerPart), y < 0x1p53 else { continue }
            let offset = Int64(y.rounded(.down))
            let k = integerPart + offset
            if us >= 0.07 && v <= quickAcceptBound { return k }
            let logHatRatio = log(v) + logInverseAlpha - log(a / (us * us) + b)
            if logHatRatio <= logProbability(k, offset: offset) { return k }
        }
    }

    /// log P(K = k) = −λ + k log λ − log k!. For k ≥ 10 it is written as −λ·g(r) − ½ log(2πk) −
    /// s(k) with r = (k − λ)/λ, g(r) = (1 + r) log1p(r) − r and s the Stirling series remainder:
    /// no term of size λ log λ is ever formed, so the error stays at the scale of √λ.
    private func logProbability(_ k: Int64, offset: Int64) -> Double {
        if k < Self.smallLogFactorials.count {
            return -lambda + Double(k) * logLambda - Self.smallLogFactorials[Int(k)]
        }
        let kk = Double(k)
        let r = (Double(offset) - fraction) / lambda
        let g = (1 + r) * log1p(r) - r
        let inverse = 1 / kk
        let inverseSquared = inverse * inverse
        let stirling =
            inverse * (1.0 / 12 - inverseSquared * (1.0 / 360 - inverseSquared * (1.0 / 1260 - inverseSquared / 1680)))
        return -lambda * g - 0.5 * log(2 * Double.pi * kk) - stirling
    }

    /// log k! for k < 10, where the Stirling series is not yet accurate to Double precision.
    private static let smallLogFactorials: [Double] = {
        var values = [0.0]
        for k in 1..<10 { values.append(values[k - 1] + log(Double(k))) }
        return values
    }()
}

/// A word's top 53 bits as a uniform value in `[0, 1)`.
@inline(__always)
func unitInterval(_ word: UInt64) -> Double {
    Double(word >> 11) * 0x1.0p-53
}
