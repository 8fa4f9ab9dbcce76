/// FedAvg with server momentum (Hsu, Qi and Brown 2019, "Measuring the Effects of
/// Non-Identical Data Distribution for Federated Visual Classification").
///
/// With `Δ_t` the sample-weighted mean update of round `t`:
///
///     m_t     = β m_{t−1} + Δ_t          (m_{−1} = 0)
///     x_{t+1} = x_t + η_s m_t
///
/// Momentum smooths the round-to-round zig-zag that non-IID cohorts cause. The effective step
/// is about `η_s / (1 − β)`, so raising β usually calls for lowering `η_s`.
///
/// Defaults: `β = 0.9` and `η_s = 1`, the values of the FedAvgM baseline in Reddi et al. 2021
/// (server SGD momentum 0.9; a server learning rate of 10^0 was the best tuned value on most of
/// their tasks, see google-research/federated `optimization/docs/hyperparameters.md`).
///
/// Needs only the weighted mean, so it runs under secure aggregation.
public struct FedAvgM: FederatedStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0
    public static let defaultMomentum = 0.9

    public let serverLearningRate: Double
    /// `β ∈ [0, 1)`.
    public let momentum: Double
    /// The momentum buffer `m`, `nil` before the first round.
    public private(set) var velocity: [Float]?
    public private(set) var rounds = 0

    public var name: String { "fedavgm" }
    public var requiresIndividualUpdates: Bool { false }

    public init(
        serverLearningRate: Double = FedAvgM.defaultServerLearningRate, momentum: Double = FedAvgM.defaultMomentum
    ) throws(AggregationError) {
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "fedavgm")
        try Aggregation.require(
            momentum >= 0 && momentum < 1, "fedavgm: the momentum must lie in [0, 1), got \(momentum).")
        self.serverLearningRate = serverLearningRate
        self.momentum = momentum
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let mean = try meanUpdate(of: aggregate, global: global)
        let (next, newVelocity) = try Aggregation.momentumStep(
            global: global, update: mean, velocity: velocity, momentum: momentum, learningRate: serverLearningRate)
        velocity = newVelocity
        rounds += 1
        return next
    }

    public var state: StrategyState {
        StrategyState(strategy: name, rounds: rounds, vectors: velocity.map { ["momentum": $0] } ?? [:])
    }

    public mutating func restore(_ state: StrategyState) throws(AggregationError) {
        try checkOwnership(of: state)
        velocity = state.vectors["momentum"]
        rounds = state.rounds
    }
}

extension Aggregation {
    /// One heavy-ball server step: `m' = β m + Δ`, `x' = x + η m'` (with `m = 0` when `velocity`
    /// is `nil`). Returns the new model and the new momentum buffer.
    public static func momentumStep(
        global: [Float], update: [Float], velocity: [Float]?, momentum: Double, learningRate: Double
    ) throws(AggregationError) -> (global: [Float], velocity: [Float]) {
        try checkSameLength(global: global, update: update)
        if let velocity, velocity.count != update.count {
            throw AggregationError(
                .invalidState,
                "The momentum buffer has \(velocity.count) coordinates but the model has \(update.count).")
        }
        var newVelocity = update
        var next = global
        for j in update.indices {
            let m = momentum * Double(velocity?[j] ?? 0) + Double(update[j])
            newVelocity[j] = Float(m)
            next[j] = Float(Double(global[j]) + learningRate * m)
        }
        return (next, newVelocity)
    }
}
