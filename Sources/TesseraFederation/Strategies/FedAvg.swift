/// Federated Averaging (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks
/// from Decentralized Data"), with a server learning rate.
///
/// The new model is `x + η_s · Σ n_k Δ_k / Σ n_k`. With the default `η_s = 1` this is exactly
/// the sample-weighted average of the participants' local models, the original algorithm.
/// Reddi et al. 2021 write it as server SGD on the "pseudo-gradient" `−Δ` and found `η_s = 1`
/// best or near-best for FedAvg on every task they tuned, which is why it is the default.
///
/// FedAvg needs only the weighted mean, so it runs under secure aggregation.
public struct FedAvg: RoundCountingStrategy, Hashable {
    /// The default server learning rate: 1, plain averaging of the local models.
    public static let defaultServerLearningRate = 1.0

    /// `η_s`, which scales the averaged update.
    public let serverLearningRate: Double
    public internal(set) var rounds = 0

    public var name: String { "fedavg" }
    public var requiresIndividualUpdates: Bool { false }

    /// - Throws: ``AggregationError/Code-swift.struct/invalidParameter`` unless `serverLearningRate` is positive and finite.
    public init(serverLearningRate: Double = FedAvg.defaultServerLearningRate) throws(AggregationError) {
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "fedavg")
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let mean = try meanUpdate(of: aggregate, global: global)
        let next = try Aggregation.serverStep(global: global, direction: mean, learningRate: serverLearningRate)
        rounds += 1
        return next
    }
}

extension Aggregation {
    /// Throws ``AggregationError/Code-swift.struct/invalidParameter`` with `message` unless `condition` holds.
    static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(AggregationError) {
        guard condition else { throw AggregationError(.invalidParameter, message()) }
    }

    /// The check every strategy applies to its server learning rate `η_s`: positive and finite.
    static func requireServerLearningRate(_ rate: Double, strategy: String) throws(AggregationError) {
        try require(
            rate.isFinite && rate > 0, "\(strategy): the server learning rate must be positive and finite, got \(rate)."
        )
    }
}
