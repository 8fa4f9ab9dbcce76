extension ModelPreset {
    /// The "CNN" of McMahan et al. 2017 (*Communication-Efficient Learning of Deep Networks
    /// from Decentralized Data*), the reference model of federated-learning experiments on
    /// MNIST and FEMNIST. Input `[1, 28, 28]`, output `[classes]` logits (train with
    /// `softmaxCrossEntropy`):
    ///
    /// `Conv 5×5×32 (pad 2) → ReLU → MaxPool 2 → Conv 5×5×64 (pad 2) → ReLU → MaxPool 2 →
    /// Flatten → Dense 512 → ReLU → Dense classes`
    ///
    /// "Same" padding keeps the planes at 28 and 14 before each pooling, which is what gives
    /// the paper's 1,663,370 parameters for 10 classes — the number to check a port against.
    /// Layer indices (and so parameter names `0.weight`, `3.weight`, `7.weight`, `9.weight`)
    /// match a PyTorch `nn.Sequential` of the same modules.
    public static func mcmahanCNN(classes: Int = 10, seed: UInt64) throws -> Sequential {
        guard classes > 0 else {
            throw TensorError(.invalidArgument, "mcmahanCNN needs at least one class, got \(classes)")
        }
        let layers: [any Layer] = [
            Conv2D(filters: 32, kernelSize: 5, padding: 2),
            ReLU(),
            MaxPool2D(size: 2),
            Conv2D(filters: 64, kernelSize: 5, padding: 2),
            ReLU(),
            MaxPool2D(size: 2),
            Flatten(),
            Dense(outputs: 512),
            ReLU(),
            Dense(outputs: classes, initialization: .glorot),
        ]
        return try Sequential(inputShape: [1, 28, 28], layers: layers, seed: seed)
    }
}
