public import TesseraData
public import TesseraTensor

/// A failure of local training or evaluation, naming what did not fit.
public struct TrainingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Trains a participant's copy of the model on its local data.
///
/// The trainer owns one `Sequential` whose parameters it overwrites with the global model at
/// the start of every task; the model's activation buffers, the batch buffers and the
/// optimiser state are reused, so a round allocates almost nothing after the first.
public final class LocalTrainer {
    public let model: Sequential
    public let loss: Loss

    /// - Parameters:
    ///   - model: the architecture; its current parameters are irrelevant (each task loads
    ///     the global ones).
    ///   - loss: the training loss matching the model's output.
    public init(model: Sequential, loss: Loss) {
        self.model = model
        self.loss = loss
    }

    /// Trains from `global` on `dataset` and returns `Δ = w_local − w_global`.
    public func train(global: [Float], on dataset: Dataset, task: TrainingTask) throws -> TrainingOutcome {
        guard global.count == model.parameterCount else {
            throw TrainingError(
                "the global model has \(global.count) parameters but this participant's model needs \(model.parameterCount)"
            )
        }
        guard dataset.count > 0 else { throw TrainingError("the local training set is empty") }
        guard task.epochs >= 1, task.batchSize >= 1 else {
            throw TrainingError("epochs and batch size must be at least 1 (got \(task.epochs), \(task.batchSize))")
        }
        model.parameters = global
        var batches = try dataset.batches(
            size: task.batchSize, shuffleSeed: task.seed, sampleShape: model.inputShape)
        let outcome: (loss: Double, accuracy: Double?, steps: Int)
        switch task.optimizer {
        case .sgd(let lr, let momentum, let nesterov, let weightDecay):
            var optimizer = SGD(learningRate: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
            outcome = try run(&batches, epochs: task.epochs, optimizer: &optimizer, task: task, global: global)
        case .adam(let lr, let beta1, let beta2, let epsilon, let weightDecay):
            var optimizer = Adam(
                learningRate: lr, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
            outcome = try run(&batches, epochs: task.epochs, optimizer: &optimizer, task: task, global: global)
        }
        var delta = model.parameters
        for i in delta.indices { delta[i] -= global[i] }
        guard Aggregation.firstNonFiniteIndex(delta) == nil else {
            throw TrainingError(
                "local training diverged (non-finite parameters); lower the learning rate or clip gradients")
        }
        return TrainingOutcome(
            delta: delta, sampleCount: dataset.count, loss: outcome.loss, accuracy: outcome.accuracy,
            steps: outcome.steps)
    }

    private func run<O: Optimizer>(
        _ batches: inout BatchIterator, epochs: Int, optimizer: inout O, task: TrainingTask, global: [Float]
    ) throws -> (loss: Double, accuracy: Double?, steps: Int) {
        var steps = 0
        var lastLoss = 0.0
        var lastAccuracy: Double?
        let classification = loss == .softmaxCrossEntropy
        for _ in 0..<epochs {
            var lossSum = 0.0
            var seen = 0
            var correct = 0
            while batches.next() {
                let size = batches.labels.count
                let value = try model.computeGradients(input: batches.features, targets: batches.labels, loss: loss)
                if classification {
                    correct += countCorrect(batches.labels)
                }
                if task.proximalMu > 0 {
                    let parameters = model.parameters
                    try model.withGradients {
                        try FedProx.proximalGradient(
                            gradients: &$0, parameters: parameters, global: global, mu: task.proximalMu)
                    }
                }
                if let clip = task.gradientClipNorm { model.withGradients { clipByGlobalNorm(&$0, maxNorm: clip) } }
                model.applyGradients(&optimizer)
                lossSum += Double(value) * Double(size)
                seen += size
                steps += 1
            }
            lastLoss = lossSum / Double(max(1, seen))
            lastAccuracy = classification ? Double(correct) / Double(max(1, seen)) : nil
        }
        return (lastLoss, lastAccuracy, steps)
    }

    /// Correct predictions in the batch the model just ran forward on (its last output).
    private func countCorrect(_ labels: Tensor) -> Int {
        guard let output = model.lastOutput, output.rank == 2 else { return 0 }
        let predicted = output.argmax()
        var correct = 0
        for (p, y) in zip(predicted, labels.scalars) where Float(p) == y { correct += 1 }
        return correct
    }

    /// Evaluates `parameters` on `dataset` without changing anything but scratch buffers.
    public func evaluate(parameters: [Float], on dataset: Dataset, batchSize: Int = 256) throws -> EvaluationMetrics {
        guard parameters.count == model.parameterCount else {
            throw TrainingError(
                "the model to evaluate has \(parameters.count) parameters but this model needs \(model.parameterCount)")
        }
        model.parameters = parameters
        return try Evaluation.evaluate(model: model, loss: loss, on: dataset, batchSize: batchSize)
    }
}
