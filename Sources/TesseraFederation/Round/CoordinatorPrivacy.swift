import Foundation
import TesseraCrypto
import TesseraPrivacy
import TesseraSecAgg
import TesseraTensor

/// Differential privacy in the coordinator's rounds: what a round announces, what it charges
/// the accountant, and how the noisy sum becomes the aggregate the strategy applies.
extension CoordinatorStateMachine {
    /// The announcement of the current round (without the distributed parameters, which need
    /// the round's SecAgg threshold).
    func roundPrivacy(_ dp: FederationPlan.Privacy, randomness: RoundRandomness) -> RoundPrivacy {
        RoundPrivacy(
            mode: dp.mode, clipNorm: clipNorm, noiseMultiplier: dp.noiseMultiplier, delta: dp.delta,
            samplingRate: dp.samplingRate, reportsWithinClip: dp.adaptive != nil,
            rotationSeed: randomness.word("dp rotation"))
    }

    /// Charges the round to the accountant before anything of it is sent, or ends the
    /// experiment when that would take ε past the budget. Returns whether the round goes on.
    mutating func chargePrivacy(
        _ dp: FederationPlan.Privacy, context: inout RoundContext, now: Double, into actions: inout [CoordinatorAction]
    ) -> Bool {
        let announced = context.secure?.privacy ?? roundPrivacy(dp, randomness: context.randomness)
        let charged = privacyAccountant.composing(announced.mechanism, samplingRate: dp.samplingRate)
        let epsilon = charged.epsilon(delta: dp.delta)
        if let target = dp.targetEpsilon, epsilon > target * (1 + 1e-9) {
            let spent = privacyAccountant.steps == 0 ? 0 : privacyAccountant.epsilon(delta: dp.delta)
            let reason =
                "privacy budget: round \(context.round) would take ε to \(Self.format(epsilon)) at δ \(dp.delta), past "
                + "target_epsilon \(target) (spent so far: \(Self.format(spent)))"
            budgetExhausted = true
            switch dp.onBudgetExhausted {
            case .stop:
                actions.append(.log("\(reason); the experiment stops after \(completedRounds) completed rounds"))
                finish(into: &actions)
            case .fail:
                context.cohort = []
                failRound(context, reason: reason, now: now, into: &actions)
            }
            return false
        }
        privacyAccountant = charged
        context.privacy = announced
        context.privacyRecord = RoundPrivacyRecord(
            epsilon: epsilon, delta: dp.delta, mechanism: announced.mechanism, samplingRate: dp.samplingRate,
            clipNorm: clipNorm, nextClipNorm: clipNorm)
        actions.append(
            .log(
                "round \(context.round): differential privacy (\(dp.mode.rawValue)), clip norm \(Self.format(clipNorm)); "
                    + "ε after this round \(Self.format(epsilon)) at δ \(dp.delta)"))
        return true
    }

    /// The noisy sum of the clipped updates of a private secure round, and the count of sites
    /// within the clip when adaptive clipping asked for it (noised in distributed mode, still
    /// clean in central mode).
    func decodePrivateSum(
        _ result: SecAggResult, secure: SecureRound, privacy: RoundPrivacy, context: RoundContext
    ) throws -> (sum: [Double], withinClip: Double?) {
        let inputs = result.survivors.count
        if let distributed = privacy.distributed {
            let decoded = try distributed.decode(result.sum, inputCount: inputs, rotationSeed: privacy.rotationSeed)
            return (decoded.sum, decoded.countWithinClip)
        }
        let metrics = try secure.assignment.metrics()
        let updateWords = result.sum.count - metrics.wordCount
        let decoded = try secure.codec.decode(sum: Array(result.sum[..<updateWords]), inputCount: inputs)
        let expected = context.expectedWeight(of: result.survivors, maxWeight: secure.codec.maxWeight)
        let (metricsWeight, means) = try metrics.decode(result.sum[updateWords...], inputCount: inputs)
        try Self.checkDecoded(
            decoded, metricsWeight: metrics.count > 0 ? metricsWeight : Double(expected), codec: secure.codec,
            expectedWeight: expected)
        let total = Double(decoded.totalWeight)
        let withinClip = privacy.reportsWithinClip ? (means.first.flatMap { $0 } ?? 0) * total : nil
        return (decoded.mean.map { $0 * total }, withinClip)
    }

    /// Adds the central noise (central mode), divides by the expected cohort, moves the
    /// adaptive clip norm, and applies the result as the round's mean update.
    mutating func finishPrivateRound(
        _ context: RoundContext, sum: [Double], withinClip: Double?, now: Double,
        into actions: inout [CoordinatorAction]
    ) {
        guard let dp = plan.privacy, var record = context.privacyRecord else {
            preconditionFailure("a private round always carries its charge")
        }
        var context = context
        var sum = sum
        var count = withinClip
        if dp.mode == .central {
            let deviation = dp.updateNoiseMultiplier * clipNorm
            switch plan.publicRandomness {
            case .fromSeed:
                var generator = TesseraRandom(seed: Self.noiseSeed(plan: plan, round: context.round, attempt: attempt))
                Self.addCentralNoise(
                    to: &sum, count: &count, deviation: deviation, countNoise: dp.countNoise, &generator)
            case .system:
                var generator = SecureRandomGenerator()
                Self.addCentralNoise(
                    to: &sum, count: &count, deviation: deviation, countNoise: dp.countNoise, &generator)
            }
        }
        // Divided by the expected cohort, not by the contributors: their number is not noised.
        let divisor = max(context.expectedCohort, 1)
        let mean = sum.map { Float($0 / divisor) }
        if let rule = dp.adaptive, let count, let countNoise = dp.countNoise {
            var clipping = try? AdaptiveClipping(
                initialClipNorm: clipNorm, targetQuantile: rule.targetQuantile, learningRate: rule.learningRate,
                bitNoise: countNoise)
            clipping?.update(noisyCountUnderClip: count, expectedCohort: divisor)
            if let next = clipping?.clipNorm, next.isFinite, next > 0 { clipNorm = next }
            record.nextClipNorm = clipNorm
            actions.append(
                .log(
                    "round \(context.round): \(Self.format(count)) of an expected \(Self.format(divisor)) sites within the "
                        + "clip (noisy); next clip norm \(Self.format(clipNorm))"))
        }
        context.privacyRecord = record
        context.trainLoss = nil
        aggregate(context, .mean(mean), now: now, into: &actions)
    }

    private static func addCentralNoise<G: RandomNumberGenerator>(
        to sum: inout [Double], count: inout Double?, deviation: Double, countNoise: Double?, _ generator: inout G
    ) {
        GaussianNoise.add(to: &sum, standardDeviation: deviation, using: &generator)
        if let value = count, let countNoise {
            count = value + countNoise * GaussianNoise.standardNormal(using: &generator)
        }
    }

    /// The central noise of a simulated round: reproducible from the experiment's seed, and
    /// not derived from the round's public seed (which the results publish).
    static func noiseSeed(plan: FederationPlan, round: Int, attempt: Int) -> UInt64 {
        var mixer = SplitMix64Mixer(plan.seed ^ 0x6470_6E6F_6973_6531)
        mixer.mix(UInt64(round))
        mixer.mix(UInt64(attempt))
        return mixer.value
    }

    static func format(_ value: Double) -> String {
        value.formatted(.number.precision(.significantDigits(4)))
    }
}

/// Folds words into one with SplitMix64's finaliser.
struct SplitMix64Mixer {
    private(set) var value: UInt64

    init(_ seed: UInt64) { value = seed }

    mutating func mix(_ word: UInt64) {
        var z = value &+ word &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        value = z ^ (z >> 31)
    }
}
