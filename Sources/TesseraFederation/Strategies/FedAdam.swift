/// FedAdam (Reddi et al. 2021, Algorithm 2 with Adam's second moment): the server treats the
/// mean update as a pseudo-gradient and takes an Adam-like step on it (see
/// ``AdaptiveHyperparameters`` for the shared update).
///
///     v_t = β2 v_{t−1} + (1 − β2) Δ_t²
///
/// Defaults and why:
/// - `β1 = 0.9`, `β2 = 0.99`: the values the paper fixes for FedAdam and FedYogi in all its
///   experiments (and Flower's defaults).
/// - `τ = 10⁻³`: the default adaptivity recommended by the paper's code
///   (google-research/federated, `optimization/docs/hyperparameters.md`).
/// - `η = 10⁻²`: the middle of the best server learning rates the paper found for FedAdam;
///   tune it per task, with the client learning rate.
///
/// Needs only the weighted mean, so it runs under secure aggregation.
public struct FedAdam: FederatedStrategy, Hashable {
    public static let defaultServerLearningRate = 1e-2
    public static let defaultBeta1 = 0.9
    public static let defaultBeta2 = 0.99
    public static let defaultTau = 1e-3

    private var optimizer: AdaptiveServerOptimizer

    public var name: String { "fedadam" }
    public var requiresIndividualUpdates: Bool { false }
    public var hyperparameters: AdaptiveHyperparameters { optimizer.hyperparameters }
    /// `m` and `v`, `nil` before the first round.
    public var moments: AdaptiveMoments? { optimizer.moments }

    public init(
        serverLearningRate: Double = FedAdam.defaultServerLearningRate, beta1: Double = FedAdam.defaultBeta1,
        beta2: Double = FedAdam.defaultBeta2, tau: Double = FedAdam.defaultTau
    ) throws(AggregationError) {
        optimizer = try AdaptiveServerOptimizer(
            name: "fedadam", rule: .adam,
            hyperparameters: AdaptiveHyperparameters(
                learningRate: serverLearningRate, beta1: beta1, beta2: beta2, tau: tau))
    }

    /// Adam's second-moment update for one coordinate: `β2 v + (1 − β2) Δ²`.
    public static func secondMoment(previous v: Double, squaredUpdate d2: Double, beta2: Double) -> Double {
        beta2 * v + (1 - beta2) * d2
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
