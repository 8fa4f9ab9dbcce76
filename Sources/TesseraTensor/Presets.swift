/// Ready-made architectures used by experiments and benchmarks.
public enum ModelPreset {
    /// Multinomial logistic regression: one dense layer onto the class logits (train with
    /// `softmaxCrossEntropy`; for two classes with one logit, use `classes: 1` and
    /// `binaryCrossEntropyWithLogits`).
    public static func logisticRegression(inputs: Int, classes: Int, seed: UInt64) throws -> Sequential {
        try Sequential(inputShape: [inputs], layers: [Dense(outputs: classes, initialization: .glorot)], seed: seed)
    }

    /// A multi-layer perceptron: `Dense → ReLU` for each hidden size, then a dense layer onto
    /// the logits.
    public static func mlp(inputs: Int, hidden: [Int], classes: Int, seed: UInt64) throws -> Sequential {
        var layers: [any Layer] = []
        for width in hidden {
            layers.append(Dense(outputs: width, initialization: .he))
            layers.append(ReLU())
        }
        layers.append(Dense(outputs: classes, initialization: .glorot))
        return try Sequential(inputShape: [inputs], layers: layers, seed: seed)
    }
}
