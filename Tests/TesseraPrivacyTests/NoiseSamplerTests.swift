import Foundation
import TesseraPrivacy
import TesseraSupport
import Testing

/// Sample mean and (unbiased) variance.
private func moments(_ values: [Double]) -> (mean: Double, variance: Double) {
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance)
}

/// Pearson's statistic of `counts` against `expected`, and its degrees of freedom.
private func chiSquare(_ counts: [Int], expected: [Double]) -> (statistic: Double, freedom: Int) {
    var statistic = 0.0
    for (count, expectation) in zip(counts, expected) {
        statistic += (Double(count) - expectation) * (Double(count) - expectation) / expectation
    }
    return (statistic, counts.count - 1)
}

/// A bound a correct sampler exceeds with negligible probability: df + 6·√(2·df).
private func chiSquareLimit(_ freedom: Int) -> Double {
    Double(freedom) + 6 * (2 * Double(freedom)).squareRoot()
}

@Suite struct PoissonTests {
    static let samples = 200_000

    @Test(arguments: [0.5, 5, 30, 1e4, SkellamNoise.largestMu])
    func meanAndVarianceMatchLambda(lambda: Double) {
        var generator = Xoshiro256StarStar(seed: 1801)
        let draws = (0..<Self.samples).map { _ in Double(SkellamNoise.poisson(lambda, using: &generator)) }
        let (mean, variance) = moments(draws)
        let n = Double(Self.samples)
        let meanTolerance = 5 * (lambda / n).squareRoot()
        let varianceTolerance = 5 * lambda * ((2 + 1 / lambda) / n).squareRoot()
        #expect(abs(mean - lambda) <= meanTolerance, "λ = \(lambda): mean \(mean)")
        #expect(abs(variance - lambda) <= varianceTolerance, "λ = \(lambda): variance \(variance)")
    }

    /// The pmf, bin by bin: inversion (2.5), PTRS with the small-k table (15.7) and PTRS with the
    /// Stirling form (10⁴ + 0.3); non-integer λ exercise the split λ = ⌊λ⌋ + fraction. Bins with
    /// fewer than 20 expected draws are merged into the tails.
    @Test(arguments: [2.5, 15.7, 10_000.3])
    func pmfPassesChiSquare(lambda: Double) {
        var generator = Xoshiro256StarStar(seed: 1802)
        var histogram: [Int64: Int] = [:]
        for _ in 0..<Self.samples { histogram[SkellamNoise.poisson(lambda, using: &generator), default: 0] += 1 }
        let n = Double(Self.samples)
        func probability(_ k: Int64) -> Double {
            exp(-lambda + Double(k) * log(lambda) - lgamma(Double(k) + 1))
        }
        let mode = Int64(lambda)
        var low = mode
        while low > 0 && probability(low - 1) * n >= 20 { low -= 1 }
        var high = mode
        while probability(high + 1) * n >= 20 { high += 1 }
        var counts: [Int] = []
        var expected: [Double] = []
        let inside = (low...high).map(probability)
        let below = (0..<low).reduce(0.0) { $0 + probability($1) }
        let above = 1 - below - inside.reduce(0, +)
        if low > 0 {
            counts.append(histogram.filter { $0.key < low }.values.reduce(0, +))
            expected.append(below * n)
        }
        for k in low...high {
            counts.append(histogram[k, default: 0])
            expected.append(probability(k) * n)
        }
        counts.append(histogram.filter { $0.key > high }.values.reduce(0, +))
        expected.append(max(above, 1e-12) * n)
        let (statistic, freedom) = chiSquare(counts, expected: expected)
        #expect(statistic < chiSquareLimit(freedom), "λ = \(lambda): χ² = \(statistic) with \(freedom) df")
    }

    /// At λ = 2^40 the Poisson is normal to within 10⁻⁶ (its skewness), so standardised draws must
    /// fill 20 equiprobable normal bins evenly: a shifted or mis-scaled PTRS fails this.
    @Test func largestLambdaIsNormalInShape() {
        let lambda = SkellamNoise.largestMu
        var generator = Xoshiro256StarStar(seed: 1803)
        let bins = 20
        // Upper edges of equiprobable standard-normal bins, by bisection on Φ.
        func phi(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
        let edges = (1..<bins).map { index -> Double in
            var low = -10.0
            var high = 10.0
            for _ in 0..<100 {
                let mid = (low + high) / 2
                if phi(mid) < Double(index) / Double(bins) { low = mid } else { high = mid }
            }
            return low
        }
        var counts = [Int](repeating: 0, count: bins)
        for _ in 0..<Self.samples {
            let z = (Double(SkellamNoise.poisson(lambda, using: &generator)) - lambda) / lambda.squareRoot()
            counts[edges.firstIndex { z < $0 } ?? bins - 1] += 1
        }
        let expected = [Double](repeating: Double(Self.samples) / Double(bins), count: bins)
        let (statistic, freedom) = chiSquare(counts, expected: expected)
        #expect(statistic < chiSquareLimit(freedom), "χ² = \(statistic) with \(freedom) df")
    }

    @Test func zeroLambdaIsAlwaysZero() {
        var generator = Xoshiro256StarStar(seed: 1804)
        let draws = (0..<1000).map { _ in SkellamNoise.poisson(0, using: &generator) }
        #expect(draws.allSatisfy { $0 == 0 })
    }
}

@Suite struct SkellamTests {
    @Test(arguments: [0.3, 7, 1e6])
    func meanIsZeroAndVarianceIsTwiceMu(mu: Double) {
        var generator = Xoshiro256StarStar(seed: 1811)
        let n = 200_000
        let draws = (0..<n).map { _ in Double(SkellamNoise.sample(mu: mu, using: &generator)) }
        let (mean, variance) = moments(draws)
        let sigma = (2 * mu).squareRoot()
        #expect(abs(mean) <= 5 * sigma / Double(n).squareRoot(), "μ = \(mu): mean \(mean)")
        // Var(s²)/σ⁴ ≈ (2 + kurtosis excess)/n with excess 1/(2μ) for the Skellam.
        let tolerance = 5 * 2 * mu * ((2 + 1 / (2 * mu)) / Double(n)).squareRoot()
        #expect(abs(variance - 2 * mu) <= tolerance, "μ = \(mu): variance \(variance)")
    }

    /// The distributed mechanism's premise: t sites adding Sk(μ/t) leave Sk(μ) on the sum, both
    /// through inversion (μ/t = 2.5) and PTRS (μ/t ≈ 3333).
    @Test(arguments: [(50.0, 20), (1e5, 30)])
    func sumOfSharesHasTheVarianceOfTheWhole(mu: Double, shares: Int) {
        var generator = Xoshiro256StarStar(seed: 1812)
        let n = 40_000
        let sums = (0..<n).map { _ in
            Double(
                (0..<shares).reduce(Int64(0)) { sum, _ in
                    sum + SkellamNoise.sample(mu: mu / Double(shares), using: &generator)
                })
        }
        let (mean, variance) = moments(sums)
        let sigma = (2 * mu).squareRoot()
        #expect(abs(mean) <= 5 * sigma / Double(n).squareRoot())
        #expect(abs(variance / (2 * mu) - 1) <= 5 * (2.0 / Double(n)).squareRoot(), "variance \(variance)")
    }
}

@Suite struct GaussianNoiseTests {
    @Test func standardNormalHasUnitMomentsAndGaussianTails() {
        var generator = Xoshiro256StarStar(seed: 1821)
        let n = 200_000
        let draws = (0..<n).map { _ in GaussianNoise.standardNormal(using: &generator) }
        let (mean, variance) = moments(draws)
        let fourth = draws.reduce(0) { $0 + $1 * $1 * $1 * $1 } / Double(n)
        #expect(abs(mean) <= 5 / Double(n).squareRoot())
        #expect(abs(variance - 1) <= 5 * (2 / Double(n)).squareRoot())
        // E[z⁴] = 3, Var(z⁴) = 96.
        #expect(abs(fourth - 3) <= 5 * (96 / Double(n)).squareRoot())
    }

    @Test func addPutsTheRequestedNoiseOnEveryValueIncludingAnOddLast() {
        var generator = Xoshiro256StarStar(seed: 1822)
        let n = 100_001
        var values = [Double](repeating: 10, count: n)
        GaussianNoise.add(to: &values, standardDeviation: 3, using: &generator)
        let (mean, variance) = moments(values)
        #expect(abs(mean - 10) <= 5 * 3 / Double(n).squareRoot())
        #expect(abs(variance - 9) <= 5 * 9 * (2 / Double(n)).squareRoot())
        #expect(values[n - 1] != 10)
        var untouched = [1.0, 2.0, 3.0]
        GaussianNoise.add(to: &untouched, standardDeviation: 0, using: &generator)
        #expect(untouched == [1, 2, 3])
    }
}
