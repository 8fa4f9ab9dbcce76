public import TesseraData
public import TesseraTensor

/// Held-out evaluation of a model: mean loss, accuracy, and ROC AUC for binary tasks.
public enum Evaluation {
    /// Evaluates `model` (its current parameters, inference mode) on `dataset`.
    ///
    /// A task is binary when the model has one output (a logit, scored with `σ`) or two
    /// outputs under softmax (scored with the probability of class 1); AUC is reported for
    /// those only.
    public static func evaluate(
        model: Sequential, loss: Loss, on dataset: Dataset, batchSize: Int = 256
    ) throws
        -> EvaluationMetrics
    {
        guard dataset.count > 0 else { throw TrainingError("the evaluation set is empty") }
        let outputs = model.outputShape.reduce(1, *)
        let binary = outputs == 1 || (outputs == 2 && loss == .softmaxCrossEntropy)
        var lossSum = 0.0
        var correct = 0
        var scores: [Float] = []
        var positives: [Bool] = []
        if binary {
            scores.reserveCapacity(dataset.count)
            positives.reserveCapacity(dataset.count)
        }
        var batches = try dataset.batches(size: batchSize, sampleShape: model.inputShape)
        while batches.next() {
            let labels = batches.labels
            let output = try model.forward(batches.features, training: false)
            let n = labels.count
            lossSum += Double(try loss.value(output: output, targets: labels)) * Double(n)
            let logits = output.reshaped([n, outputs])
            if outputs == 1 {
                for i in 0..<n {
                    let z = logits.scalars[i]
                    if (z > 0 ? 1 : 0) == Int(labels.scalars[i]) { correct += 1 }
                    scores.append(z)
                    positives.append(labels.scalars[i] > 0.5)
                }
            } else {
                let predicted = logits.argmax()
                for i in 0..<n where Float(predicted[i]) == labels.scalars[i] { correct += 1 }
                if binary {
                    for i in 0..<n {
                        // log-odds of class 1 under softmax: monotone in its probability.
                        scores.append(logits.scalars[2 * i + 1] - logits.scalars[2 * i])
                        positives.append(labels.scalars[i] > 0.5)
                    }
                }
            }
        }
        let isRegression = loss == .meanSquaredError
        return EvaluationMetrics(
            sampleCount: dataset.count, loss: lossSum / Double(dataset.count),
            accuracy: isRegression ? nil : Double(correct) / Double(dataset.count),
            auc: binary && !isRegression ? rocAUC(scores: scores, positives: positives) : nil)
    }

    /// ROC AUC by the Mann–Whitney statistic: the probability that a random positive scores
    /// above a random negative, ties counting one half. `nil` when one class is absent.
    public static func rocAUC(scores: [Float], positives: [Bool]) -> Double? {
        precondition(scores.count == positives.count, "scores and labels differ in length")
        let positiveCount = positives.filter { $0 }.count
        let negativeCount = positives.count - positiveCount
        guard positiveCount > 0, negativeCount > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumPositive = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j where positives[order[k]] { rankSumPositive += averageRank }
            i = j + 1
        }
        let u = rankSumPositive - Double(positiveCount) * Double(positiveCount + 1) / 2
        return u / (Double(positiveCount) * Double(negativeCount))
    }
}
