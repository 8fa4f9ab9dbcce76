import Foundation
import TesseraPrivacy
import Testing

/// The papers' closed forms and the relations between the two subsampling analyses.
@Suite struct MechanismRDPTests {
    static let orders: [Double] = [1.5, 2, 2.5, 3, 7, 10.9, 32, 63, 256]

    @Test(arguments: [0.7, 1.0, 3.0])
    func theUnsampledGaussianIsAlphaOverTwoSigmaSquared(z: Double) {
        let mechanism = PrivacyMechanism.gaussian(noiseMultiplier: z)
        let atFullRate = mechanism.subsampledRDP(samplingRate: 1, orders: Self.orders)
        for (alpha, value) in zip(Self.orders, atFullRate) {
            #expect(value == alpha / (2 * z * z))
            #expect(mechanism.rdp(order: alpha) == alpha / (2 * z * z))
        }
    }

    /// The exact series, not the q = 1 shortcut: just below q = 1 they must meet α/(2σ²), at
    /// integer and at fractional orders.
    @Test(arguments: [0.7, 1.0, 3.0])
    func theSubsampledSeriesTendToTheUnsampledGaussianAsQApproachesOne(z: Double) {
        for alpha in Self.orders where alpha <= 63 {
            let value = SubsampledRDP.gaussian(noiseMultiplier: z, samplingRate: 1 - 1e-9, order: alpha)
            let error = relativeError(value, alpha / (2 * z * z))
            #expect(error < 1e-7, "order \(alpha): \(value)")
        }
    }

    /// At q = 1 only the last term of the Zhu–Wang sum is left: rdp(2) exactly at α = 2, and
    /// rdp(α) + log 3/(α − 1) above it.
    @Test func theZhuWangBoundAtFullRateIsTheUnsampledRDPPlusItsSlack() {
        let z = 1.3
        let rdp: (Int) -> Double = { Double($0) / (2 * z * z) }
        let atTwo = SubsampledRDP.generalUpperBound(samplingRate: 1, order: 2, rdp: rdp)
        #expect(relativeError(atTwo, rdp(2)) < 1e-12)
        for alpha in [3, 5, 10, 63] {
            let bound = SubsampledRDP.generalUpperBound(samplingRate: 1, order: alpha, rdp: rdp)
            let expected = rdp(alpha) + log(3) / Double(alpha - 1)
            #expect(relativeError(bound, expected) < 1e-12)
            #expect(bound >= rdp(alpha))
        }
    }

    /// The general bound applied to the Gaussian's own RDP is an upper bound on the exact value
    /// (equal at α = 2, up to rounding), and close to it at small rates and moderate orders.
    @Test func theZhuWangBoundIsAboveTheExactGaussianAndCloseAtSmallRates() {
        for q in [0.001, 0.01, 0.05, 0.2] {
            for z in [0.8, 1.1, 2, 5] {
                let rdp: (Int) -> Double = { Double($0) / (2 * z * z) }
                for alpha in [2, 3, 5, 10, 32, 63] {
                    let exact = SubsampledRDP.gaussian(noiseMultiplier: z, samplingRate: q, order: Double(alpha))
                    let bound = SubsampledRDP.generalUpperBound(samplingRate: q, order: alpha, rdp: rdp)
                    #expect(bound >= exact * (1 - 1e-8), "q \(q), z \(z), order \(alpha)")
                    if q <= 0.01, z <= 2, alpha <= 10 {
                        #expect(bound <= 2 * exact, "q \(q), z \(z), order \(alpha)")
                    }
                }
            }
        }
    }

    @Test func theSkellamBoundTendsToTheGaussianOfTheSameVariance() {
        let l2 = 30.0
        let l1 = 200.0
        var previousRatio = Double.infinity
        for mu in [1e2, 1e3, 1e4, 1e5, 1e6, 1e8] {
            let skellam = PrivacyMechanism.skellam(mu: mu, l1Sensitivity: l1, l2Sensitivity: l2)
            for alpha in [2.0, 5, 32] {
                let gaussian = alpha * l2 * l2 / (4 * mu)
                #expect(skellam.rdp(order: alpha) > gaussian)
            }
            let ratio = skellam.rdp(order: 5) / (5 * l2 * l2 / (4 * mu))
            #expect(ratio < previousRatio)
            previousRatio = ratio
        }
        #expect(previousRatio < 1 + 1e-4)
    }

    /// Theorem 3.5 of Agarwal et al. 2021 at V = 2·mu, worked by hand for mu = 50, Δ₁ = 4, Δ₂ = 2, α = 3:
    /// 3·4/200 + min((5·4 + 24)/(4·10⁴), 12/200) = 0.06 + 0.0011 = 0.0611.
    @Test func theSkellamBoundMatchesAHandWorkedCase() {
        let skellam = PrivacyMechanism.skellam(mu: 50, l1Sensitivity: 4, l2Sensitivity: 2)
        #expect(abs(skellam.rdp(order: 3) - 0.0611) < 1e-12)
        // A fractional order takes the next integer up; (1, 2) takes 2.
        #expect(skellam.rdp(order: 2.5) == skellam.rdp(order: 3))
        #expect(skellam.rdp(order: 1.1) == skellam.rdp(order: 2))
    }

    @Test func theSubsampledSkellamIsExactAtFullRateZeroAtZeroAndAmplifiedBetween() {
        let skellam = PrivacyMechanism.skellam(mu: 2_000, l1Sensitivity: 300, l2Sensitivity: 40)
        let unsampled = Self.orders.map { skellam.rdp(order: $0) }
        #expect(skellam.subsampledRDP(samplingRate: 1, orders: Self.orders) == unsampled)
        #expect(skellam.subsampledRDP(samplingRate: 0, orders: Self.orders).allSatisfy { $0 == 0 })
        let sampled = skellam.subsampledRDP(samplingRate: 0.01, orders: Self.orders)
        for (alpha, (value, full)) in zip(Self.orders, zip(sampled, unsampled)) {
            #expect(value > 0 && value < full, "order \(alpha)")
            // Amplification is strong at low orders and fades at high ones.
            if alpha <= 3 { #expect(value < full / 10, "order \(alpha)") }
        }
    }

    @Test func invalidNoiseAndSensitivitiesAreRefusedByName() {
        let cases: [(PrivacyMechanism, String)] = [
            (.gaussian(noiseMultiplier: 0), "noise_multiplier"),
            (.gaussian(noiseMultiplier: -1), "noise_multiplier"),
            (.gaussian(noiseMultiplier: .nan), "noise_multiplier"),
            (.gaussian(noiseMultiplier: .infinity), "noise_multiplier"),
            (.skellam(mu: 0, l1Sensitivity: 2, l2Sensitivity: 1), "mu"),
            (.skellam(mu: 10, l1Sensitivity: .nan, l2Sensitivity: 1), "L1"),
            (.skellam(mu: 10, l1Sensitivity: 2, l2Sensitivity: -1), "L2"),
            (.skellam(mu: 10, l1Sensitivity: 1, l2Sensitivity: 2), "swapped"),
        ]
        for (mechanism, name) in cases {
            #expect {
                try mechanism.validate()
            } throws: { error in
                let error = error as? PrivacyError
                return error?.code == .invalidParameter && error?.message.contains(name) == true
            }
        }
        #expect(throws: Never.self) { try PrivacyMechanism.gaussian(noiseMultiplier: 1.1).validate() }
        #expect(throws: Never.self) {
            try PrivacyMechanism.skellam(mu: 10, l1Sensitivity: 2, l2Sensitivity: 2).validate()
        }
    }

    @Test func mechanismsSurviveAJSONRoundTrip() throws {
        let mechanisms: [PrivacyMechanism] = [
            .gaussian(noiseMultiplier: 1.1), .skellam(mu: 12_345.5, l1Sensitivity: 321, l2Sensitivity: 17),
        ]
        let decoded = try JSONDecoder().decode(
            [PrivacyMechanism].self, from: try JSONEncoder().encode(mechanisms))
        #expect(decoded == mechanisms)
    }

    @Test func aSamplingRateOutsideZeroOneIsRefused() {
        for q in [-0.1, 1.5, .nan, .infinity] {
            #expect(throws: PrivacyError.self) { try PrivacyMechanism.validate(samplingRate: q) }
        }
        for q in [0, 0.5, 1] {
            #expect(throws: Never.self) { try PrivacyMechanism.validate(samplingRate: q) }
        }
    }
}
