/// `model:` — which architecture the federation trains.
///
/// ```yaml
/// model:
///   preset: mlp          # logistic_regression | mlp | mcmahan_cnn
///   hidden: [64, 32]     # mlp only
///   inputs: 30           # optional: inferred from the dataset
///   classes: 2           # optional: inferred from the dataset
/// ```
///
/// The presets are those of `TesseraTensor.ModelPreset`; every participant builds the same
/// architecture from the same seed, so the flat parameter vectors line up coordinate by
/// coordinate.
public struct ModelConfig: Sendable, Hashable, Codable {
    public enum Preset: String, ConfigChoice {
        /// Multinomial logistic regression: one dense layer onto the class logits.
        case logisticRegression = "logistic_regression"
        /// Dense → ReLU per hidden width, then a dense layer onto the logits.
        case mlp
        /// The CNN of McMahan et al. 2017 for 1×28×28 images (MNIST, FEMNIST): 1,663,370 parameters for 10 classes.
        case mcmahanCNN = "mcmahan_cnn"
    }

    /// Default `logistic_regression`: the smallest model, right for tabular data and for the
    /// convex experiments of the FedProx paper.
    public var preset: Preset
    /// Hidden-layer widths of `mlp`. Default `[64]`, one modest layer.
    public var hidden: [Int]
    /// Input features; `nil` (default) infers them from the dataset.
    public var inputs: Int?
    /// Output classes; `nil` (default) infers them from the dataset's labels.
    public var classes: Int?

    /// The 1×28×28 input of `mcmahan_cnn`, flattened.
    public static let cnnInputs = 784

    public init(preset: Preset = .logisticRegression, hidden: [Int] = [64], inputs: Int? = nil, classes: Int? = nil) {
        self.preset = preset
        self.hidden = hidden
        self.inputs = inputs
        self.classes = classes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case preset, hidden, inputs, classes
    }

    static func keys(for preset: Preset) -> [String] {
        switch preset {
        case .mlp: ["preset", "hidden", "inputs", "classes"]
        case .logisticRegression, .mcmahanCNN: ["preset", "inputs", "classes"]
        }
    }

    public init(from decoder: any Decoder) throws {
        let (c, present) = try decoder.configSection(CodingKeys.self)
        let defaults = ModelConfig()
        let preset = try c.choice(Preset.self, forKey: .preset, default: defaults.preset)
        try decoder.rejectInapplicable(
            present: present, allowed: Self.keys(for: preset), usage: Preset.usage(Self.keys), label: "model preset",
            chosen: preset.rawValue)
        self.init(
            preset: preset, hidden: try c.value(.hidden, default: defaults.hidden), inputs: try c.optional(.inputs),
            classes: try c.optional(.classes))
    }

    /// The architecture every participant builds, once the data has told how many features
    /// and classes it has. Values written in the file must agree with the data.
    public func architecture(dataInputs: Int, dataClasses: Int) throws(ConfigError) -> ModelArchitecture {
        let rules = ConfigRules("model")
        if let inputs {
            try rules.conflict(
                unless: inputs == dataInputs, "inputs",
                "is \(inputs) but the dataset has \(dataInputs) features; omit it to infer it")
        }
        if let classes {
            try rules.conflict(
                unless: classes == dataClasses, "classes",
                "is \(classes) but the dataset has \(dataClasses) classes; omit it to infer it")
        }
        switch preset {
        case .logisticRegression: return .logisticRegression(inputs: dataInputs, classes: dataClasses)
        case .mlp: return .mlp(inputs: dataInputs, hidden: hidden, classes: dataClasses)
        case .mcmahanCNN:
            try rules.conflict(
                unless: dataInputs == Self.cnnInputs, "preset",
                "mcmahan_cnn takes 1×28×28 images (784 inputs) but the dataset has \(dataInputs) features")
            return .mcmahanCNN(classes: dataClasses)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: preset)
        try c.encode(preset, forKey: .preset)
        try c.encode(hidden, forKey: .hidden, ifIn: allowed)
        try c.encode(inputs, forKey: .inputs, ifIn: allowed)
        try c.encode(classes, forKey: .classes, ifIn: allowed)
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("model")
        if preset == .mlp {
            try rules.check(!hidden.isEmpty, "hidden", "needs at least one hidden width, e.g. [64]")
            for (i, width) in hidden.enumerated() { try rules.positive(width, "hidden[\(i)]") }
        }
        if let inputs { try rules.positive(inputs, "inputs") }
        if let classes { try rules.check(classes >= 2, "classes", "must be at least 2, got \(classes)") }
        if preset == .mcmahanCNN, let inputs {
            try rules.check(
                inputs == Self.cnnInputs, "inputs",
                "mcmahan_cnn takes 1×28×28 images, i.e. \(Self.cnnInputs) inputs, got \(inputs)")
        }
    }
}
