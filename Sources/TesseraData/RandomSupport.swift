import Foundation
import TesseraTensor

/// Double-precision draws on top of `TesseraRandom`, for the samplers in this module.
///
/// The generator's own `nextFloat()` has 24 bits, which is too coarse where a tail matters:
/// a Gamma(0.1) draw raises a uniform to the power 10, and a log-normal size exponentiates a
/// normal. These helpers are defined from `next()` alone, so they are as reproducible as the
/// generator itself.
extension TesseraRandom {
    /// A uniform value in `[0, 1)` with 53 random bits.
    mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform value in `(0, 1]`: safe to take the logarithm of.
    mutating func nextOpenDouble() -> Double {
        1.0 - nextDouble()
    }

    /// A standard normal variate in double precision (Box–Muller, one value per two words).
    mutating func nextGaussian() -> Double {
        let radius = (-2.0 * log(nextOpenDouble())).squareRoot()
        return radius * cos(2.0 * Double.pi * nextDouble())
    }

    /// A Gamma(shape, 1) variate (Marsaglia & Tsang 2000). Shapes below 1 use the boost
    /// `Gamma(a) = Gamma(a + 1) · U^(1/a)`, which keeps the small-α Dirichlet draws of the
    /// label-skew partitioner exact instead of collapsing to zero.
    mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0, "Gamma shape must be positive")
        if shape < 1 {
            return nextGamma(shape: shape + 1) * pow(nextOpenDouble(), 1 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextOpenDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A draw from the symmetric Dirichlet(α, …, α) over `count` categories.
    mutating func nextDirichlet(alpha: Double, count: Int) -> [Double] {
        var draws = (0..<count).map { _ in nextGamma(shape: alpha) }
        let total = draws.reduce(0, +)
        if total > 0 && total.isFinite {
            for i in draws.indices { draws[i] /= total }
        } else {
            // Every Gamma draw underflowed (possible for tiny α): all the mass on one category
            // is the limit of the distribution as α → 0.
            draws = [Double](repeating: 0, count: count)
            draws[nextInt(below: count)] = 1
        }
        return draws
    }

    /// A Poisson(λ) count: Knuth's product method for small λ, a rounded normal
    /// approximation above 60 (where its error is far below the generators' noise).
    mutating func nextPoisson(_ lambda: Double) -> Int {
        if lambda <= 0 { return 0 }
        if lambda > 60 {
            return max(0, Int((lambda + lambda.squareRoot() * nextGaussian()).rounded()))
        }
        let limit = exp(-lambda)
        var product = nextOpenDouble()
        var count = 0
        while product > limit {
            product *= nextOpenDouble()
            count += 1
        }
        return count
    }

    /// A Bernoulli draw with success probability `p`.
    mutating func nextBernoulli(_ p: Double) -> Bool {
        nextDouble() < p
    }
}
