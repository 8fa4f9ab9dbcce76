import TesseraTensor

/// The client optimiser a training task asks for.
public enum LocalOptimizer: Sendable, Hashable, Codable {
    /// SGD with optional momentum, Nesterov momentum and L2 weight decay (PyTorch semantics).
    case sgd(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0)
    /// Adam with bias correction and optional L2 weight decay.
    case adam(
        learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
}

/// What a participant is asked to do with the global model in one round.
///
/// Client optimiser state is *not* carried between rounds: each round starts from the
/// global model with a fresh optimiser, which is what FedAvg and FedProx assume and what
/// keeps a participant stateless across reconnects.
public struct TrainingTask: Sendable, Hashable, Codable {
    /// Local passes over the participant's training data.
    public var epochs: Int
    /// Mini-batch size; a site with fewer samples trains on one smaller batch.
    public var batchSize: Int
    public var optimizer: LocalOptimizer
    /// FedProx's proximal coefficient μ: adds `μ(w − w_global)` to every gradient, which keeps
    /// heterogeneous sites from drifting far from the global model (Li et al. 2020). 0 = FedAvg.
    public var proximalMu: Float
    /// Clip each step's gradient to this global L2 norm (`nil`: no clipping).
    public var gradientClipNorm: Float?
    /// Seeds the batch order, so a participant's round is reproducible.
    public var seed: UInt64

    public init(
        epochs: Int = 1, batchSize: Int = 32, optimizer: LocalOptimizer = .sgd(learningRate: 0.01),
        proximalMu: Float = 0, gradientClipNorm: Float? = nil, seed: UInt64 = 0
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.proximalMu = proximalMu
        self.gradientClipNorm = gradientClipNorm
        self.seed = seed
    }
}

/// What local training produced: the model update and how it was obtained.
public struct TrainingOutcome: Sendable, Hashable {
    /// `Δ = w_local − w_global`, flat, in the model's parameter order.
    public var delta: [Float]
    /// Training samples seen per epoch: the weight of this update in FedAvg.
    public var sampleCount: Int
    /// Mean training loss over the last epoch's batches.
    public var loss: Double
    /// Training accuracy over the last epoch (classification only).
    public var accuracy: Double?
    /// Optimiser steps taken.
    public var steps: Int

    public init(delta: [Float], sampleCount: Int, loss: Double, accuracy: Double? = nil, steps: Int) {
        self.delta = delta
        self.sampleCount = sampleCount
        self.loss = loss
        self.accuracy = accuracy
        self.steps = steps
    }
}

/// Loss, accuracy and (for binary tasks) ROC AUC on held-out data.
public struct EvaluationMetrics: Sendable, Hashable, Codable {
    public var sampleCount: Int
    public var loss: Double
    public var accuracy: Double?
    public var auc: Double?

    public init(sampleCount: Int, loss: Double, accuracy: Double? = nil, auc: Double? = nil) {
        self.sampleCount = sampleCount
        self.loss = loss
        self.accuracy = accuracy
        self.auc = auc
    }

    /// Why these metrics cannot be what a site measured, or `nil` when they can: a loss that is
    /// not a finite non-negative number, an accuracy or AUC outside [0, 1], or no samples. The
    /// coordinator refuses such a result rather than let it into the published figures.
    public var implausibility: String? {
        guard sampleCount > 0 else { return "an evaluation over \(sampleCount) samples" }
        guard loss.isFinite, loss >= 0 else { return "a loss of \(loss)" }
        for (name, value) in [("accuracy", accuracy), ("AUC", auc)] {
            if let value, !(0...1).contains(value) { return "an \(name) of \(value), outside [0, 1]" }
        }
        return nil
    }

    /// Sample-weighted mean of several sites' metrics — what the coordinator reports for an
    /// evaluation round. AUC is averaged over the sites that report one (a pooled AUC would
    /// need every site's scores, which do not leave the sites). Weights are summed in Double
    /// and the total saturates, so no count a site reports can trap; callers cap the counts
    /// (the coordinator by the experiment's maximum weight) so that no site dominates.
    public static func weightedMean(_ parts: [EvaluationMetrics]) -> EvaluationMetrics? {
        let parts = parts.filter { $0.implausibility == nil }
        let total = parts.reduce(0.0) { $0 + Double($1.sampleCount) }
        guard total > 0 else { return nil }
        func mean(_ value: (EvaluationMetrics) -> Double?) -> Double? {
            let present = parts.compactMap { p in value(p).map { ($0, Double(p.sampleCount)) } }
            let weight = present.reduce(0.0) { $0 + $1.1 }
            guard weight > 0 else { return nil }
            return present.reduce(0.0) { $0 + $1.0 * $1.1 } / weight
        }
        return EvaluationMetrics(
            sampleCount: total < Double(Int.max) ? Int(total) : Int.max, loss: mean { $0.loss } ?? .nan,
            accuracy: mean { $0.accuracy }, auc: mean { $0.auc })
    }
}
