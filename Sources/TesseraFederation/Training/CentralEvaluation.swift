public import Foundation
import Synchronization
public import TesseraData
import TesseraTensor

/// Evaluates each global model the coordinator publishes on a test set the coordinator holds
/// (`evaluation.dataset`): one fixed set for every round and every arm of a comparison, the
/// figure papers report, beside the sites' own held-out figures.
///
/// It is pure computation on the model and holds no round state, so the round state machine
/// calls it through ``FederationPlan/centralEvaluator`` under every runner (the in-memory
/// driver, the gRPC federations of `tessera simulate`, `tessera-coordinator`). Calls are
/// serialised: one model copy and its scratch buffers serve every round.
public struct CentralEvaluator: Sendable {
    /// What the set is, for logs and reports (`central test set: 1000 rows, csv test.csv`).
    public let description: String
    /// The rows every evaluation runs over.
    public let sampleCount: Int
    private let body: @Sendable ([Float]) throws -> EvaluationMetrics

    /// An evaluator from any function of the flat parameters (tests, custom metrics).
    public init(
        description: String, sampleCount: Int,
        evaluate: @escaping @Sendable (_ parameters: [Float]) throws -> EvaluationMetrics
    ) {
        self.description = description
        self.sampleCount = sampleCount
        self.body = evaluate
    }

    /// Evaluates `architecture` on `dataset` with ``Evaluation/evaluate(model:loss:on:batchSize:)``
    /// (loss, accuracy, and AUC for binary tasks).
    ///
    /// - Throws: ``TrainingError`` when the set does not fit the model
    ///   (``mismatch(of:with:)`` says how).
    public init(architecture: ModelArchitecture, dataset: Dataset, description: String) throws {
        if let problem = Self.mismatch(of: dataset, with: architecture) { throw TrainingError(problem) }
        let box = TrainerBox(LocalTrainer(model: try architecture.build(seed: 0), loss: architecture.loss))
        self.init(description: description, sampleCount: dataset.count) { parameters in
            try box.trainer.withLock { try $0.evaluate(parameters: parameters, on: dataset) }
        }
    }

    /// The metrics of the model with these flat parameters on the set.
    public func evaluate(_ parameters: [Float]) throws -> EvaluationMetrics { try body(parameters) }

    /// Why `dataset` cannot evaluate `architecture`, or `nil` when it can: no rows, another
    /// number of features, a numeric target, labels past the model's classes, or text labels
    /// that do not name every class (text labels are numbered in sorted order, as the sites
    /// number theirs, so a missing class would shift the others).
    public static func mismatch(of dataset: Dataset, with architecture: ModelArchitecture) -> String? {
        let model = architecture.summary
        guard dataset.count > 0 else { return "has no rows" }
        guard dataset.featuresPerSample == architecture.inputCount else {
            return "has \(dataset.featuresPerSample) features per row but the model (\(model)) takes "
                + "\(architecture.inputCount)"
        }
        let classes = architecture.classCount
        guard dataset.classCount != nil else {
            return "has a numeric target, but the model (\(model)) classifies into \(classes) classes"
        }
        if let names = dataset.classNames, names.count != classes {
            return "has the text labels \(names.joined(separator: ", ")) (\(names.count) classes) but the model "
                + "(\(model)) has \(classes); a test set with text labels must name every class, so that they are "
                + "numbered as the sites number theirs"
        }
        let largest = dataset.labels.scalars.max() ?? 0
        guard largest < Float(classes) else {
            return "has the class label \(Int(largest)) but the model (\(model)) has \(classes) classes "
                + "(0…\(classes - 1))"
        }
        return nil
    }
}

/// One model copy for every evaluation, behind a lock: the evaluator is `Sendable` and may be
/// called from any task, while the model's buffers are reused.
private final class TrainerBox: Sendable {
    let trainer: Mutex<LocalTrainer>

    init(_ trainer: sending LocalTrainer) { self.trainer = Mutex(trainer) }
}

extension ModelArchitecture {
    /// The features per sample the model takes.
    var inputCount: Int {
        switch self {
        case .logisticRegression(let inputs, _), .mlp(let inputs, _, _): inputs
        case .mcmahanCNN: ModelConfig.cnnInputs
        }
    }

    /// The classes the model scores.
    var classCount: Int {
        switch self {
        case .logisticRegression(_, let classes), .mlp(_, _, let classes), .mcmahanCNN(let classes): classes
        }
    }
}

extension ExperimentConfig {
    /// The evaluator of `evaluation.dataset` for `architecture`, or `nil` when the file names no
    /// central test set. A runner sets it as ``FederationPlan/centralEvaluator`` of its plan.
    ///
    /// Files are read (relative to ``baseDirectory``) or rows generated now, once; every
    /// problem is a ``ConfigError`` at the path to change (`evaluation.dataset.paths[0]`:
    /// unreadable or malformed; `evaluation.dataset`: features or classes that disagree with the
    /// model).
    public func makeCentralEvaluator(architecture: ModelArchitecture) throws(ConfigError) -> CentralEvaluator? {
        guard let spec = evaluation.dataset else { return nil }
        let data = try loadCentralTestSet(classes: architecture.classCount)
        if let problem = CentralEvaluator.mismatch(of: data, with: architecture) {
            throw ConfigError(.conflict, path: "evaluation.dataset", problem)
        }
        let description = "central test set: \(data.count) rows, \(centralTestSetSummary(spec))"
        do {
            return try CentralEvaluator(architecture: architecture, dataset: data, description: description)
        } catch {
            throw ConfigError(.invalidValue, path: "evaluation.dataset", "cannot evaluate the model on it: \(error)")
        }
    }

    /// Where the central test set's rows come from, in a few words (`csv test.csv`,
    /// `synthetic_iid, rows drawn with seed 42`); `nil` without one.
    public var centralTestSetSummary: String? { evaluation.dataset.map(centralTestSetSummary) }

    private func centralTestSetSummary(_ spec: DatasetConfig) -> String {
        var files: [String] = spec.paths
        switch spec.kind {
        case .npy: files = [spec.features, spec.labels].compactMap { $0 }
        case .idx: files = [spec.images, spec.labels].compactMap { $0 }
        default: break
        }
        let names = files.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")
        let source =
            spec.isGenerated ? "rows drawn with seed \(centralEvaluationSeed)" : names
        return "\(spec.kind.rawValue) \(source)" + (spec.standardise ? ", standardised" : "")
    }

    /// The rows of `evaluation.dataset`: read from its files (pooled) or drawn from the training
    /// data's generator with ``centralEvaluationSeed``, then standardised with their own
    /// statistics when asked. Integer labels are taken as class indices below `classes`; text
    /// labels are numbered in sorted order.
    public func loadCentralTestSet(classes: Int) throws(ConfigError) -> Dataset {
        guard let spec = evaluation.dataset else {
            throw ConfigError(.missingValue, path: "evaluation.dataset", "the experiment names no central test set")
        }
        let prefix = "evaluation.dataset"
        var data: Dataset
        switch spec.kind {
        case .csv, .clinicalRisk:
            if spec.paths.isEmpty {
                let sites = ClinicalRisk.generateSites(
                    ClinicalRisk.siteProfiles(count: participants), seed: centralEvaluationSeed)
                data = try Self.attempt(prefix, nil) { try Dataset.concatenating(sites) }
            } else {
                data = try loadCentralTables(spec, classes: classes)
            }
        case .npy:
            let features = resolve(spec.features ?? ""), labels = resolve(spec.labels ?? "")
            data = try Self.attempt(prefix + ".features", (labels, prefix + ".labels")) {
                try NPYLoader.loadDataset(features: features, labels: labels, classCount: classes)
            }
        case .idx:
            let images = resolve(spec.images ?? ""), labels = resolve(spec.labels ?? "")
            data = try Self.attempt(prefix + ".images", (labels, prefix + ".labels")) {
                try IDXLoader.loadDataset(images: images, labels: labels, classCount: classes)
            }
        case .syntheticFedProx, .syntheticIID:
            var generator =
                spec.kind == .syntheticIID
                ? FedProxSynthetic.Configuration.iid(devices: participants)
                : FedProxSynthetic.Configuration.synthetic(alpha: spec.alpha, beta: spec.beta, devices: participants)
            generator.dimension = spec.dimension
            generator.classes = spec.classes
            generator.maximumSamples = spec.maxSamplesPerParticipant
            let heldOut = centralEvaluationSeed
            data = try Self.attempt(prefix, nil) {
                try Dataset.concatenating(FedProxSynthetic.datasets(generator, seed: seed, heldOutSeed: heldOut))
            }
        }
        if spec.standardise {
            let raw = data
            data = try Self.attempt(prefix + ".standardise", nil) { try Standardizer.fit(raw).transform(raw) }
        }
        return data
    }

    /// CSV files pooled into one set, every file's labels numbered alike.
    private func loadCentralTables(_ spec: DatasetConfig, classes: Int) throws(ConfigError) -> Dataset {
        let label = spec.labelColumn ?? ClinicalRisk.labelName
        var columns: CSVOptions.ColumnSelection = .all
        if let only = spec.featureColumns { columns = .only(only) }
        if !spec.excludeColumns.isEmpty { columns = .excluding(spec.excludeColumns) }
        let delimiter = spec.delimiter.utf8.first ?? UInt8(ascii: ",")
        let files = spec.paths.map { resolve($0) }
        // First pass: are the labels text, and which? Text labels are numbered over every file.
        var textLabels = Set<String>()
        var hasText = false
        for (i, url) in files.enumerated() {
            let probe = try Self.attempt("evaluation.dataset.paths[\(i)]", nil) {
                try CSVLoader.load(url, options: CSVOptions(labelColumn: label, columns: columns, delimiter: delimiter))
            }
            if probe.classNames != nil { hasText = true }
            textLabels.formUnion(probe.classNames ?? probe.classIndices.map(String.init))
        }
        let options =
            hasText
            ? CSVOptions(
                labelColumn: label,
                classNames: textLabels.sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) },
                columns: columns, delimiter: delimiter)
            : CSVOptions(labelColumn: label, classCount: classes, columns: columns, delimiter: delimiter)
        var parts: [Dataset] = []
        for (i, url) in files.enumerated() {
            parts.append(
                try Self.attempt("evaluation.dataset.paths[\(i)]", nil) { try CSVLoader.load(url, options: options) })
        }
        return try Self.attempt("evaluation.dataset.paths", nil) { try Dataset.concatenating(parts) }
    }

    /// Runs a loader, turning its error into a ``ConfigError`` at `path` (or at the second path
    /// when the error names that file).
    private static func attempt<T>(
        _ path: String, _ other: (file: URL, path: String)?, _ body: () throws -> T
    ) throws(ConfigError) -> T {
        do {
            return try body()
        } catch let error as DataError {
            let at = other.flatMap { error.file == $0.file.path ? $0.path : nil } ?? path
            throw ConfigError(
                error.code == .ioFailure ? .unreadableFile : .invalidValue, path: at,
                "the central test set is unusable: \(error.message)")
        } catch {
            throw ConfigError(.invalidValue, path: path, "the central test set is unusable: \(error)")
        }
    }
}
