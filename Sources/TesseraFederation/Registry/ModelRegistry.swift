public import Foundation

/// Where a model version stands in its life: every version starts as a `candidate`, and an
/// operator moves it on. Each move is recorded with who made it and when (the audit trail).
public enum ModelStage: String, Codable, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case candidate
    case staging
    case production
    case archived

    /// The moves an operator may make. A version never goes back to `candidate`, and an
    /// archived version is final: serving an old model again means promoting it from its
    /// artifact as a new decision, which the trail must show as such. Promoting to
    /// `production` archives the version that held it (``ModelRegistry/promote(_:to:by:reason:)``).
    public func canMove(to next: ModelStage) -> Bool {
        switch (self, next) {
        case (.candidate, .staging), (.candidate, .production), (.candidate, .archived): true
        case (.staging, .production), (.staging, .archived): true
        case (.production, .archived), (.production, .staging): true
        default: false
        }
    }

    /// Parses a stage name as the CLI takes it (`--stage production`).
    public init(parsing text: String) throws(RegistryError) {
        guard let stage = ModelStage(rawValue: text.lowercased()) else {
            throw RegistryError(
                .invalidQuery,
                "'\(text)' is not a stage: use one of " + Self.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = stage
    }

    public var description: String { rawValue }
}

/// One registered model version: the artifact's digest and everything needed to say where it
/// came from (lineage, experiment, run, round, cohort, config) and how good it is.
public struct RegisteredModel: Codable, Sendable, Hashable {
    /// The model's name: the experiment's name. Versions are unique per name.
    public var name: String
    public var version: ModelVersion
    /// SHA-256 (hex) of the safetensors artifact, its address in the blob store.
    public var digest: String
    /// The version this one was trained from; `nil` for a round-0 (initial) model.
    public var parent: ModelVersion?
    /// The registry's id of the experiment that produced it.
    public var experiment: Int64
    /// The coordinator run (one process lifetime on the experiment) that produced it.
    public var run: Int64
    /// The round that produced it; 0 for the initial model.
    public var round: Int
    public var cohortSize: Int
    public var contributors: Int
    /// Named metrics (`train_loss`, `loss`, `accuracy`, `auc`, …) of the round that produced it.
    public var metrics: [String: Double]
    public var configHash: String
    public var architecture: String
    public var createdAt: Date
    public var stage: ModelStage

    public init(
        name: String, version: ModelVersion, digest: String, parent: ModelVersion?, experiment: Int64, run: Int64,
        round: Int, cohortSize: Int, contributors: Int, metrics: [String: Double], configHash: String,
        architecture: String, createdAt: Date, stage: ModelStage = .candidate
    ) {
        self.name = name
        self.version = version
        self.digest = digest
        self.parent = parent
        self.experiment = experiment
        self.run = run
        self.round = round
        self.cohortSize = cohortSize
        self.contributors = contributors
        self.metrics = metrics
        self.configHash = configHash
        self.architecture = architecture
        self.createdAt = createdAt
        self.stage = stage
    }

    /// `name@MAJOR.MINOR.PATCH`, the reference the CLI prints and accepts.
    public var reference: ModelReference { ModelReference(name: name, version: version) }
}

/// A recorded change of stage.
public struct StageTransition: Codable, Sendable, Hashable {
    public var model: ModelReference
    public var from: ModelStage
    public var to: ModelStage
    /// Who made the change: a certificate's identity, or `local:USER` for the CLI on the
    /// coordinator's machine.
    public var actor: String
    public var at: Date
    public var reason: String?

    public init(
        model: ModelReference, from: ModelStage, to: ModelStage, actor: String, at: Date, reason: String? = nil
    ) {
        self.model = model
        self.from = from
        self.to = to
        self.actor = actor
        self.at = at
        self.reason = reason
    }
}

/// `name@1.0.7`, or `1.0.7` alone when only one model has that version.
public struct ModelReference: Codable, Sendable, Hashable, CustomStringConvertible {
    public var name: String?
    public var version: ModelVersion

    public init(name: String?, version: ModelVersion) {
        self.name = name
        self.version = version
    }

    /// Parses `NAME@MAJOR.MINOR.PATCH` or `MAJOR.MINOR.PATCH`.
    public init(parsing text: String) throws(RegistryError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count <= 2 else {
            throw RegistryError(.invalidReference, "'\(text)' is not a model reference: use NAME@MAJOR.MINOR.PATCH")
        }
        let versionText = String(parts.last!)
        guard let version = ModelVersion(parsing: versionText) else {
            throw RegistryError(
                .invalidReference, "'\(versionText)' is not a version: use MAJOR.MINOR.PATCH, for example 1.0.12")
        }
        if parts.count == 2 {
            guard !parts[0].isEmpty else {
                throw RegistryError(.invalidReference, "'\(text)' has an empty model name before '@'")
            }
            self.name = String(parts[0])
        } else {
            self.name = nil
        }
        self.version = version
    }

    public var description: String { name.map { "\($0)@\(version)" } ?? version.description }
}

extension ModelVersion {
    /// Parses `MAJOR.MINOR.PATCH` (non-negative integers, no leading sign).
    public init?(parsing text: String) {
        let fields = text.split(separator: ".", omittingEmptySubsequences: false)
        let numbers = fields.compactMap { field -> Int? in
            guard (1...9).contains(field.count), field.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
            return Int(field)
        }
        guard fields.count == 3, numbers.count == 3 else { return nil }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2])
    }
}

/// The queryable model registry: what `tessera models` reads and changes. The coordinator's
/// implementation keeps it in its SQLite state; registering a version is part of committing a
/// round, not a call here.
public protocol ModelRegistry: Sendable {
    /// The versions matching `query`, newest first.
    func models(matching query: ModelQuery) throws -> [RegisteredModel]
    /// One version; an ambiguous or unknown reference throws, naming the candidates.
    func model(_ reference: ModelReference) throws -> RegisteredModel
    /// Moves a version to `stage`, recording who and when. Promoting to `production`
    /// archives the version of the same name that held it.
    @discardableResult
    func promote(
        _ reference: ModelReference, to stage: ModelStage, by actor: String, reason: String?
    ) throws
        -> [StageTransition]
    /// Every recorded stage change of a version, oldest first.
    func transitions(of reference: ModelReference) throws -> [StageTransition]
    /// The safetensors bytes of a version, checked against its digest.
    func artifact(of model: RegisteredModel) throws -> [UInt8]
}

/// A registry request that cannot be carried out, in words the operator can act on.
public struct RegistryError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case invalidReference, notFound, ambiguous, invalidTransition, invalidQuery, corruptArtifact
            case incompatibleModels
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A reference or version that does not parse.
        public static let invalidReference = Code(.invalidReference)
        /// No version or site matches.
        public static let notFound = Code(.notFound)
        /// A bare version that several models have.
        public static let ambiguous = Code(.ambiguous)
        /// A stage change the life cycle forbids.
        public static let invalidTransition = Code(.invalidTransition)
        /// A `--where` condition that does not parse.
        public static let invalidQuery = Code(.invalidQuery)
        /// An artifact whose bytes do not hash to its recorded digest.
        public static let corruptArtifact = Code(.corruptArtifact)
        /// Two versions that cannot be compared tensor by tensor (different names or shapes).
        public static let incompatibleModels = Code(.incompatibleModels)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
