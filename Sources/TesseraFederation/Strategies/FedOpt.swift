/// The shared part of the adaptive server optimisers of Reddi et al. 2021, "Adaptive Federated
/// Optimization" (ICLR 2021), Algorithm 2: ``FedAdagrad``, ``FedAdam`` and ``FedYogi``.
///
/// With `Δ_t` the sample-weighted mean update of round `t` (which secure aggregation provides):
///
///     m_t     = β1 m_{t−1} + (1 − β1) Δ_t
///     v_t     = rule(v_{t−1}, Δ_t²)                  (Adagrad, Adam or Yogi; element-wise)
///     x_{t+1} = x_t + η m_t / (√v_t + τ)
///
/// with `m_{−1} = 0` and `v_{−1} = τ²`, the smallest start the paper's analysis allows
/// (`v_{−1} ≥ τ²`). There is no bias correction: Algorithm 2 has none, and `τ` already bounds
/// the first steps (`|m_0 / (√v_0 + τ)| < 1`).
///
/// `τ` ("adaptivity") plays the role of Adam's ε but is much larger: it caps the per-coordinate
/// step at `η / τ` times the momentum and makes the method more or less adaptive.
public struct AdaptiveHyperparameters: Sendable, Hashable, Codable {
    /// Server learning rate `η`.
    public var learningRate: Double
    /// First-moment decay `β1 ∈ [0, 1)`.
    public var beta1: Double
    /// Second-moment decay `β2 ∈ [0, 1)` (not used by Adagrad).
    public var beta2: Double
    /// Adaptivity `τ > 0`.
    public var tau: Double

    public init(learningRate: Double, beta1: Double, beta2: Double, tau: Double) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
    }

    func validate(strategy: String) throws(AggregationError) {
        try Aggregation.requireServerLearningRate(learningRate, strategy: strategy)
        try Aggregation.require(beta1 >= 0 && beta1 < 1, "\(strategy): β1 must lie in [0, 1), got \(beta1).")
        try Aggregation.require(beta2 >= 0 && beta2 < 1, "\(strategy): β2 must lie in [0, 1), got \(beta2).")
        try Aggregation.require(tau.isFinite && tau > 0, "\(strategy): τ must be positive and finite, got \(tau).")
    }
}

/// The two per-coordinate buffers of an adaptive server optimiser.
public struct AdaptiveMoments: Sendable, Hashable, Codable {
    /// `m`, the momentum of the updates.
    public var first: [Float]
    /// `v`, the second-moment estimate.
    public var second: [Float]

    public init(first: [Float], second: [Float]) {
        self.first = first
        self.second = second
    }

    /// `m_{−1} = 0`, `v_{−1} = τ²`.
    public static func initial(count: Int, tau: Double) -> AdaptiveMoments {
        AdaptiveMoments(
            first: [Float](repeating: 0, count: count), second: [Float](repeating: Float(tau * tau), count: count))
    }
}

extension Aggregation {
    /// The second-moment rules of Algorithm 2, one per optimiser (each defined in its own file).
    public enum SecondMomentRule: String, Sendable, Hashable, CaseIterable {
        case adagrad, adam, yogi

        /// `v_t` from `v_{t−1}` and `Δ_t²` for one coordinate.
        public func next(previous v: Double, squaredUpdate d2: Double, beta2: Double) -> Double {
            switch self {
            case .adagrad: FedAdagrad.secondMoment(previous: v, squaredUpdate: d2)
            case .adam: FedAdam.secondMoment(previous: v, squaredUpdate: d2, beta2: beta2)
            case .yogi: FedYogi.secondMoment(previous: v, squaredUpdate: d2, beta2: beta2)
            }
        }
    }

    /// One step of Algorithm 2: returns `x_{t+1}` and the new moments from `x_t`, the mean update
    /// `Δ_t` and the previous moments (`nil` before the first round: `m = 0`, `v = τ²`).
    public static func adaptiveStep(
        global: [Float], update: [Float], moments: AdaptiveMoments?, rule: SecondMomentRule,
        hyperparameters h: AdaptiveHyperparameters
    ) throws(AggregationError) -> (global: [Float], moments: AdaptiveMoments) {
        try checkSameLength(global: global, update: update)
        try checkFinite(update, what: "The mean update")
        let previous = moments ?? .initial(count: update.count, tau: h.tau)
        guard previous.first.count == update.count, previous.second.count == update.count else {
            throw AggregationError(
                .invalidState,
                "The optimiser moments have \(previous.first.count) and \(previous.second.count) coordinates but the "
                    + "model has \(update.count).")
        }
        var next = global
        var result = previous
        for j in update.indices {
            let d = Double(update[j])
            let m = h.beta1 * Double(previous.first[j]) + (1 - h.beta1) * d
            let v = rule.next(previous: Double(previous.second[j]), squaredUpdate: d * d, beta2: h.beta2)
            result.first[j] = Float(m)
            result.second[j] = Float(v)
            next[j] = Float(Double(global[j]) + h.learningRate * m / (v.squareRoot() + h.tau))
        }
        return (next, result)
    }
}

/// The state and orchestration shared by the three adaptive strategies.
struct AdaptiveServerOptimizer: Sendable, Hashable {
    let name: String
    let rule: Aggregation.SecondMomentRule
    let hyperparameters: AdaptiveHyperparameters
    private(set) var moments: AdaptiveMoments?
    private(set) var rounds = 0

    init(
        name: String, rule: Aggregation.SecondMomentRule, hyperparameters: AdaptiveHyperparameters
    ) throws(AggregationError) {
        try hyperparameters.validate(strategy: name)
        self.name = name
        self.rule = rule
        self.hyperparameters = hyperparameters
    }

    mutating func step(global: [Float], mean: [Float]) throws(AggregationError) -> [Float] {
        let (next, newMoments) = try Aggregation.adaptiveStep(
            global: global, update: mean, moments: moments, rule: rule, hyperparameters: hyperparameters)
        moments = newMoments
        rounds += 1
        return next
    }

    var state: StrategyState {
        var vectors: [String: [Float]] = [:]
        if let moments {
            vectors["first_moment"] = moments.first
            vectors["second_moment"] = moments.second
        }
        return StrategyState(strategy: name, rounds: rounds, vectors: vectors)
    }

    mutating func restore(_ state: StrategyState) throws(AggregationError) {
        switch (state.vectors["first_moment"], state.vectors["second_moment"]) {
        case (let m?, let v?):
            guard m.count == v.count else {
                throw AggregationError(
                    .invalidState, "Saved \(name) moments have different lengths (\(m.count) and \(v.count)).")
            }
            moments = AdaptiveMoments(first: m, second: v)
        case (nil, nil):
            moments = nil
        default:
            throw AggregationError(.invalidState, "Saved \(name) state has only one of its two moment vectors.")
        }
        rounds = state.rounds
    }
}
