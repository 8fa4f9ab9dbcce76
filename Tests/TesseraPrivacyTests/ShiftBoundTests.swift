import TesseraPrivacy
import Testing

/// The subsampled bound the Skellam mechanism is accounted with.
@Suite struct ShiftBoundTests {
    @Test func fedTheGaussianRDPItIsTheExactSubsampledGaussian() {
        for z in [0.7, 1.1, 2.5, 6.0] {
            let rdp = { (k: Int) in Double(k) / (2 * z * z) }
            for q in [0.001, 0.01, 0.1, 0.5] {
                for alpha in [2, 3, 8, 32, 63] {
                    let bound = SubsampledRDP.shiftMechanismBound(samplingRate: q, order: alpha, rdp: rdp)
                    let exact = SubsampledRDP.gaussian(noiseMultiplier: z, samplingRate: q, order: Double(alpha))
                    #expect(abs(bound - exact) <= 1e-9 * exact + 1e-15, "z \(z) q \(q) α \(alpha)")
                }
            }
        }
    }

    @Test func itNeverExceedsZhuAndWangsGeneralBoundAndIsTheUnsampledRDPAtFullRate() {
        let rdp = { (k: Int) in
            PrivacyMechanism.skellam(mu: 5e9, l1Sensitivity: 1e10, l2Sensitivity: 1e5).rdp(order: Double(k))
        }
        for q in [0.01, 0.2, 0.9] {
            for alpha in [2, 5, 40] {
                let tight = SubsampledRDP.shiftMechanismBound(samplingRate: q, order: alpha, rdp: rdp)
                let general = SubsampledRDP.generalUpperBound(samplingRate: q, order: alpha, rdp: rdp)
                #expect(tight <= general * (1 + 1e-12))
                #expect(tight > 0)
            }
        }
        for alpha in [2, 7, 30] {
            let full = SubsampledRDP.shiftMechanismBound(samplingRate: 1, order: alpha, rdp: rdp)
            #expect(abs(full - rdp(alpha)) <= 1e-9 * rdp(alpha))
        }
    }

    @Test func aSkellamAtTheCalibrationScaleCostsWhatTheGaussianDoes() {
        // Gaussian-equivalent multiplier 1.2 at sensitivity 10⁵ integer units.
        let z = 1.2
        let skellam = PrivacyMechanism.skellam(mu: z * z * 1e10 / 2, l1Sensitivity: 1e10, l2Sensitivity: 1e5)
        let gaussian = PrivacyMechanism.gaussian(noiseMultiplier: z)
        let a = PrivacyAccountant().composing(skellam, samplingRate: 0.1, steps: 100).epsilon(delta: 1e-5)
        let b = PrivacyAccountant().composing(gaussian, samplingRate: 0.1, steps: 100).epsilon(delta: 1e-5)
        #expect(a >= b)
        #expect(a <= b * 1.01, "Skellam \(a), Gaussian \(b)")
    }
}
