public import Foundation
public import TesseraFederation
import TesseraSupport
public import TesseraTensor

/// One step of a version's lineage: the version and, when the registry holds it, its record.
public struct LineageStep: Sendable, Hashable {
    public var version: ModelVersion
    /// `nil` when the registry does not hold that version (the seed model of an experiment).
    public var model: RegisteredModel?
}

/// What `tessera models export` writes beside the safetensors file: where a model came from and
/// how good it is, in a JSON file another tool can read without the registry.
public struct ModelCard: Codable, Sendable, Hashable {
    public struct Transition: Codable, Sendable, Hashable {
        public var from: ModelStage
        public var to: ModelStage
        public var actor: String
        public var at: Date
        public var reason: String?
    }

    public var name: String
    public var version: String
    /// SHA-256 (hex) of the safetensors file.
    public var digest: String
    /// `name@MAJOR.MINOR.PATCH` of the version it was trained from.
    public var parent: String?
    public var experiment: Int64
    public var run: Int64
    public var round: Int
    public var cohortSize: Int
    public var contributors: Int
    public var metrics: [String: Double]
    public var configHash: String
    public var architecture: String
    public var createdAt: Date
    public var stage: ModelStage
    /// Every stage change, oldest first; absent in `tessera models list --json`.
    public var stageHistory: [Transition]?

    public init(_ model: RegisteredModel, history: [StageTransition]?) {
        name = model.name
        version = model.version.description
        digest = model.digest
        parent = model.parent.map { ModelReference(name: model.name, version: $0).description }
        experiment = model.experiment
        run = model.run
        round = model.round
        cohortSize = model.cohortSize
        contributors = model.contributors
        metrics = model.metrics
        configHash = model.configHash
        architecture = model.architecture
        createdAt = model.createdAt
        stage = model.stage
        stageHistory = history?.map {
            Transition(from: $0.from, to: $0.to, actor: $0.actor, at: $0.at, reason: $0.reason)
        }
    }

    /// Snake-case keys, ISO 8601 times, sorted keys: stable bytes for the same card.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The files `tessera models export` wrote.
public struct ModelExport: Sendable, Hashable {
    public var model: URL
    public var card: URL
}

/// The per-tensor L2 distance between two versions of the same architecture.
public struct ModelDiff: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var shape: [Int]
        /// ‖b − a‖₂ over the tensor's elements.
        public var distance: Double
    }

    public var from: ModelReference
    public var to: ModelReference
    /// By tensor name.
    public var entries: [Entry]
    /// ‖b − a‖₂ over every parameter of the model: the root of the sum of squared entries.
    public var total: Double

    /// Compares two decoded models; their tensor names and shapes must agree, since a distance
    /// between different architectures means nothing.
    public static func compute(
        from a: SafetensorsFile, _ aReference: ModelReference, to b: SafetensorsFile, _ bReference: ModelReference
    ) throws(RegistryError) -> ModelDiff {
        let aNames = Set(a.tensors.keys)
        let bNames = Set(b.tensors.keys)
        guard aNames == bNames else {
            let onlyA = aNames.subtracting(bNames).sorted().joined(separator: ", ")
            let onlyB = bNames.subtracting(aNames).sorted().joined(separator: ", ")
            throw RegistryError(
                .incompatibleModels,
                "\(aReference) and \(bReference) have different tensors"
                    + (onlyA.isEmpty ? "" : "; only \(aReference) has \(onlyA)")
                    + (onlyB.isEmpty ? "" : "; only \(bReference) has \(onlyB)"))
        }
        var entries: [Entry] = []
        var squares = 0.0
        for name in aNames.sorted() {
            let x = a.tensors[name]!
            let y = b.tensors[name]!
            guard x.shape == y.shape else {
                throw RegistryError(
                    .incompatibleModels,
                    "tensor '\(name)' has shape \(x.shape) in \(aReference) but \(y.shape) in \(bReference)")
            }
            var sum = 0.0
            for (u, v) in zip(x.scalars, y.scalars) {
                let d = Double(v) - Double(u)
                sum += d * d
            }
            squares += sum
            entries.append(Entry(name: name, shape: x.shape, distance: sum.squareRoot()))
        }
        return ModelDiff(from: aReference, to: bReference, entries: entries, total: squares.squareRoot())
    }
}

extension ModelRegistry {
    /// The version and its ancestors, newest first, following `parent` within the model's name.
    /// The chain ends at a version the registry does not hold (listed with `model == nil`).
    public func lineage(of model: RegisteredModel) throws -> [LineageStep] {
        let versions = Dictionary(
            try models(matching: ModelQuery(name: model.name)).map { ($0.version, $0) },
            uniquingKeysWith: { first, _ in first })
        var steps = [LineageStep(version: model.version, model: model)]
        var seen: Set<ModelVersion> = [model.version]
        var next = model.parent
        while let version = next, seen.insert(version).inserted {
            let found = versions[version]
            steps.append(LineageStep(version: version, model: found))
            next = found?.parent
        }
        return steps
    }

    /// The model card of a version, with its stage history.
    public func card(of model: RegisteredModel) throws -> ModelCard {
        ModelCard(model, history: try transitions(of: model.reference))
    }

    /// Writes `NAME-VERSION.safetensors` (its bytes checked against the digest) and
    /// `NAME-VERSION.model-card.json` into `directory`, creating it if needed.
    public func export(_ reference: ModelReference, to directory: URL) throws -> ModelExport {
        let model = try self.model(reference)
        let bytes = try artifact(of: model)
        let card = try card(of: model)
        let stem = Self.fileStem(model)
        let modelURL = directory.appendingPathComponent("\(stem).safetensors")
        let cardURL = directory.appendingPathComponent("\(stem).model-card.json")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try DurableFile.write(bytes, to: modelURL)
            try DurableFile.write(try ModelCard.encoder().encode(card) + Data("\n".utf8), to: cardURL)
        } catch {
            throw StateError(.io, "cannot export \(model.reference) to \(directory.path)", cause: error)
        }
        return ModelExport(model: modelURL, card: cardURL)
    }

    /// The per-tensor L2 distance from version `a` to version `b`.
    public func diff(_ a: ModelReference, _ b: ModelReference) throws -> ModelDiff {
        let first = try self.model(a)
        let second = try self.model(b)
        return try ModelDiff.compute(
            from: try decodedArtifact(of: first), first.reference, to: try decodedArtifact(of: second),
            second.reference)
    }

    func decodedArtifact(of model: RegisteredModel) throws -> SafetensorsFile {
        let bytes = try artifact(of: model)
        do {
            return try Safetensors.decode(bytes)
        } catch {
            throw RegistryError(
                .corruptArtifact, "\(model.reference): the artifact is not a safetensors file: \(error)")
        }
    }

    /// `NAME-VERSION`, with any character a file name should not hold replaced by `_`.
    static func fileStem(_ model: RegisteredModel) -> String {
        let safe = model.name.map { character -> Character in
            character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
                ? character : "_"
        }
        return "\(String(safe))-\(model.version)"
    }
}
