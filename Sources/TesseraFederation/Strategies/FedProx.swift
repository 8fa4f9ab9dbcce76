/// FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks").
///
/// FedProx changes the *participants*' objective, not the server: each participant minimises
/// `F_k(w) + (μ/2) ‖w − w_global‖²`, whose proximal term keeps local models from drifting far
/// from the global one on heterogeneous data. The local trainer adds the term's gradient
/// `μ (w − w_global)` with ``proximalGradient(gradients:parameters:global:mu:)`` after each
/// backward pass. The server step is FedAvg's.
///
/// `μ` has no universal default: Li et al. tuned it per dataset from {0.001, 0.01, 0.1, 1}
/// (best: 1 on the synthetic data, MNIST and FEMNIST; 0.001 on Shakespeare; 0.01 on Sent140).
/// ``defaultMu`` is 0.01, the middle of that grid; experiment files should set it. With
/// `μ = 0` FedProx is FedAvg.
///
/// Needs only the weighted mean, so it runs under secure aggregation.
public struct FedProx: RoundCountingStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0
    public static let defaultMu = 0.01

    public let serverLearningRate: Double
    /// The proximal coefficient the participants use (sent to them with each training task).
    public let mu: Double
    public internal(set) var rounds = 0

    public var name: String { "fedprox" }
    public var requiresIndividualUpdates: Bool { false }

    public init(
        mu: Double = FedProx.defaultMu, serverLearningRate: Double = FedProx.defaultServerLearningRate
    ) throws(AggregationError) {
        try Aggregation.require(mu.isFinite && mu >= 0, "fedprox: μ must be finite and non-negative, got \(mu).")
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "fedprox")
        self.mu = mu
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let mean = try meanUpdate(of: aggregate, global: global)
        let next = try Aggregation.serverStep(global: global, direction: mean, learningRate: serverLearningRate)
        rounds += 1
        return next
    }

    // MARK: - The participant's side

    /// Adds the gradient of the proximal term, `μ (w − w_global)`, to `gradients` in place.
    ///
    /// Call it after each backward pass and before the optimiser step, with the current local
    /// parameters and the global model the round started from. It allocates nothing.
    public static func proximalGradient(
        gradients: inout [Float], parameters: [Float], global: [Float], mu: Float
    ) throws(AggregationError) {
        guard gradients.count == parameters.count, parameters.count == global.count else {
            throw AggregationError(
                .mismatchedLengths,
                "Proximal term: \(gradients.count) gradients, \(parameters.count) parameters and \(global.count) global "
                    + "parameters; all three must have the model's length.")
        }
        gradients.withUnsafeMutableBufferPointer { g in
            parameters.withUnsafeBufferPointer { w in
                global.withUnsafeBufferPointer { w0 in
                    proximalGradient(gradients: g, parameters: w, global: w0, mu: mu)
                }
            }
        }
    }

    /// The allocation-free kernel of ``proximalGradient(gradients:parameters:global:mu:)-(inout [Float],_,_,_)``
    /// for trainers that already hold buffer pointers. The three buffers must have equal length.
    public static func proximalGradient(
        gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>,
        global: UnsafeBufferPointer<Float>, mu: Float
    ) {
        precondition(
            gradients.count == parameters.count && parameters.count == global.count, "Proximal term: length mismatch")
        guard mu != 0 else { return }
        for j in 0..<gradients.count {
            gradients[j] += mu * (parameters[j] - global[j])
        }
    }

    /// The proximal term's value `(μ/2) ‖w − w_global‖²`, to report the local objective.
    public static func proximalTerm(parameters: [Float], global: [Float], mu: Float) throws(AggregationError) -> Float {
        guard parameters.count == global.count else {
            throw AggregationError(
                .mismatchedLengths,
                "Proximal term: \(parameters.count) parameters but \(global.count) global parameters.")
        }
        var sum = 0.0
        for j in parameters.indices {
            let d = Double(parameters[j]) - Double(global[j])
            sum += d * d
        }
        return Float(Double(mu) / 2 * sum)
    }
}
