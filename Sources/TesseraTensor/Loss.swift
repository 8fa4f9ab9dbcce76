import Foundation

/// A training loss: its mean value over a batch and its gradient with respect to the model
/// output.
///
/// Targets are a tensor for every loss so that datasets hand labels around uniformly:
/// - `softmaxCrossEntropy`: output `[N, C]` logits, targets `[N]` holding class indices as
///   floats (0, 1, …, C−1).
/// - `binaryCrossEntropyWithLogits`: output `[N, 1]` (or `[N]`) logits, targets of the same
///   count in {0, 1} (soft labels in [0, 1] also work).
/// - `meanSquaredError`: output and targets of the same count; the mean is over all elements.
public enum Loss: String, Sendable, Hashable, CaseIterable, Codable {
    case softmaxCrossEntropy = "softmax_cross_entropy"
    case binaryCrossEntropyWithLogits = "binary_cross_entropy_with_logits"
    case meanSquaredError = "mean_squared_error"

    /// The mean loss over the batch; writes ∂loss/∂output into `gradient` (resized and
    /// reused).
    public func evaluate(output: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
        switch self {
        case .softmaxCrossEntropy:
            return try Self.softmaxCrossEntropy(logits: output, labels: targets, gradient: &gradient)
        case .binaryCrossEntropyWithLogits:
            return try Self.binaryCrossEntropy(logits: output, targets: targets, gradient: &gradient)
        case .meanSquaredError:
            return try Self.meanSquaredError(output: output, targets: targets, gradient: &gradient)
        }
    }

    /// The mean loss over the batch without a gradient.
    public func value(output: Tensor, targets: Tensor) throws -> Float {
        var scratch = Tensor.zeros([0])
        return try evaluate(output: output, targets: targets, gradient: &scratch)
    }

    /// Fused softmax + cross-entropy. Subtracting the row maximum before `exp` keeps it finite
    /// for any logits; the gradient is the well-conditioned `(softmax − onehot) / N` rather
    /// than a chain through `log(softmax)`.
    static func softmaxCrossEntropy(logits: Tensor, labels: Tensor, gradient: inout Tensor) throws -> Float {
        guard logits.rank == 2 else {
            throw TensorError(
                .shapeMismatch, "softmax cross-entropy needs logits [batch, classes], got \(logits.shape)")
        }
        let batch = logits.shape[0]
        let classes = logits.shape[1]
        guard labels.count == batch else {
            throw TensorError(
                .shapeMismatch, "softmax cross-entropy got \(labels.count) labels for a batch of \(batch)")
        }
        gradient.resize(to: logits.shape)
        var total: Double = 0
        var badLabel: Float?
        logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { y in
                gradient.withUnsafeMutableBufferPointer { g in
                    let scale = 1 / Float(batch)
                    for r in 0..<batch {
                        let row = z.baseAddress! + r * classes
                        let grow = g.baseAddress! + r * classes
                        var maxLogit = row[0]
                        for c in 1..<classes { maxLogit = Swift.max(maxLogit, row[c]) }
                        var sum: Float = 0
                        for c in 0..<classes {
                            let e = Foundation.exp(row[c] - maxLogit)
                            grow[c] = e
                            sum += e
                        }
                        let label = y[r]
                        let index = Int(label)
                        guard label >= 0, Float(index) == label, index < classes else {
                            badLabel = label
                            return
                        }
                        total += Double(Foundation.log(sum) + maxLogit - row[index])
                        let inv = scale / sum
                        for c in 0..<classes { grow[c] *= inv }
                        grow[index] -= scale
                    }
                }
            }
        }
        if let badLabel {
            throw TensorError(.invalidArgument, "label \(badLabel) is not a class index in 0..<\(classes)")
        }
        return Float(total / Double(batch))
    }

    /// Binary cross-entropy on logits: `max(z, 0) − z·y + log(1 + e^−|z|)`, which never
    /// overflows; gradient `(σ(z) − y) / N`.
    static func binaryCrossEntropy(logits: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
        guard logits.count == targets.count, logits.count > 0 else {
            throw TensorError(
                .shapeMismatch, "binary cross-entropy got \(logits.count) logits and \(targets.count) targets")
        }
        let n = logits.count
        gradient.resize(to: logits.shape)
        var total: Double = 0
        logits.withUnsafeBufferPointer { z in
            targets.withUnsafeBufferPointer { y in
                gradient.withUnsafeMutableBufferPointer { g in
                    let scale = 1 / Float(n)
                    for i in 0..<n {
                        let x = z[i]
                        total += Double(Swift.max(x, 0) - x * y[i] + Foundation.log1p(Foundation.exp(-abs(x))))
                        g[i] = (stableSigmoid(x) - y[i]) * scale
                    }
                }
            }
        }
        return Float(total / Double(n))
    }

    /// Mean squared error over all elements; gradient `2(ŷ − y) / count`.
    static func meanSquaredError(output: Tensor, targets: Tensor, gradient: inout Tensor) throws -> Float {
        guard output.count == targets.count, output.count > 0 else {
            throw TensorError(
                .shapeMismatch, "mean squared error got \(output.count) outputs and \(targets.count) targets")
        }
        let n = output.count
        gradient.resize(to: output.shape)
        var total: Double = 0
        output.withUnsafeBufferPointer { o in
            targets.withUnsafeBufferPointer { y in
                gradient.withUnsafeMutableBufferPointer { g in
                    let scale = 2 / Float(n)
                    for i in 0..<n {
                        let d = o[i] - y[i]
                        total += Double(d * d)
                        g[i] = d * scale
                    }
                }
            }
        }
        return Float(total / Double(n))
    }
}
