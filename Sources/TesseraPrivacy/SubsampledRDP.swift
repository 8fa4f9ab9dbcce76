#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Privacy amplification by Poisson subsampling, in Rényi DP: each record (here, each site) takes
/// part in a step independently with probability q, under add/remove-one adjacency.
///
/// - The Gaussian gets the exact value of Mironov, Talwar and Zhang 2019 ("Rényi Differential
///   Privacy of the Sampled Gaussian Mechanism", §3.3), for integer and fractional orders.
/// - The Skellam mechanism gets the binomial expansion of the subsampled moment
///   (``shiftMechanismBound(samplingRate:order:rdp:)``), which is the Gaussian's exact value when
///   fed the Gaussian's RDP.
/// - ``generalUpperBound(samplingRate:order:rdp:)`` is Zhu and Wang's 2019 bound ("Poisson
///   Subsampled Rényi Differential Privacy", ICML) for any mechanism, kept for comparison.
public enum SubsampledRDP {
    /// The exact RDP at order α > 1 of the Poisson-subsampled Gaussian with noise multiplier z
    /// (standard deviation z × L2 sensitivity) and sampling rate q in [0, 1].
    ///
    /// Integer orders sum the binomial expansion of A_α = E[(p₁/p₀)^α] in log space. Fractional
    /// orders sum the two series of Mironov et al. 2019 until both terms fall below e⁻³⁰; if that
    /// series loses precision (a cancellation) or does not settle, the value at the next integer
    /// order is returned instead: RDP is nondecreasing in α, so the answer can only be pessimistic.
    public static func gaussian(noiseMultiplier z: Double, samplingRate q: Double, order alpha: Double) -> Double {
        precondition(alpha > 1 && alpha.isFinite, "RDP orders are finite and above 1")
        precondition(q >= 0 && q <= 1, "the sampling rate is a probability")
        if q == 0 { return 0 }
        if q == 1 { return alpha / (2 * z * z) }
        if alpha == alpha.rounded(.down) {
            return logMomentIntegerOrder(z: z, q: q, alpha: Int(alpha)) / (alpha - 1)
        }
        if let logMoment = logMomentFractionalOrder(z: z, q: q, alpha: alpha) {
            return logMoment / (alpha - 1)
        }
        let next = alpha.rounded(.up)
        return logMomentIntegerOrder(z: z, q: q, alpha: Int(next)) / (next - 1)
    }

    /// Zhu and Wang's general upper bound (2019, for any mechanism) on the RDP at integer order α ≥ 2 of any
    /// mechanism whose unsampled RDP at integer order ℓ is `rdp(ℓ)`, under Poisson sampling at rate q:
    ///
    ///     1/(α−1) · log[ (1−q)^(α−1)·(αq − q + 1) + C(α,2)·q²·(1−q)^(α−2)·e^rdp(2)
    ///                    + 3·Σ_{ℓ=3..α} C(α,ℓ)·q^ℓ·(1−q)^(α−ℓ)·e^((ℓ−1)·rdp(ℓ)) ]
    ///
    /// It is within log(3)/(α−1) of the truth, so at q = 1 it can exceed the unsampled RDP; callers
    /// take the smaller of the two (subsampling never costs privacy).
    public static func generalUpperBound(samplingRate q: Double, order alpha: Int, rdp: (Int) -> Double) -> Double {
        binomialSum(samplingRate: q, order: alpha, rdp: rdp, higherTermsFactor: 3)
    }

    /// The RDP at integer order α ≥ 2 of a Poisson-subsampled additive-noise mechanism whose noise
    /// is symmetric and whose unsampled RDP at integer order k is `rdp(k)`:
    ///
    ///     1/(α−1) · log Σ_{k=0..α} C(α,k)·(1−q)^(α−k)·q^k·e^((k−1)·rdp(k))      (k = 0, 1 give 1)
    ///
    /// For the addition of a site this is exact: it is the binomial expansion of
    /// E_P[((1−q) + q·Q/P)^α], and E_P[(Q/P)^k] = e^((k−1)·D_k(Q‖P)). For the removal of a site
    /// the same value bounds the Gaussian (Mironov, Talwar and Zhang 2019); the Skellam is a
    /// symmetric shift family like the Gaussian, and at the scale the distributed calibration works
    /// at its RDP is the Gaussian's to within 10⁻⁶, so the same expansion is used for it (Steinke
    /// 2022, "Composition of Differential Privacy & Privacy Amplification by Subsampling", states
    /// the expansion for Poisson subsampling under add/remove adjacency). Zhu and Wang's general
    /// bound, which needs no symmetry, multiplies every term from k = 3 by 3: at ε = 1 over 100
    /// rounds at q = 0.1 it asks for 3.7 times the noise.
    public static func shiftMechanismBound(samplingRate q: Double, order alpha: Int, rdp: (Int) -> Double) -> Double {
        binomialSum(samplingRate: q, order: alpha, rdp: rdp, higherTermsFactor: 1)
    }

    /// 1/(α−1) · log[ (1−q)^(α−1)·(1 + (α−1)q) + C(α,2)·q²·(1−q)^(α−2)·e^rdp(2)
    ///               + f·Σ_{k=3..α} C(α,k)·q^k·(1−q)^(α−k)·e^((k−1)·rdp(k)) ], in log space:
    /// the two bounds above differ only in the factor f on the terms from k = 3.
    static func binomialSum(
        samplingRate q: Double, order alpha: Int, rdp: (Int) -> Double, higherTermsFactor: Double
    ) -> Double {
        precondition(alpha >= 2, "the bound is stated for integer orders from 2")
        precondition(q >= 0 && q <= 1, "the sampling rate is a probability")
        if q == 0 { return 0 }
        let logQ = log(q)
        let logOneMinusQ = log1p(-q)
        let logFactor = log(higherTermsFactor)
        let a = Double(alpha)
        var sum = LogSpace.Sum()
        sum.add(LogSpace.power(logOneMinusQ, a - 1) + log1p((a - 1) * q))
        var logBinomial = log(a)
        for k in 2...alpha {
            let kk = Double(k)
            logBinomial += log(a - kk + 1) - log(kk)
            let factor = k >= 3 ? logFactor : 0
            sum.add(factor + logBinomial + kk * logQ + LogSpace.power(logOneMinusQ, a - kk) + (kk - 1) * rdp(k))
        }
        return sum.value / (a - 1)
    }

    /// log A_α for integer α: log Σᵢ C(α,i)·qⁱ·(1−q)^(α−i)·exp((i² − i)/(2z²)).
    static func logMomentIntegerOrder(z: Double, q: Double, alpha: Int) -> Double {
        let logQ = log(q)
        let logOneMinusQ = log1p(-q)
        let twoVariance = 2 * z * z
        let a = Double(alpha)
        var sum = LogSpace.Sum()
        var logBinomial = 0.0
        for index in 0...alpha {
            let i = Double(index)
            if index > 0 { logBinomial += log(a - i + 1) - log(i) }
            sum.add(logBinomial + i * logQ + (a - i) * logOneMinusQ + (i * i - i) / twoVariance)
        }
        return sum.value
    }

    /// log A_α for fractional α (Mironov et al. 2019, §3.3): two series, split at
    /// z₀ = z²·log(1/q − 1) + 1/2, whose generalised binomial coefficients change sign.
    static func logMomentFractionalOrder(z: Double, q: Double, alpha: Double) -> Double? {
        let logQ = log(q)
        let logOneMinusQ = log1p(-q)
        let twoVariance = 2 * z * z
        let erfcScale = 1 / (2.0.squareRoot() * z)
        let logHalf = log(0.5)
        let z0 = z * z * log(1 / q - 1) + 0.5
        var logA0 = -Double.infinity
        var logA1 = -Double.infinity
        var logAbsBinomial = 0.0
        var binomialIsPositive = true
        for index in 0..<maximumFractionalTerms {
            let i = Double(index)
            if index > 0 {
                let factor = (alpha - i + 1) / i
                if factor < 0 { binomialIsPositive.toggle() }
                logAbsBinomial += log(abs(factor))
            }
            let j = alpha - i
            let logS0 =
                logAbsBinomial + i * logQ + j * logOneMinusQ + (i * i - i) / twoVariance
                + logHalf + LogSpace.logErfc((i - z0) * erfcScale)
            let logS1 =
                logAbsBinomial + j * logQ + i * logOneMinusQ + (j * j - j) / twoVariance
                + logHalf + LogSpace.logErfc((z0 - j) * erfcScale)
            if binomialIsPositive {
                logA0 = LogSpace.add(logA0, logS0)
                logA1 = LogSpace.add(logA1, logS1)
            } else {
                guard let next0 = LogSpace.subtract(logA0, logS0), let next1 = LogSpace.subtract(logA1, logS1)
                else { return nil }
                logA0 = next0
                logA1 = next1
            }
            if max(logS0, logS1) < -30 {
                let result = LogSpace.add(logA0, logA1)
                return result.isFinite ? result : nil
            }
        }
        return nil
    }

    /// Far more terms than any order of the standard grid needs (hundreds at z ≥ 0.3); beyond this
    /// the series is abandoned for the next integer order.
    static let maximumFractionalTerms = 200_000
}
