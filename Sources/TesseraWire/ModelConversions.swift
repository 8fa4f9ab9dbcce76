public import TesseraFederation

// Conversions of the model description: version, architecture, local optimiser and training
// task. Domain → wire throws only for values the wire cannot represent (negative counts), which
// are bugs on the sending side; wire → domain throws for anything a peer could get wrong.

// MARK: ModelVersion

extension Tessera_V1_ModelVersion {
    public init(_ version: ModelVersion) throws(WireError) {
        self.init()
        major = try checkedUInt64(version.major, wireField("ModelVersion", "major"))
        minor = try checkedUInt64(version.minor, wireField("ModelVersion", "minor"))
        patch = try checkedUInt64(version.patch, wireField("ModelVersion", "patch"))
    }
}

extension ModelVersion {
    public init(_ wire: Tessera_V1_ModelVersion) throws(WireError) {
        self.init(
            major: try checkedInt(wire.major, wireField("ModelVersion", "major")),
            minor: try checkedInt(wire.minor, wireField("ModelVersion", "minor")),
            patch: try checkedInt(wire.patch, wireField("ModelVersion", "patch")))
    }
}

// MARK: ModelArchitecture

extension Tessera_V1_ModelArchitecture {
    public init(_ architecture: ModelArchitecture) throws(WireError) {
        self.init()
        switch architecture {
        case .logisticRegression(let inputs, let classes):
            var wire = LogisticRegression()
            wire.inputs = try checkedUInt64(inputs, wireField("ModelArchitecture.LogisticRegression", "inputs"))
            wire.classes = try checkedUInt64(classes, wireField("ModelArchitecture.LogisticRegression", "classes"))
            kind = .logisticRegression(wire)
        case .mlp(let inputs, let hidden, let classes):
            var wire = Mlp()
            wire.inputs = try checkedUInt64(inputs, wireField("ModelArchitecture.Mlp", "inputs"))
            var widths: [UInt64] = []
            for width in hidden {
                widths.append(try checkedUInt64(width, wireField("ModelArchitecture.Mlp", "hidden")))
            }
            wire.hidden = widths
            wire.classes = try checkedUInt64(classes, wireField("ModelArchitecture.Mlp", "classes"))
            kind = .mlp(wire)
        case .mcmahanCNN(let classes):
            var wire = McMahanCnn()
            wire.classes = try checkedUInt64(classes, wireField("ModelArchitecture.McMahanCnn", "classes"))
            kind = .mcmahanCnn(wire)
        }
    }
}

extension ModelArchitecture {
    /// Every width must be at least 1: a zero is what proto3 sends for a field the peer forgot.
    public init(_ wire: Tessera_V1_ModelArchitecture) throws(WireError) {
        switch wire.kind {
        case .logisticRegression(let m):
            self = .logisticRegression(
                inputs: try checkedPositiveInt(m.inputs, wireField("ModelArchitecture.LogisticRegression", "inputs")),
                classes: try checkedPositiveInt(m.classes, wireField("ModelArchitecture.LogisticRegression", "classes"))
            )
        case .mlp(let m):
            var hidden: [Int] = []
            for width in m.hidden {
                hidden.append(try checkedPositiveInt(width, wireField("ModelArchitecture.Mlp", "hidden")))
            }
            self = .mlp(
                inputs: try checkedPositiveInt(m.inputs, wireField("ModelArchitecture.Mlp", "inputs")),
                hidden: hidden,
                classes: try checkedPositiveInt(m.classes, wireField("ModelArchitecture.Mlp", "classes")))
        case .mcmahanCnn(let m):
            self = .mcmahanCNN(
                classes: try checkedPositiveInt(m.classes, wireField("ModelArchitecture.McMahanCnn", "classes")))
        case nil:
            throw WireError.missing(wireField("ModelArchitecture", "kind"), "the architecture (oneof kind)")
        }
    }
}

// MARK: LocalOptimizer

extension Tessera_V1_LocalOptimizer {
    public init(_ optimizer: LocalOptimizer) {
        self.init()
        switch optimizer {
        case .sgd(let learningRate, let momentum, let nesterov, let weightDecay):
            var wire = Sgd()
            wire.learningRate = learningRate
            wire.momentum = momentum
            wire.nesterov = nesterov
            wire.weightDecay = weightDecay
            kind = .sgd(wire)
        case .adam(let learningRate, let beta1, let beta2, let epsilon, let weightDecay):
            var wire = Adam()
            wire.learningRate = learningRate
            wire.beta1 = beta1
            wire.beta2 = beta2
            wire.epsilon = epsilon
            wire.weightDecay = weightDecay
            kind = .adam(wire)
        }
    }
}

/// A hyperparameter must be finite: a NaN learning rate would silently turn a site's whole
/// update into NaN, which the coordinator would then drop as a misbehaving participant.
private func finite(_ value: Float, _ field: String) throws(WireError) -> Float {
    guard value.isFinite else { throw WireError.outOfRange(field, "must be finite, got \(value).") }
    return value
}

extension LocalOptimizer {
    public init(_ wire: Tessera_V1_LocalOptimizer) throws(WireError) {
        switch wire.kind {
        case .sgd(let m):
            let f = { (name: String) in wireField("LocalOptimizer.Sgd", name) }
            self = .sgd(
                learningRate: try finite(m.learningRate, f("learning_rate")),
                momentum: try finite(m.momentum, f("momentum")),
                nesterov: m.nesterov, weightDecay: try finite(m.weightDecay, f("weight_decay")))
        case .adam(let m):
            let f = { (name: String) in wireField("LocalOptimizer.Adam", name) }
            self = .adam(
                learningRate: try finite(m.learningRate, f("learning_rate")), beta1: try finite(m.beta1, f("beta1")),
                beta2: try finite(m.beta2, f("beta2")), epsilon: try finite(m.epsilon, f("epsilon")),
                weightDecay: try finite(m.weightDecay, f("weight_decay")))
        case nil:
            throw WireError.missing(wireField("LocalOptimizer", "kind"), "the optimiser (oneof kind)")
        }
    }
}

// MARK: TrainingTask

extension Tessera_V1_TrainingTask {
    public init(_ task: TrainingTask) throws(WireError) {
        self.init()
        epochs = try checkedUInt64(task.epochs, wireField("TrainingTask", "epochs"))
        batchSize = try checkedUInt64(task.batchSize, wireField("TrainingTask", "batch_size"))
        optimizer = Tessera_V1_LocalOptimizer(task.optimizer)
        proximalMu = task.proximalMu
        if let clip = task.gradientClipNorm { gradientClipNorm = clip }
        seed = task.seed
    }
}

extension TrainingTask {
    public init(_ wire: Tessera_V1_TrainingTask) throws(WireError) {
        guard wire.hasOptimizer else {
            throw WireError.missing(wireField("TrainingTask", "optimizer"), "the local optimiser")
        }
        var clip: Float?
        if wire.hasGradientClipNorm {
            clip = try finite(wire.gradientClipNorm, wireField("TrainingTask", "gradient_clip_norm"))
        }
        self.init(
            epochs: try checkedPositiveInt(wire.epochs, wireField("TrainingTask", "epochs")),
            batchSize: try checkedPositiveInt(wire.batchSize, wireField("TrainingTask", "batch_size")),
            optimizer: try LocalOptimizer(wire.optimizer),
            proximalMu: try finite(wire.proximalMu, wireField("TrainingTask", "proximal_mu")),
            gradientClipNorm: clip, seed: wire.seed)
    }
}
