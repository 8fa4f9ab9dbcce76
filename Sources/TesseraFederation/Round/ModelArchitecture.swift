public import TesseraTensor

/// The model an experiment trains, as every participant must build it.
///
/// The coordinator sends this with each training task so that a participant builds exactly
/// the architecture the global parameter vector belongs to; the parameter count is checked
/// on both sides.
public enum ModelArchitecture: Sendable, Hashable, Codable {
    /// Multinomial logistic regression (one dense layer onto the class logits).
    case logisticRegression(inputs: Int, classes: Int)
    /// Dense → ReLU per hidden width, then a dense layer onto the logits.
    case mlp(inputs: Int, hidden: [Int], classes: Int)
    /// McMahan et al. 2017's CNN for 28×28×1 images.
    case mcmahanCNN(classes: Int)

    /// Builds the model with parameters initialised from `seed`.
    public func build(seed: UInt64) throws -> Sequential {
        switch self {
        case .logisticRegression(let inputs, let classes):
            try ModelPreset.logisticRegression(inputs: inputs, classes: classes, seed: seed)
        case .mlp(let inputs, let hidden, let classes):
            try ModelPreset.mlp(inputs: inputs, hidden: hidden, classes: classes, seed: seed)
        case .mcmahanCNN(let classes):
            try ModelPreset.mcmahanCNN(classes: classes, seed: seed)
        }
    }

    /// The training loss: softmax cross-entropy over the class logits.
    public var loss: Loss { .softmaxCrossEntropy }

    /// A short human-readable description for logs and reports.
    public var summary: String {
        switch self {
        case .logisticRegression(let inputs, let classes): "logistic regression \(inputs)→\(classes)"
        case .mlp(let inputs, let hidden, let classes):
            "MLP \(([inputs] + hidden + [classes]).map(String.init).joined(separator: "-"))"
        case .mcmahanCNN(let classes): "McMahan CNN (28×28×1 → \(classes))"
        }
    }
}
