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

extension ModelArchitecture {
    /// The number of parameters ``build(seed:)`` creates, from the shape alone: nothing is
    /// allocated, so a site can refuse a model before building it. `nil` when a dimension is
    /// not positive or the count overflows `Int`.
    public var parameterCount: Int? {
        switch self {
        case .logisticRegression(let inputs, let classes):
            return Self.denseChainParameters(inputs: inputs, hidden: [], outputs: classes)
        case .mlp(let inputs, let hidden, let classes):
            return Self.denseChainParameters(inputs: inputs, hidden: hidden, outputs: classes)
        case .mcmahanCNN(let classes):
            // 5×5 convolutions onto 32 and 64 planes, then 7·7·64 = 3,136 features into 512 units.
            let fixed = (5 * 5 * 1 * 32 + 32) + (5 * 5 * 32 * 64 + 64) + (3_136 * 512 + 512)
            guard let head = Self.denseChainParameters(inputs: 512, hidden: [], outputs: classes) else {
                return nil
            }
            return Self.add(fixed, head)
        }
    }

    /// The most values one sample has at any layer's input or output: the width of the widest
    /// activation, which bounds the memory a batch needs. `nil` when a dimension is not positive.
    public var widestLayer: Int? {
        switch self {
        case .logisticRegression(let inputs, let classes):
            guard inputs > 0, classes > 0 else { return nil }
            return max(inputs, classes)
        case .mlp(let inputs, let hidden, let classes):
            guard inputs > 0, classes > 0, hidden.allSatisfy({ $0 > 0 }) else { return nil }
            return max(inputs, classes, hidden.max() ?? 0)
        case .mcmahanCNN(let classes):
            guard classes > 0 else { return nil }
            return max(32 * 28 * 28, classes)  // the first convolution's 32 planes of 28×28
        }
    }

    /// Weights and biases of dense layers from `inputs` through each hidden width onto
    /// `outputs`, with overflow-checked arithmetic.
    private static func denseChainParameters(inputs: Int, hidden: [Int], outputs: Int) -> Int? {
        guard inputs > 0 else { return nil }
        var total = 0
        var previous = inputs
        for index in 0...hidden.count {
            let width = index < hidden.count ? hidden[index] : outputs
            guard width > 0 else { return nil }
            let (weights, overflow) = previous.multipliedReportingOverflow(by: width)
            guard !overflow, let layer = add(weights, width), let sum = add(total, layer) else { return nil }
            total = sum
            previous = width
        }
        return total
    }

    private static func add(_ a: Int, _ b: Int) -> Int? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }
}
