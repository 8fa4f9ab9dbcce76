/// `local_training:` — what each participant does with the global model in a round.
///
/// ```yaml
/// local_training:
///   epochs: 20
///   batch_size: 10
///   optimizer: sgd         # sgd | adam
///   learning_rate: 0.01
///   momentum: 0.0          # sgd only
///   weight_decay: 0.0
///   proximal_mu: 1.0       # FedProx's μ
///   clip_norm: 10.0        # optional: clip each step's gradient to this global L2 norm
/// ```
public struct LocalTrainingConfig: Sendable, Hashable, Codable {
    public enum Optimizer: String, ConfigChoice {
        case sgd, adam
    }

    /// Passes over the local training split per round (`E`). Default 1, the setting of Reddi
    /// et al. 2021's benchmarks; more epochs save communication but drift further on non-IID data.
    public var epochs: Int
    /// Minibatch size (`B`). Default 32.
    public var batchSize: Int
    /// Default `sgd`: plain client SGD is what FedAvg and its analyses assume, and it keeps no
    /// state that would be reset every round.
    public var optimizer: Optimizer
    /// The client learning rate. Default 0.01 for SGD (the FedProx paper's setting) and 0.001
    /// for Adam (Kingma and Ba's default) when not given.
    public var learningRate: Double
    /// SGD momentum in `[0, 1)`, reset each round. Default 0.
    public var momentum: Double
    /// L2 weight decay `≥ 0`. Default 0.
    public var weightDecay: Double
    /// FedProx's proximal coefficient `μ ≥ 0`: the trainer adds `μ (w − w_global)` to every
    /// gradient (``FedProx/proximalGradient(gradients:parameters:global:mu:)-(inout [Float],_,_,_)``).
    /// When the file does not give it: ``FedProx/defaultMu`` for strategy `fedprox`, 0 otherwise.
    /// It may also be combined with any other server strategy.
    public var proximalMu: Double
    /// Clip each step's gradient to this global L2 norm; `nil` (default) does not clip.
    public var clipNorm: Double?

    public static func defaultLearningRate(_ optimizer: Optimizer) -> Double {
        switch optimizer {
        case .sgd: 0.01
        case .adam: 0.001
        }
    }

    public init(
        epochs: Int = 1, batchSize: Int = 32, optimizer: Optimizer = .sgd, learningRate: Double? = nil,
        momentum: Double = 0, weightDecay: Double = 0, proximalMu: Double = 0, clipNorm: Double? = nil
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.learningRate = learningRate ?? Self.defaultLearningRate(optimizer)
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.proximalMu = proximalMu
        self.clipNorm = clipNorm
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epochs
        case batchSize = "batch_size"
        case optimizer
        case learningRate = "learning_rate"
        case momentum
        case weightDecay = "weight_decay"
        case proximalMu = "proximal_mu"
        case clipNorm = "clip_norm"
    }

    static func keys(for optimizer: Optimizer) -> [String] {
        let all = CodingKeys.allCases.map(\.stringValue)
        switch optimizer {
        case .sgd: return all
        case .adam: return all.filter { $0 != "momentum" }
        }
    }

    /// Decodes the section; `proximal_mu` stays `nil` in the result's second element when absent,
    /// so that ``ExperimentConfig`` can give FedProx its default.
    static func decode(from decoder: any Decoder) throws -> (LocalTrainingConfig, proximalMuGiven: Bool) {
        let (c, present) = try decoder.configSection(CodingKeys.self)
        let d = LocalTrainingConfig()
        let optimizer = try c.choice(Optimizer.self, forKey: .optimizer, default: d.optimizer)
        try decoder.rejectInapplicable(
            present: present, allowed: keys(for: optimizer), usage: Optimizer.usage(keys), label: "optimizer",
            chosen: optimizer.rawValue)
        let mu: Double? = try c.optional(.proximalMu)
        let config = LocalTrainingConfig(
            epochs: try c.value(.epochs, default: d.epochs), batchSize: try c.value(.batchSize, default: d.batchSize),
            optimizer: optimizer, learningRate: try c.optional(.learningRate),
            momentum: try c.value(.momentum, default: d.momentum),
            weightDecay: try c.value(.weightDecay, default: d.weightDecay),
            proximalMu: mu ?? d.proximalMu, clipNorm: try c.optional(.clipNorm))
        return (config, mu != nil)
    }

    public init(from decoder: any Decoder) throws {
        self = try Self.decode(from: decoder).0
    }

    /// The training task participants receive (`seed` orders their batches).
    public func trainingTask(seed: UInt64) -> TrainingTask {
        let optimizer: LocalOptimizer
        switch self.optimizer {
        case .sgd:
            optimizer = .sgd(
                learningRate: Float(learningRate), momentum: Float(momentum), weightDecay: Float(weightDecay))
        case .adam:
            optimizer = .adam(learningRate: Float(learningRate), weightDecay: Float(weightDecay))
        }
        return TrainingTask(
            epochs: epochs, batchSize: batchSize, optimizer: optimizer, proximalMu: Float(proximalMu),
            gradientClipNorm: clipNorm.map(Float.init), seed: seed)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: optimizer)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(momentum, forKey: .momentum, ifIn: allowed)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(proximalMu, forKey: .proximalMu)
        try c.encodeIfPresent(clipNorm, forKey: .clipNorm)
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("local_training")
        try rules.positive(epochs, "epochs")
        try rules.positive(batchSize, "batch_size")
        try rules.positive(learningRate, "learning_rate")
        try rules.halfOpen(momentum, 0, 1, "momentum")
        try rules.conflict(
            unless: optimizer == .sgd || momentum == 0, "momentum", "is set but optimizer adam does not use it")
        try rules.nonNegative(weightDecay, "weight_decay")
        try rules.nonNegative(proximalMu, "proximal_mu")
        if let clipNorm { try rules.positive(clipNorm, "clip_norm") }
    }
}
