import TesseraPrivacy
import Testing

@Suite struct CalibrationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var epsilon: Double
        var delta: Double
        var q: Double
        var rounds: Int
        var testDescription: String { "ε \(epsilon), δ \(delta), q \(q), \(rounds) rounds" }
    }

    static func spends(_ mechanism: PrivacyMechanism, _ c: Case) -> Double {
        PrivacyAccountant().composing(mechanism, samplingRate: c.q, steps: c.rounds).epsilon(delta: c.delta)
    }

    @Test(arguments: [
        Case(epsilon: 1, delta: 1e-5, q: 0.01, rounds: 1_000),
        Case(epsilon: 3, delta: 1e-5, q: 0.05, rounds: 200),
        Case(epsilon: 8, delta: 1e-6, q: 0.002, rounds: 10_000),
        Case(epsilon: 0.5, delta: 1e-5, q: 1, rounds: 10),
    ])
    func theNoiseFoundIsTheSmallestThatMeetsTheTarget(_ c: Case) throws {
        let z = try NoiseCalibration.noiseMultiplier(
            targetEpsilon: c.epsilon, delta: c.delta, samplingRate: c.q, rounds: c.rounds)
        let atZ = Self.spends(.gaussian(noiseMultiplier: z), c)
        let justBelow = Self.spends(.gaussian(noiseMultiplier: z * (1 - 1e-3)), c)
        #expect(atZ <= c.epsilon)
        #expect(justBelow > c.epsilon)
    }

    /// Distributed DP: calibrate the Skellam mechanism by its Gaussian-equivalent multiplier
    /// (variance 2·mu = (z·Δ₂)²), as the distributed mode does.
    @Test func aSkellamMechanismIsCalibratedThroughItsClosure() throws {
        let c = Case(epsilon: 3, delta: 1e-5, q: 0.02, rounds: 500)
        let (l1, l2) = (400.0, 60.0)
        let skellam: (Double) throws(PrivacyError) -> PrivacyMechanism = { z in
            .skellam(mu: (z * l2) * (z * l2) / 2, l1Sensitivity: l1, l2Sensitivity: l2)
        }
        let z = try NoiseCalibration.noiseMultiplier(
            targetEpsilon: c.epsilon, delta: c.delta, samplingRate: c.q, rounds: c.rounds, mechanism: skellam)
        #expect(Self.spends(try skellam(z), c) <= c.epsilon)
        #expect(Self.spends(try skellam(z * (1 - 1e-3)), c) > c.epsilon)
        // The Zhu–Wang bound and the Skellam correction cost some noise over the exact Gaussian.
        let gaussian = try NoiseCalibration.noiseMultiplier(
            targetEpsilon: c.epsilon, delta: c.delta, samplingRate: c.q, rounds: c.rounds)
        #expect(z > gaussian)
    }

    @Test func aTargetNoNoiseCanReachSaysWhatToChange() {
        #expect {
            try NoiseCalibration.noiseMultiplier(targetEpsilon: 0.01, delta: 1e-10, samplingRate: 1, rounds: 10_000)
        } throws: { error in
            let error = error as? PrivacyError
            return error?.code == .unreachableTarget && error?.message.contains("no noise multiplier up to") == true
        }
    }

    @Test func aTargetMetByTheLeastNoiseSearchedReturnsIt() throws {
        let z = try NoiseCalibration.noiseMultiplier(targetEpsilon: 1e9, delta: 1e-5, samplingRate: 0.01, rounds: 1)
        #expect(z == NoiseCalibration.searchRange.lowerBound)
    }

    @Test(
        arguments: [
            (0.0, 1e-5, 0.01, 100, "target_epsilon"),
            (-1, 1e-5, 0.01, 100, "target_epsilon"),
            (.nan, 1e-5, 0.01, 100, "target_epsilon"),
            (.infinity, 1e-5, 0.01, 100, "target_epsilon"),
            (1, 0, 0.01, 100, "delta"),
            (1, 1, 0.01, 100, "delta"),
            (1, 1e-5, 0, 100, "sampling rate"),
            (1, 1e-5, 1.5, 100, "sampling rate"),
            (1, 1e-5, -0.2, 100, "sampling rate"),
            (1, 1e-5, 0.01, 0, "rounds"),
        ] as [(Double, Double, Double, Int, String)])
    func badInputsAreRefusedByName(epsilon: Double, delta: Double, q: Double, rounds: Int, field: String) {
        #expect {
            try NoiseCalibration.noiseMultiplier(targetEpsilon: epsilon, delta: delta, samplingRate: q, rounds: rounds)
        } throws: { error in
            let error = error as? PrivacyError
            return error?.code == .invalidParameter && error?.message.contains(field) == true
        }
    }

    @Test func aMechanismThatRefusesItsNoiseStopsTheSearch() {
        let refusing = { (z: Double) throws(PrivacyError) -> PrivacyMechanism in
            throw PrivacyError(code: .ringOverflow, message: "z \(z) overflows a 20-bit ring")
        }
        #expect {
            try NoiseCalibration.noiseMultiplier(
                targetEpsilon: 1, delta: 1e-5, samplingRate: 0.01, rounds: 10, mechanism: refusing)
        } throws: { error in
            (error as? PrivacyError)?.code == .ringOverflow
        }
        let invalid: (Double) throws(PrivacyError) -> PrivacyMechanism = { _ in
            .skellam(mu: 10, l1Sensitivity: 1, l2Sensitivity: 5)
        }
        #expect {
            try NoiseCalibration.noiseMultiplier(
                targetEpsilon: 1, delta: 1e-5, samplingRate: 0.01, rounds: 10, mechanism: invalid)
        } throws: { error in
            (error as? PrivacyError)?.code == .invalidParameter
        }
    }
}
