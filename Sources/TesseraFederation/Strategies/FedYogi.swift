/// FedYogi (Reddi et al. 2021, Algorithm 2 with Yogi's second moment, after Zaheer et al.
/// 2018): like ``FedAdam`` but `v` moves additively, so one large update cannot inflate it and
/// shrink every later step, which made FedYogi the most consistently good optimiser in the
/// paper's experiments.
///
///     v_t = v_{t−1} − (1 − β2) Δ_t² · sign(v_{t−1} − Δ_t²)
///
/// (`sign(0) = 0`). `v` stays positive: it starts at `τ² > 0`, and when it shrinks it moves by
/// at most `(1 − β2) v_{t−1}`.
///
/// Defaults, with the same sources as ``FedAdam``: `β1 = 0.9`, `β2 = 0.99`, `τ = 10⁻³`, and
/// `η = 10⁻²` (the middle of the paper's best server learning rates for FedYogi, and Flower's
/// default).
///
/// Needs only the weighted mean, so it runs under secure aggregation.
public struct FedYogi: FederatedStrategy, Hashable {
    public static let defaultServerLearningRate = 1e-2
    public static let defaultBeta1 = 0.9
    public static let defaultBeta2 = 0.99
    public static let defaultTau = 1e-3

    private var optimizer: AdaptiveServerOptimizer

    public var name: String { "fedyogi" }
    public var requiresIndividualUpdates: Bool { false }
    public var hyperparameters: AdaptiveHyperparameters { optimizer.hyperparameters }
    /// `m` and `v`, `nil` before the first round.
    public var moments: AdaptiveMoments? { optimizer.moments }

    public init(
        serverLearningRate: Double = FedYogi.defaultServerLearningRate, beta1: Double = FedYogi.defaultBeta1,
        beta2: Double = FedYogi.defaultBeta2, tau: Double = FedYogi.defaultTau
    ) throws(AggregationError) {
        optimizer = try AdaptiveServerOptimizer(
            name: "fedyogi", rule: .yogi,
            hyperparameters: AdaptiveHyperparameters(
                learningRate: serverLearningRate, beta1: beta1, beta2: beta2, tau: tau))
    }

    /// Yogi's second-moment update for one coordinate: `v − (1 − β2) Δ² sign(v − Δ²)`.
    public static func secondMoment(previous v: Double, squaredUpdate d2: Double, beta2: Double) -> Double {
        let difference = v - d2
        let sign: Double = difference > 0 ? 1 : (difference < 0 ? -1 : 0)
        return v - (1 - beta2) * d2 * sign
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let mean = try meanUpdate(of: aggregate, global: global)
        return try optimizer.step(global: global, mean: mean)
    }

    public var state: StrategyState { optimizer.state }

    public mutating func restore(_ state: StrategyState) throws(AggregationError) {
        try checkOwnership(of: state)
        try optimizer.restore(state)
    }
}
