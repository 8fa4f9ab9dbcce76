import Foundation
import TesseraPrivacy
import TesseraSupport
import Testing

/// Monotonicity properties over seeded random parameters: more noise never costs more, and a
/// higher rate, more rounds or a smaller δ never cost less.
@Suite struct AccountantPropertyTests {
    struct Draw {
        var z: Double
        var q: Double
        var steps: Int
        var delta: Double

        init(using generator: inout Xoshiro256StarStar) {
            z = Double.random(in: 0.5...8, using: &generator)
            q = Double.random(in: 0.001...0.3, using: &generator)
            steps = Int.random(in: 1...5_000, using: &generator)
            delta = pow(10, Double.random(in: -9 ... -3, using: &generator))
        }

        func epsilon(z: Double? = nil, q: Double? = nil, steps: Int? = nil, delta: Double? = nil) -> Double {
            let accountant = PrivacyAccountant().composing(
                .gaussian(noiseMultiplier: z ?? self.z), samplingRate: q ?? self.q, steps: steps ?? self.steps)
            return accountant.epsilon(delta: delta ?? self.delta)
        }
    }

    @Test func epsilonFallsAsTheNoiseGrows() {
        var generator = Xoshiro256StarStar(seed: 1801)
        for _ in 0..<40 {
            let draw = Draw(using: &generator)
            let more = draw.z * Double.random(in: 1.05...2, using: &generator)
            let (base, noisier) = (draw.epsilon(), draw.epsilon(z: more))
            #expect(noisier < base, "z \(draw.z) → \(more), q \(draw.q), \(draw.steps) steps, δ \(draw.delta)")
        }
    }

    @Test func epsilonRisesWithTheSamplingRate() {
        var generator = Xoshiro256StarStar(seed: 1802)
        for _ in 0..<40 {
            let draw = Draw(using: &generator)
            let higher = min(1, draw.q * Double.random(in: 1.05...3, using: &generator))
            let (base, denser) = (draw.epsilon(), draw.epsilon(q: higher))
            #expect(denser > base, "q \(draw.q) → \(higher), z \(draw.z), \(draw.steps) steps, δ \(draw.delta)")
        }
    }

    @Test func epsilonRisesWithTheRounds() {
        var generator = Xoshiro256StarStar(seed: 1803)
        for _ in 0..<40 {
            let draw = Draw(using: &generator)
            let more = draw.steps + Int.random(in: 1...2_000, using: &generator)
            let (base, longer) = (draw.epsilon(), draw.epsilon(steps: more))
            #expect(longer > base, "\(draw.steps) → \(more) steps, z \(draw.z), q \(draw.q), δ \(draw.delta)")
        }
    }

    @Test func epsilonRisesAsDeltaFalls() {
        var generator = Xoshiro256StarStar(seed: 1804)
        for _ in 0..<40 {
            let draw = Draw(using: &generator)
            let smaller = draw.delta / Double.random(in: 2...100, using: &generator)
            let (base, stricter) = (draw.epsilon(), draw.epsilon(delta: smaller))
            #expect(stricter > base, "δ \(draw.delta) → \(smaller), z \(draw.z), q \(draw.q), \(draw.steps) steps")
        }
    }

    /// RDP is nondecreasing in the order (Mironov 2017), exact or bounded, over the whole grid.
    @Test func rdpIsNondecreasingInTheOrder() {
        var generator = Xoshiro256StarStar(seed: 1805)
        for _ in 0..<30 {
            let q = Double.random(in: 0.0005...1, using: &generator)
            let z = Double.random(in: 0.4...10, using: &generator)
            let mu = Double.random(in: 10...1e6, using: &generator)
            let l2 = Double.random(in: 1...50, using: &generator)
            let mechanisms: [PrivacyMechanism] = [
                .gaussian(noiseMultiplier: z),
                .skellam(mu: mu, l1Sensitivity: l2 * Double.random(in: 1...20, using: &generator), l2Sensitivity: l2),
            ]
            for mechanism in mechanisms {
                let curve = mechanism.subsampledRDP(samplingRate: q, orders: RDPOrders.standard)
                for index in curve.indices.dropFirst() {
                    let (low, high) = (curve[index - 1], curve[index])
                    #expect(
                        high >= low * (1 - 1e-9),
                        "\(mechanism), q \(q): order \(RDPOrders.standard[index - 1]) → \(RDPOrders.standard[index])")
                }
            }
        }
    }
}
