import Foundation

/// Adaptive clipping (Andrew et al. 2021, "Differentially Private Learning with Adaptive
/// Clipping"): the clip norm C follows the `targetQuantile` of the sites' update norms.
///
/// Each site reports one bit, b = 1 when its update's norm was within C; the coordinator only
/// learns the noisy count of those bits (inside the secure sum in distributed DP), so the bit
/// spends privacy too. Its noise `bitNoise` is in count units. The update is geometric,
/// C ← C·exp(−η(b̄ − γ)): when more than a γ fraction of sites fit under C, C shrinks, otherwise
/// it grows, and a step never changes C by more than a factor e^η.
public struct AdaptiveClipping: Sendable, Hashable, Codable {
    public var clipNorm: Double
    /// γ in (0, 1): the fraction of sites whose update should fit within the clip norm.
    public let targetQuantile: Double
    /// η_C > 0: the geometric step.
    public let learningRate: Double
    /// σ_b ≥ 0: the standard deviation of the noise on the count of sites within the norm.
    public let bitNoise: Double

    public init(
        initialClipNorm: Double, targetQuantile: Double, learningRate: Double, bitNoise: Double
    ) throws(PrivacyError) {
        guard initialClipNorm.isFinite, initialClipNorm > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Adaptive clipping: the initial clip norm must be positive and finite, got \(initialClipNorm)."
            )
        }
        guard targetQuantile > 0, targetQuantile < 1 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Adaptive clipping: target_quantile must be strictly between 0 and 1, got \(targetQuantile).")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Adaptive clipping: learning_rate must be positive and finite, got \(learningRate).")
        }
        guard bitNoise.isFinite, bitNoise >= 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "Adaptive clipping: the count's noise must be non-negative and finite, got \(bitNoise).")
        }
        clipNorm = initialClipNorm
        self.targetQuantile = targetQuantile
        self.learningRate = learningRate
        self.bitNoise = bitNoise
    }

    /// Andrew et al.: the multiplier left for the update when the count takes part of the budget.
    /// The round's Gaussian mechanism, the update with z_Δ and the count with σ_b (both over
    /// sensitivity 1 of their own), composes like one Gaussian with z^−2 = z_Δ^−2 + (2σ_b)^−2, so
    /// z_Δ = (z^−2 − (2σ_b)^−2)^−1/2; it needs 2σ_b > z, else the count alone spends the budget.
    public static func updateNoiseMultiplier(total z: Double, bitNoise: Double) throws(PrivacyError) -> Double {
        guard z.isFinite, z > 0 else {
            throw PrivacyError(
                code: .invalidParameter, message: "The noise multiplier must be positive and finite, got \(z).")
        }
        guard bitNoise.isFinite, 2 * bitNoise > z else {
            throw PrivacyError(
                code: .invalidParameter,
                message:
                    "Adaptive clipping needs the count's noise σ_b above half the noise multiplier (2σ_b > z): "
                    + "got σ_b = \(bitNoise), z = \(z). Raise the count's noise or lower the multiplier.")
        }
        return 1 / (1 / (z * z) - 1 / (4 * bitNoise * bitNoise)).squareRoot()
    }

    private enum CodingKeys: String, CodingKey {
        case clipNorm, targetQuantile, learningRate, bitNoise
    }

    /// Decodes through the validating initialiser: parameters read from a file or the wire get the
    /// same checks as those built in code.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let clipNorm = try container.decode(Double.self, forKey: .clipNorm)
        let targetQuantile = try container.decode(Double.self, forKey: .targetQuantile)
        let learningRate = try container.decode(Double.self, forKey: .learningRate)
        let bitNoise = try container.decode(Double.self, forKey: .bitNoise)
        do {
            try self.init(
                initialClipNorm: clipNorm, targetQuantile: targetQuantile, learningRate: learningRate,
                bitNoise: bitNoise)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// b̄ = clamp(noisyCountUnderClip / expectedCohort, 0, 1); clipNorm ← clipNorm · exp(−η (b̄ − γ)).
    /// A non-finite count or a non-positive expected cohort leaves the norm unchanged.
    public mutating func update(noisyCountUnderClip: Double, expectedCohort: Double) {
        guard noisyCountUnderClip.isFinite, expectedCohort.isFinite, expectedCohort > 0 else { return }
        let fraction = min(max(noisyCountUnderClip / expectedCohort, 0), 1)
        clipNorm *= exp(-learningRate * (fraction - targetQuantile))
    }
}
