import Foundation
import Testing

@testable import TesseraFederation

/// `|a − b| ≤ tolerance` for every coordinate, and equal lengths.
private func close(_ a: [Float], _ b: [Double], tolerance: Double = 1e-5) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance }
}

/// The code of the `AggregationError` `body` throws, or `nil` if it does not throw one.
private func errorCode(_ body: () throws -> Void) -> AggregationError.Code? {
    do {
        try body()
        return nil
    } catch let error as AggregationError {
        return error.code
    } catch {
        return nil
    }
}

@Suite("Aggregation maths")
struct AggregationMathTests {
    @Test("weighted mean with unequal weights")
    func weightedMeanUnequal() throws {
        // (1·[1, 2] + 3·[3, 6]) / 4 = [10/4, 20/4]
        let mean = try Aggregation.weightedMean([[1, 2], [3, 6]], weights: [1, 3])
        #expect(close(mean, [2.5, 5]))
        // Sample counts are the weights of a plaintext round.
        let updates = [ClientUpdate(delta: [1, 2], sampleCount: 10), ClientUpdate(delta: [3, 6], sampleCount: 30)]
        #expect(close(try Aggregation.weightedMean(updates), [2.5, 5]))
        // A zero weight drops a vector entirely.
        #expect(close(try Aggregation.weightedMean([[100, 100], [3, 6]], weights: [0, 2]), [3, 6]))
    }

    @Test("weighted mean over several tiles: every coordinate, the same to the bit as summing each in order")
    func weightedMeanAcrossTiles() throws {
        // 5000 coordinates: two whole tiles of 2048 and a partial one. Values depend on the
        // coordinate and the vector, so a coordinate taken from the wrong place would show.
        let count = 5_000
        let vectors: [[Float]] = (0..<3).map { k in
            (0..<count).map { j in Float(sin(Double(j) * 0.37 + Double(k))) * Float(k + 1) }
        }
        let weights: [Double] = [2, 0, 5]
        let mean = try Aggregation.weightedMean(vectors, weights: weights)
        let expected: [Float] = (0..<count).map { j in
            var sum = 0.0
            for (vector, weight) in zip(vectors, weights) where weight > 0 { sum += weight * Double(vector[j]) }
            return Float(sum / 7)
        }
        #expect(mean.count == count)
        #expect(mean == expected)
    }

    @Test("the finiteness scan finds the first infinity or NaN anywhere, and accepts every finite value")
    func finitenessScan() {
        let finite: [Float] = [
            0, -0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
            -.leastNormalMagnitude, 3.3e38, .leastNormalMagnitude / 2,
        ]
        #expect(Aggregation.firstNonFiniteIndex(finite) == nil)
        // Around the scan's block boundaries, and two bad values (the first one counts).
        for index in [0, 1, 4095, 4096, 4097, 9999] {
            for bad in [Float.infinity, -.infinity, .nan, -.nan, .signalingNaN] {
                var vector = [Float](repeating: 0.25, count: 10_000)
                vector[index] = bad
                vector[9_999] = .nan
                #expect(Aggregation.firstNonFiniteIndex(vector) == index)
            }
        }
        let message = errorCode {
            _ = try Aggregation.weightedMean([[1, 2, 3], [4, .infinity, 6]], weights: [1, 1])
        }
        #expect(message == .nonFiniteValue)
    }

    @Test("weighted mean refuses empty, ragged, non-finite and badly weighted input")
    func weightedMeanErrors() {
        #expect(errorCode { _ = try Aggregation.weightedMean([], weights: []) } == .emptyInput)
        #expect(errorCode { _ = try Aggregation.weightedMean([[1, 2], [1]], weights: [1, 1]) } == .mismatchedLengths)
        #expect(errorCode { _ = try Aggregation.weightedMean([[1], [2]], weights: [1]) } == .mismatchedLengths)
        #expect(errorCode { _ = try Aggregation.weightedMean([[1], [.nan]], weights: [1, 1]) } == .nonFiniteValue)
        #expect(errorCode { _ = try Aggregation.weightedMean([[1], [2]], weights: [0, 0]) } == .invalidWeight)
        #expect(errorCode { _ = try Aggregation.weightedMean([[1], [2]], weights: [-1, 2]) } == .invalidWeight)
        let negative = [ClientUpdate(delta: [1], sampleCount: -5, participant: "site-3")]
        do {
            _ = try Aggregation.weightedMean(negative)
            Issue.record("a negative sample count was accepted")
        } catch {
            #expect(error.code == .invalidWeight)
            #expect(error.message.contains("site-3"))
        }
    }

    @Test("coordinate median of an odd count is the middle value")
    func medianOdd() throws {
        // columns (1, 2, 4), (5, 0, 4), (3, 9, 4)
        let median = try Aggregation.coordinateMedian([[1, 5, 3], [2, 0, 9], [4, 4, 4]])
        #expect(close(median, [2, 4, 4]))
    }

    @Test("coordinate median of an even count averages the two middle values")
    func medianEven() throws {
        // columns (1, 2, 4, 10) → 3; (5, 0, 4, −1) → (0 + 4)/2; (3, 9, 4, 0) → (3 + 4)/2
        let median = try Aggregation.coordinateMedian([[1, 5, 3], [2, 0, 9], [4, 4, 4], [10, -1, 0]])
        #expect(close(median, [3, 2, 3.5]))
    }

    @Test("trimmed mean drops ⌊βn⌋ from each side")
    func trimmedMean() throws {
        // n = 5, β = 0.2 → k = 1: column (1, 2, 3, 4, 100) keeps (2, 3, 4) → 3;
        // column (−50, 0, 0, 3, 3) keeps (0, 0, 3) → 1.
        let vectors: [[Float]] = [[1, -50], [2, 0], [3, 0], [4, 3], [100, 3]]
        #expect(close(try Aggregation.trimmedMean(vectors, trimFraction: 0.2), [3, 1]))
        // β = 0 is the plain mean: (1 + 2 + 3 + 4 + 100)/5 = 22, (−50 + 6)/5 = −8.8
        #expect(close(try Aggregation.trimmedMean(vectors, trimFraction: 0), [22, -8.8]))
        // β = 0.1 trims nothing from 5 updates (⌊0.5⌋ = 0).
        #expect(Aggregation.trimCount(count: 5, trimFraction: 0.1) == 0)
        #expect(errorCode { _ = try Aggregation.trimmedMean(vectors, trimFraction: 0.5) } == .invalidParameter)
        #expect(errorCode { _ = try Aggregation.trimmedMean([], trimFraction: 0.1) } == .emptyInput)
    }

    static let honestAndOutlier: [[Float]] = [[1, 1], [1.1, 0.9], [0.9, 1.1], [1, 1.05], [100, 100]]

    @Test("Krum picks an honest update when an outlier is present")
    func krumPicksHonest() throws {
        // n = 5, f = 1: each score sums the n − f − 2 = 2 smallest squared distances.
        // Update 3 = [1, 1.05]: distances 0.0025 (to 0), 0.0325 (to 1), 0.0125 (to 2) → 0.015, the lowest.
        let scores = try Aggregation.krumScores(Self.honestAndOutlier, byzantine: 1)
        #expect(abs(scores[3] - 0.015) < 1e-6)
        #expect(abs(scores[0] - 0.0225) < 1e-6)
        #expect(scores[4] > 10_000)
        let chosen = try Aggregation.krum(Self.honestAndOutlier, byzantine: 1)
        #expect(chosen.index == 3)
        #expect(chosen.vector == [1, 1.05])
    }

    @Test("Multi-Krum averages the m best and leaves the outlier out")
    func multiKrum() throws {
        // Scores rank 3, 0, 2, 1, 4; the three best average to [(1 + 1 + 0.9)/3, (1.05 + 1 + 1.1)/3].
        let result = try Aggregation.multiKrum(Self.honestAndOutlier, byzantine: 1, selecting: 3)
        #expect(result.indices == [3, 0, 2])
        #expect(close(result.mean, [2.9 / 3, 3.15 / 3]))
        #expect(
            errorCode { _ = try Aggregation.multiKrum(Self.honestAndOutlier, byzantine: 1, selecting: 6) }
                == .invalidParameter)
    }

    @Test("Krum refuses n ≤ 2f + 2")
    func krumTooManyByzantine() {
        let four = Array(Self.honestAndOutlier.prefix(4))
        #expect(errorCode { _ = try Aggregation.krum(four, byzantine: 1) } == .tooManyByzantine)
        #expect(errorCode { _ = try Aggregation.krum(Self.honestAndOutlier, byzantine: 2) } == .tooManyByzantine)
        #expect(errorCode { _ = try Aggregation.krum(four, byzantine: 0) } == nil)
        #expect(Aggregation.krumMinimumUpdates(byzantine: 1) == 5)
    }
}

@Suite("Server strategies")
struct ServerStrategyTests {
    let updates = [
        ClientUpdate(delta: [1, 0], sampleCount: 1, participant: "a"),
        ClientUpdate(delta: [0, 1], sampleCount: 3, participant: "b"),
    ]

    @Test("FedAvg applies the sample-weighted mean, scaled by the server learning rate")
    func fedAvg() throws {
        // mean = (1·[1, 0] + 3·[0, 1]) / 4 = [0.25, 0.75]
        var plain = try FedAvg()
        #expect(close(try plain.step(global: [1, 1], aggregate: .individual(updates)), [1.25, 1.75]))
        var scaled = try FedAvg(serverLearningRate: 2)
        #expect(close(try scaled.step(global: [1, 1], aggregate: .individual(updates)), [1.5, 2.5]))
        // The secure path hands over the mean itself and gets the same model.
        var secure = try FedAvg()
        #expect(close(try secure.step(global: [1, 1], aggregate: .mean([0.25, 0.75])), [1.25, 1.75]))
        #expect(
            errorCode { _ = try secure.step(global: [1, 1, 1], aggregate: .mean([0.25, 0.75])) } == .mismatchedLengths)
        #expect(errorCode { _ = try FedAvg(serverLearningRate: 0) } == .invalidParameter)
    }

    @Test("FedAvgM accumulates server momentum over two rounds")
    func fedAvgM() throws {
        // β = 0.5, η = 1. Round 1: m = [1, −2], x = [0, 0] + m = [1, −2].
        // Round 2: m = 0.5·[1, −2] + [1, 1] = [1.5, 0], x = [1, −2] + [1.5, 0] = [2.5, −2].
        var strategy = try FedAvgM(serverLearningRate: 1, momentum: 0.5)
        let x1 = try strategy.step(global: [0, 0], aggregate: .mean([1, -2]))
        #expect(close(x1, [1, -2]))
        let x2 = try strategy.step(global: x1, aggregate: .mean([1, 1]))
        #expect(close(x2, [2.5, -2]))
        #expect(close(strategy.velocity ?? [], [1.5, 0]))
        #expect(errorCode { _ = try FedAvgM(momentum: 1) } == .invalidParameter)
    }

    @Test("FedProx: the server step is FedAvg's, the client adds μ(w − w_global)")
    func fedProx() throws {
        var prox = try FedProx(mu: 1)
        var avg = try FedAvg()
        #expect(
            try prox.step(global: [1, 1], aggregate: .individual(updates))
                == avg.step(global: [1, 1], aggregate: .individual(updates)))
        // g + μ(w − w0) = [1, 1] + 0.5·([2, 0] − [1, 1]) = [1.5, 0.5]
        var gradients: [Float] = [1, 1]
        try FedProx.proximalGradient(gradients: &gradients, parameters: [2, 0], global: [1, 1], mu: 0.5)
        #expect(close(gradients, [1.5, 0.5]))
        // (μ/2)‖w − w0‖² = 0.25 · (1 + 1)
        #expect(abs(try FedProx.proximalTerm(parameters: [2, 0], global: [1, 1], mu: 0.5) - 0.5) < 1e-6)
        var short: [Float] = [1]
        #expect(
            errorCode { try FedProx.proximalGradient(gradients: &short, parameters: [2, 0], global: [1, 1], mu: 0.5) }
                == .mismatchedLengths)
    }

    // The adaptive optimisers are checked for two rounds against values worked out by hand from
    // Reddi et al. 2021, Algorithm 2, with η = 1, β1 = 0.5, τ = 0.5 (so v₋₁ = τ² = 0.25),
    // x₀ = [1, −1], Δ₁ = [2, −1], Δ₂ = [0, 1]. In both rounds m₁ = [1, −0.5], m₂ = [0.5, 0.25].

    @Test("FedAdam, two rounds by hand")
    func fedAdam() throws {
        // β2 = 0.75. v₁ = 0.75·0.25 + 0.25·[4, 1] = [1.1875, 0.4375];
        // x₁ = x₀ + m₁/(√v₁ + τ) = [1 + 1/1.58972, −1 − 0.5/1.16144] = [1.629040, −1.430501].
        // v₂ = 0.75·v₁ + 0.25·[0, 1] = [0.890625, 0.578125];
        // x₂ = x₁ + m₂/(√v₂ + τ) = [1.975365, −1.232143].
        var strategy = try FedAdam(serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5)
        let x1 = try strategy.step(global: [1, -1], aggregate: .mean([2, -1]))
        #expect(close(x1, [1.629040, -1.430501]))
        #expect(close(strategy.moments?.second ?? [], [1.1875, 0.4375]))
        let x2 = try strategy.step(global: x1, aggregate: .mean([0, 1]))
        #expect(close(x2, [1.975365, -1.232143]))
        #expect(close(strategy.moments?.first ?? [], [0.5, 0.25]))
        #expect(close(strategy.moments?.second ?? [], [0.890625, 0.578125]))
    }

    @Test("FedYogi, two rounds by hand, with v growing and holding")
    func fedYogi() throws {
        // β2 = 0.75. Round 1: v₋₁ − Δ² < 0 → v₁ = 0.25 + 0.25·[4, 1] = [1.25, 0.5];
        // x₁ = [1 + 1/(√1.25 + 0.5), −1 − 0.5/(√0.5 + 0.5)] = [1.618034, −1.414214].
        // Round 2: coordinate 0 has Δ² = 0 < v → v shrinks by 0.25·0 (stays 1.25);
        // coordinate 1 has Δ² = 1 > 0.5 → v = 0.5 + 0.25 = 0.75.
        // x₂ = [1.618034 + 0.5/(√1.25 + 0.5), −1.414214 + 0.25/(√0.75 + 0.5)] = [1.927051, −1.231201].
        var strategy = try FedYogi(serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5)
        let x1 = try strategy.step(global: [1, -1], aggregate: .mean([2, -1]))
        #expect(close(x1, [1.618034, -1.414214]))
        let x2 = try strategy.step(global: x1, aggregate: .mean([0, 1]))
        #expect(close(x2, [1.927051, -1.231201]))
        #expect(close(strategy.moments?.second ?? [], [1.25, 0.75]))
        // When v > Δ² Yogi *decreases* v additively, unlike Adam's decay: v = 1 − 0.25·0.25·1.
        #expect(abs(FedYogi.secondMoment(previous: 1, squaredUpdate: 0.25, beta2: 0.75) - 0.9375) < 1e-12)
    }

    @Test("FedAdagrad, two rounds by hand")
    func fedAdagrad() throws {
        // v₁ = 0.25 + [4, 1] = [4.25, 1.25]; x₁ = [1 + 1/(√4.25 + 0.5), −1 − 0.5/(√1.25 + 0.5)]
        //    = [1.390388, −1.309017].
        // v₂ = v₁ + [0, 1] = [4.25, 2.25]; x₂ = [x₁₀ + 0.5/2.561553, x₁₁ + 0.25/2] = [1.585582, −1.184017].
        var strategy = try FedAdagrad(serverLearningRate: 1, beta1: 0.5, tau: 0.5)
        let x1 = try strategy.step(global: [1, -1], aggregate: .mean([2, -1]))
        #expect(close(x1, [1.390388, -1.309017]))
        let x2 = try strategy.step(global: x1, aggregate: .mean([0, 1]))
        #expect(close(x2, [1.585582, -1.184017]))
        #expect(close(strategy.moments?.second ?? [], [4.25, 2.25]))
    }

    @Test("adaptive defaults are the documented ones")
    func adaptiveDefaults() throws {
        let adam = try FedAdam().hyperparameters
        #expect(adam == AdaptiveHyperparameters(learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 0.001))
        let yogi = try FedYogi().hyperparameters
        #expect(yogi == AdaptiveHyperparameters(learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 0.001))
        let adagrad = try FedAdagrad().hyperparameters
        #expect(adagrad.learningRate == 0.1 && adagrad.beta1 == 0 && adagrad.tau == 0.001)
        #expect(errorCode { _ = try FedAdam(tau: 0) } == .invalidParameter)
        #expect(errorCode { _ = try FedYogi(beta2: 1) } == .invalidParameter)
    }

    @Test("a failed step leaves the optimiser state untouched")
    func failedStepIsAtomic() throws {
        var strategy = try FedAdam(serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5)
        _ = try strategy.step(global: [1, -1], aggregate: .mean([2, -1]))
        let before = strategy.state
        #expect(
            errorCode { _ = try strategy.step(global: [1, -1], aggregate: .mean([.infinity, 0])) } == .nonFiniteValue)
        #expect(errorCode { _ = try strategy.step(global: [1, -1], aggregate: .individual([])) } == .emptyInput)
        #expect(strategy.state == before)
    }

    @Test("saved state restores into a fresh strategy and continues identically")
    func stateRoundTrip() throws {
        var original = try FedYogi(serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5)
        let x1 = try original.step(global: [1, -1], aggregate: .mean([2, -1]))
        var restored = try FedYogi(serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5)
        try restored.restore(original.state)
        #expect(restored.state.rounds == 1)
        #expect(
            try restored.step(global: x1, aggregate: .mean([0, 1]))
                == original.step(global: x1, aggregate: .mean([0, 1])))
        var momentum = try FedAvgM()
        #expect(errorCode { try momentum.restore(original.state) } == .invalidState)
    }

    @Test("robust strategies refuse the secure path and say why")
    func robustNeedIndividualUpdates() throws {
        var strategies: [any FederatedStrategy] = [try Median(), try TrimmedMean(), try Krum(), try MultiKrum()]
        for index in strategies.indices {
            #expect(strategies[index].requiresIndividualUpdates)
            do {
                _ = try strategies[index].step(global: [0, 0], aggregate: .mean([1, 1]))
                Issue.record("\(strategies[index].name) accepted a securely aggregated mean")
            } catch {
                #expect(error.code == .individualUpdatesRequired)
                #expect(error.message.contains("only learns the weighted mean"))
            }
        }
        let meanOnly: [any FederatedStrategy] = [
            try FedAvg(), try FedAvgM(), try FedProx(), try FedAdam(), try FedYogi(), try FedAdagrad(),
        ]
        #expect(meanOnly.allSatisfy { !$0.requiresIndividualUpdates })
    }

    @Test("robust strategies step to the robust aggregate")
    func robustSteps() throws {
        let round = AggregationMathTests.honestAndOutlier.enumerated().map {
            ClientUpdate(delta: $0.element, sampleCount: 1_000_000 * ($0.offset == 4 ? 1 : 0) + 1)
        }
        // The outlier claims a million samples; the robust rules ignore sample counts.
        var median = try Median()
        #expect(close(try median.step(global: [0, 0], aggregate: .individual(round)), [1, 1.05]))
        var krum = try Krum(byzantine: 1)
        #expect(close(try krum.step(global: [0, 0], aggregate: .individual(round)), [1, 1.05]))
        #expect(krum.lastSelection == [3])
        var multi = try MultiKrum(byzantine: 1)  // m = n − f = 4: every honest update
        #expect(close(try multi.step(global: [0, 0], aggregate: .individual(round)), [1, 1.0125]))
        #expect(Set(multi.lastSelection) == [0, 1, 2, 3])
        var trimmed = try TrimmedMean(trimFraction: 0.2)
        // columns (0.9, 1, 1, 1.1, 100) and (0.9, 1, 1.05, 1.1, 100) keep the middle three.
        #expect(close(try trimmed.step(global: [0, 0], aggregate: .individual(round)), [3.1 / 3, 3.15 / 3]))
        var tooFew = try Krum(byzantine: 2)
        #expect(errorCode { _ = try tooFew.step(global: [0, 0], aggregate: .individual(round)) } == .tooManyByzantine)
    }
}
