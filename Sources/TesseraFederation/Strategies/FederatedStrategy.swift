/// One participant's contribution to a plaintext round: its model delta
/// `Δ_k = w_local − w_global` and the number of training samples `n_k` behind it.
public struct ClientUpdate: Sendable, Hashable {
    /// `w_local − w_global`, flattened in the model's parameter order.
    public var delta: [Float]
    /// Training samples the participant used (`n_k`); the weight of its delta in a weighted mean.
    public var sampleCount: Int
    /// Who sent it, for error messages (a site name or a participant id).
    public var participant: String?

    public init(delta: [Float], sampleCount: Int, participant: String? = nil) {
        self.delta = delta
        self.sampleCount = sampleCount
        self.participant = participant
    }
}

/// What the coordinator hands to a strategy at the end of a round.
///
/// Under secure aggregation the coordinator never sees an individual update: it decodes only
/// the sample-weighted mean `Σ n_k Δ_k / Σ n_k` from the masked sum. In a plaintext round (a
/// simulation without secure aggregation, or a trusted deployment) it has every update.
public enum RoundAggregate: Sendable, Hashable {
    /// Secure path: the sample-weighted mean update, already decoded.
    case mean([Float])
    /// Plaintext path: every surviving participant's update.
    case individual([ClientUpdate])

    /// The number of coordinates, or `nil` when there is nothing to aggregate.
    var dimension: Int? {
        switch self {
        case .mean(let vector): vector.isEmpty ? nil : vector.count
        case .individual(let updates): updates.first.map(\.delta.count)
        }
    }
}

/// A server-side federated optimisation algorithm: it turns a round's updates into the next
/// global model.
///
/// A strategy *orchestrates*: it checks its inputs, calls the pure aggregation maths in
/// ``Aggregation`` and applies its server optimiser. It keeps optimiser state between rounds
/// (momentum, second moments), which is why ``step(global:aggregate:)`` is `mutating`; the
/// coordinator owns one strategy value per experiment and persists ``state`` with each model
/// version so that a restarted coordinator continues with the same moments.
///
/// `step` is atomic: when it throws, the strategy's state is unchanged, so a failed round can
/// be retried or skipped without corrupting the optimiser.
public protocol FederatedStrategy: Sendable {
    /// The name used in experiment files (`fedavg`, `fedadam`, `krum`, …).
    var name: String { get }

    /// `true` for robust rules (median, trimmed mean, Krum) that need each participant's update.
    /// Such a strategy cannot run under secure aggregation, where the coordinator only learns
    /// the sum; the experiment configuration refuses the combination up front.
    var requiresIndividualUpdates: Bool { get }

    /// Applies one round: returns the new global model from the current one and the round's
    /// aggregate. Throws ``AggregationError`` for empty or inconsistent inputs, non-finite
    /// values, or an aggregate of the wrong kind (``AggregationError/Code-swift.struct/individualUpdatesRequired``).
    mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float]

    /// The optimiser state to persist with a model version.
    var state: StrategyState { get }

    /// Restores state saved from a strategy of the same name and model size.
    mutating func restore(_ state: StrategyState) throws(AggregationError)
}

/// Server optimiser state in a form the coordinator can store next to a model version.
public struct StrategyState: Codable, Sendable, Hashable {
    /// The strategy that wrote it; restoring into another strategy is refused.
    public var strategy: String
    /// Rounds applied so far.
    public var rounds: Int
    /// Named per-coordinate buffers (`momentum`, `first_moment`, `second_moment`); empty for
    /// stateless strategies and before the first round.
    public var vectors: [String: [Float]]

    public init(strategy: String, rounds: Int = 0, vectors: [String: [Float]] = [:]) {
        self.strategy = strategy
        self.rounds = rounds
        self.vectors = vectors
    }
}

/// A strategy whose only state is its round count (FedAvg, FedProx and the robust rules): its
/// ``FederatedStrategy/state`` and ``FederatedStrategy/restore(_:)`` are defined once, here.
protocol RoundCountingStrategy: FederatedStrategy {
    var rounds: Int { get set }
}

extension RoundCountingStrategy {
    public var state: StrategyState { StrategyState(strategy: name, rounds: rounds) }

    public mutating func restore(_ state: StrategyState) throws(AggregationError) {
        try checkOwnership(of: state)
        rounds = state.rounds
    }
}

extension FederatedStrategy {
    /// Checks that `state` was written by this strategy, for ``restore(_:)``.
    func checkOwnership(of state: StrategyState) throws(AggregationError) {
        guard state.strategy == name else {
            throw AggregationError(
                .invalidState, "Saved optimiser state belongs to strategy \"\(state.strategy)\", not \"\(name)\".")
        }
        guard state.rounds >= 0 else {
            throw AggregationError(.invalidState, "Saved optimiser state has a negative round count (\(state.rounds)).")
        }
    }

    /// The sample-weighted mean update of a round, whichever path it came by: the decoded mean
    /// on the secure path, ``Aggregation/weightedMean(_:)`` on the plaintext path.
    func meanUpdate(of aggregate: RoundAggregate, global: [Float]) throws(AggregationError) -> [Float] {
        let mean: [Float]
        switch aggregate {
        case .mean(let vector):
            try Aggregation.checkFinite(vector, what: "The aggregated mean update")
            mean = vector
        case .individual(let updates):
            mean = try Aggregation.weightedMean(updates)
        }
        try Aggregation.checkSameLength(global: global, update: mean)
        return mean
    }

    /// The individual updates of a plaintext round, or a clear refusal on the secure path.
    func individualUpdates(of aggregate: RoundAggregate, global: [Float]) throws(AggregationError) -> [[Float]] {
        switch aggregate {
        case .mean:
            throw AggregationError(
                .individualUpdatesRequired,
                "Strategy \"\(name)\" needs every participant's update, but the round was securely aggregated: the "
                    + "coordinator only learns the weighted mean, so it cannot take a median or score updates against "
                    + "each other. Use fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad with secure aggregation."
            )
        case .individual(let updates):
            let vectors = updates.map(\.delta)
            try Aggregation.checkVectors(vectors, labels: updates.map(\.participant))
            if let first = vectors.first { try Aggregation.checkSameLength(global: global, update: first) }
            return vectors
        }
    }
}
