import Foundation
import TesseraPrivacy
import Testing

@Suite struct AdaptiveClippingTests {
    @Test func theNormGrowsWhenTooManySitesAreClippedAndShrinksOtherwise() throws {
        var clipping = try AdaptiveClipping(initialClipNorm: 1, targetQuantile: 0.5, learningRate: 0.2, bitNoise: 0)
        clipping.update(noisyCountUnderClip: 20, expectedCohort: 100)
        #expect(abs(clipping.clipNorm - exp(0.2 * 0.3)) < 1e-12)
        clipping.clipNorm = 1
        clipping.update(noisyCountUnderClip: 90, expectedCohort: 100)
        #expect(abs(clipping.clipNorm - exp(-0.2 * 0.4)) < 1e-12)
        clipping.clipNorm = 1
        clipping.update(noisyCountUnderClip: 50, expectedCohort: 100)
        #expect(clipping.clipNorm == 1)
    }

    /// A noisy count outside [0, cohort] is clamped, so one round moves C by at most e^η.
    @Test func aNoisyCountIsClampedToTheCohort() throws {
        var clipping = try AdaptiveClipping(initialClipNorm: 2, targetQuantile: 0.5, learningRate: 0.5, bitNoise: 10)
        clipping.update(noisyCountUnderClip: 1e6, expectedCohort: 100)
        #expect(abs(clipping.clipNorm - 2 * exp(-0.25)) < 1e-12)
        clipping.clipNorm = 2
        clipping.update(noisyCountUnderClip: -40, expectedCohort: 100)
        #expect(abs(clipping.clipNorm - 2 * exp(0.25)) < 1e-12)
        clipping.update(noisyCountUnderClip: .nan, expectedCohort: 100)
        #expect(abs(clipping.clipNorm - 2 * exp(0.25)) < 1e-12)
    }

    /// With zero noise on 1000 sites whose norms are 0.01, 0.02, …, 10, the norm settles where a
    /// 30% fraction of the sites fits under it.
    @Test func convergesToTheTargetQuantileWithoutNoise() throws {
        let norms = (1...1000).map { Double($0) / 100 }
        var clipping = try AdaptiveClipping(initialClipNorm: 0.05, targetQuantile: 0.3, learningRate: 0.2, bitNoise: 0)
        for _ in 0..<400 {
            let count = norms.filter { $0 <= clipping.clipNorm }.count
            clipping.update(noisyCountUnderClip: Double(count), expectedCohort: Double(norms.count))
        }
        let fraction = Double(norms.filter { $0 <= clipping.clipNorm }.count) / Double(norms.count)
        #expect(abs(fraction - 0.3) <= 0.03, "fraction \(fraction) at C = \(clipping.clipNorm)")
        #expect(abs(clipping.clipNorm - 3) <= 0.3)
    }

    @Test func updateNoiseMultiplierSplitsTheBudget() throws {
        let z = 1.1
        let bitNoise = 4.0
        let split = try AdaptiveClipping.updateNoiseMultiplier(total: z, bitNoise: bitNoise)
        let expected = pow(pow(z, -2) - pow(2 * bitNoise, -2), -0.5)
        #expect(abs(split - expected) < 1e-12)
        // The update and the count compose back to z.
        #expect(abs(1 / (split * split) + 1 / (4 * bitNoise * bitNoise) - 1 / (z * z)) < 1e-12)
        #expect(split > z)
    }

    @Test func updateNoiseMultiplierRefusesACountNoiseAtOrBelowHalfTheMultiplier() {
        for bitNoise in [0.5, 0.4, 0] {
            do {
                _ = try AdaptiveClipping.updateNoiseMultiplier(total: 1, bitNoise: bitNoise)
                Issue.record("σ_b = \(bitNoise) was accepted")
            } catch {
                #expect(error.code == .invalidParameter)
                #expect(error.message.contains("2σ_b > z"))
            }
        }
    }

    @Test func invalidParametersAreRefused() {
        let cases: [(Double, Double, Double, Double)] = [
            (0, 0.5, 0.2, 0), (1, 0, 0.2, 0), (1, 1, 0.2, 0), (1, 0.5, 0, 0), (1, 0.5, 0.2, -1),
            (.infinity, 0.5, 0.2, 0),
        ]
        for (norm, quantile, rate, noise) in cases {
            #expect(throws: PrivacyError.self) {
                try AdaptiveClipping(
                    initialClipNorm: norm, targetQuantile: quantile, learningRate: rate, bitNoise: noise)
            }
        }
    }

    @Test func decodingValidatesLikeTheInitialiser() throws {
        let good = try AdaptiveClipping(initialClipNorm: 1.5, targetQuantile: 0.5, learningRate: 0.2, bitNoise: 3)
        let data = try JSONEncoder().encode(good)
        #expect(try JSONDecoder().decode(AdaptiveClipping.self, from: data) == good)
        let bad = Data(#"{"clipNorm":1,"targetQuantile":1.5,"learningRate":0.2,"bitNoise":3}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(AdaptiveClipping.self, from: bad) }
    }
}
