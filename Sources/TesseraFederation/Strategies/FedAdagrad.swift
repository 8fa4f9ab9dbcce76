/// FedAdagrad (Reddi et al. 2021, Algorithm 2 with Adagrad's second moment): `v` accumulates
/// every squared update, so the per-coordinate step only shrinks over the rounds.
///
///     v_t = v_{t−1} + Δ_t²
///
/// Defaults and why:
/// - `β1 = 0`: Adagrad proper has no momentum, and the paper's reference runs used Keras'
///   Adagrad (no momentum, initial accumulator 0) on the server. Set `beta1` to add momentum,
///   which Algorithm 2 allows.
/// - `τ = 10⁻³`: the recommended default adaptivity of the paper's code.
/// - `η = 10⁻¹`: the middle of the best server learning rates the paper found for FedAdagrad,
///   an order of magnitude above FedAdam's because `v` grows without decay.
///
/// `β2` is not used. Needs only the weighted mean, so it runs under secure aggregation.
public struct FedAdagrad: FederatedStrategy, Hashable {
    public static let defaultServerLearningRate = 1e-1
    public static let defaultBeta1 = 0.0
    public static let defaultTau = 1e-3

    private var optimizer: AdaptiveServerOptimizer

    public var name: String { "fedadagrad" }
    public var requiresIndividualUpdates: Bool { false }
    public var hyperparameters: AdaptiveHyperparameters { optimizer.hyperparameters }
    /// `m` and `v`, `nil` before the first round.
    public var moments: AdaptiveMoments? { optimizer.moments }

    public init(
        serverLearningRate: Double = FedAdagrad.defaultServerLearningRate, beta1: Double = FedAdagrad.defaultBeta1,
        tau: Double = FedAdagrad.defaultTau
    ) throws(AggregationError) {
        optimizer = try AdaptiveServerOptimizer(
            name: "fedadagrad", rule: .adagrad,
            hyperparameters: AdaptiveHyperparameters(learningRate: serverLearningRate, beta1: beta1, beta2: 0, tau: tau)
        )
    }

    /// Adagrad's second-moment update for one coordinate: `v + Δ²`.
    public static func secondMoment(previous v: Double, squaredUpdate d2: Double) -> Double {
        v + d2
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
