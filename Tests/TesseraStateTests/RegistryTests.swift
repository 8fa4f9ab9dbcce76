import Foundation
import TesseraFederation
import TesseraState
import TesseraTensor
import Testing

@Suite("The model registry in the state folder: queries, promotion, audit trail, artifacts")
struct RegistryTests {
    /// `trial` publishes 1.0.1…1.0.3 (accuracy 0.8, 0.9, 0.95; loss 0.5, 0.3, 0.2), then
    /// `other` publishes other@1.0.1 (accuracy 0.7), so the bare `1.0.1` is ambiguous.
    static func populated() throws -> (StateFixture, trial: ExperimentRecord, other: ExperimentRecord) {
        let fixture = try StateFixture()
        let trial = try fixture.runExperiment(
            "trial",
            metrics: [
                ["accuracy": 0.8, "loss": 0.5], ["accuracy": 0.9, "loss": 0.3], ["accuracy": 0.95, "loss": 0.2],
            ])
        let other = try fixture.runExperiment("other", metrics: [["accuracy": 0.7, "loss": 0.6]])
        return (fixture, trial, other)
    }

    static func references(_ models: [RegisteredModel]) -> [String] { models.map(\.reference.description) }

    static func query(_ state: CoordinatorState, _ query: ModelQuery) throws -> [String] {
        references(try state.models(matching: query))
    }

    @Test("List newest first, filtered by name, experiment, stage and metric conditions")
    func listAndFilter() throws {
        let (fixture, trial, other) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let all = try Self.query(state, ModelQuery())
        #expect(all == ["other@1.0.1", "trial@1.0.3", "trial@1.0.2", "trial@1.0.1"])
        let byName = try Self.query(state, ModelQuery(name: "trial"))
        #expect(byName == ["trial@1.0.3", "trial@1.0.2", "trial@1.0.1"])
        let byExperiment = try Self.query(state, ModelQuery(experiment: other.id))
        #expect(byExperiment == ["other@1.0.1"])
        let accurate = try Self.query(state, ModelQuery(conditions: [try MetricCondition(parsing: "accuracy>=0.9")]))
        #expect(accurate == ["trial@1.0.3", "trial@1.0.2"])
        let both = try Self.query(
            state,
            ModelQuery(conditions: [
                try MetricCondition(parsing: "accuracy >= 0.9"), try MetricCondition(parsing: "loss<0.25"),
            ]))
        #expect(both == ["trial@1.0.3"])
        let firstRounds = try Self.query(state, ModelQuery(conditions: [try MetricCondition(parsing: "round=1")]))
        #expect(firstRounds == ["other@1.0.1", "trial@1.0.1"])
        let missingMetric = try Self.query(state, ModelQuery(conditions: [try MetricCondition(parsing: "auc>0")]))
        #expect(missingMetric.isEmpty)
        let limited = try Self.query(state, ModelQuery(name: "trial", limit: 1))
        #expect(limited == ["trial@1.0.3"])

        let noProduction = try Self.query(state, ModelQuery(stage: .production))
        #expect(noProduction.isEmpty)
        try state.promote(
            ModelReference(name: "trial", version: fixture.version(trial, 2)), to: .production, by: "local:alice",
            reason: nil)
        let production = try Self.query(state, ModelQuery(stage: .production))
        #expect(production == ["trial@1.0.2"])
        let candidates = try Self.query(state, ModelQuery(name: "trial", stage: .candidate))
        #expect(candidates == ["trial@1.0.3", "trial@1.0.1"])
    }

    @Test("candidate → staging → production; production archives the previous holder of the same name only")
    func promotionRules() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        try state.promote(try ModelReference(parsing: "other@1.0.1"), to: .production, by: "local:bob", reason: nil)
        try state.promote(try ModelReference(parsing: "trial@1.0.2"), to: .production, by: "local:alice", reason: nil)

        let staged = try state.promote(
            try ModelReference(parsing: "trial@1.0.3"), to: .staging, by: "local:alice", reason: "canary")
        #expect(staged.map(\.to) == [.staging])
        let moves = try state.promote(
            try ModelReference(parsing: "trial@1.0.3"), to: .production, by: "local:alice", reason: "better accuracy")
        let moved = moves.map { "\($0.model) \($0.from)→\($0.to)" }
        #expect(moved == ["trial@1.0.2 production→archived", "trial@1.0.3 staging→production"])

        let stages = Dictionary(
            uniqueKeysWithValues: try state.models(matching: ModelQuery()).map { ($0.reference.description, $0.stage) })
        #expect(stages["trial@1.0.3"] == .production)
        #expect(stages["trial@1.0.2"] == .archived)
        #expect(stages["trial@1.0.1"] == .candidate)
        // Another model's production version is not touched.
        #expect(stages["other@1.0.1"] == .production)
    }

    @Test("Invalid transitions are refused with the allowed moves; an archived version is final")
    func invalidTransitions() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let reference = try ModelReference(parsing: "trial@1.0.1")
        try state.promote(reference, to: .staging, by: "local:alice", reason: nil)

        let back = #expect(throws: RegistryError.self) {
            try state.promote(reference, to: .candidate, by: "local:alice", reason: nil)
        }
        #expect(back?.code == .invalidTransition)
        #expect(back?.message == "trial@1.0.1 cannot move from staging to candidate: allowed are production, archived")

        let same = #expect(throws: RegistryError.self) {
            try state.promote(reference, to: .staging, by: "local:alice", reason: nil)
        }
        #expect(same?.message == "trial@1.0.1 is already in staging")

        try state.promote(reference, to: .archived, by: "local:alice", reason: "superseded")
        let final = #expect(throws: RegistryError.self) {
            try state.promote(reference, to: .production, by: "local:alice", reason: nil)
        }
        #expect(final?.code == .invalidTransition)
        #expect(final?.message == "trial@1.0.1 cannot move from archived to production: archived is final")
        // The refused moves left no trace in the audit trail.
        let trail = try state.transitions(of: reference).map(\.to)
        #expect(trail == [.staging, .archived])
    }

    @Test("A bare version names one model or is refused as ambiguous, naming the candidates")
    func bareVersions() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let unique = try state.model(try ModelReference(parsing: "1.0.3"))
        #expect(unique.reference.description == "trial@1.0.3")

        let ambiguous = #expect(throws: RegistryError.self) {
            try state.promote(try ModelReference(parsing: "1.0.1"), to: .staging, by: "local:alice", reason: nil)
        }
        #expect(ambiguous?.code == .ambiguous)
        #expect(ambiguous?.message == "1.0.1 names 2 models: other@1.0.1, trial@1.0.1; use NAME@VERSION")

        let unknown = #expect(throws: RegistryError.self) {
            try state.model(try ModelReference(parsing: "trial@9.9.9"))
        }
        #expect(unknown?.code == .notFound)
        #expect(unknown?.message.contains("no model version trial@9.9.9") == true)
    }

    @Test("The audit trail records who, when and why, including the archiving a promotion caused")
    func auditTrail() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let old = try ModelReference(parsing: "trial@1.0.2")
        let new = try ModelReference(parsing: "trial@1.0.3")
        fixture.clock.advance(100)
        let first = fixture.clock.now
        try state.promote(old, to: .production, by: "local:alice", reason: "first good model")
        fixture.clock.advance(3600)
        let second = fixture.clock.now
        try state.promote(new, to: .production, by: "ops@hospital", reason: nil)

        let oldTrail = try state.transitions(of: old)
        #expect(oldTrail.count == 2)
        #expect(oldTrail.first?.actor == "local:alice")
        #expect(oldTrail.first?.at == first)
        #expect(oldTrail.first?.reason == "first good model")
        #expect(oldTrail.last?.to == .archived)
        #expect(oldTrail.last?.actor == "ops@hospital")
        #expect(oldTrail.last?.at == second)
        #expect(oldTrail.last?.reason == "replaced in production by 1.0.3")
        let newTrail = try state.transitions(of: new)
        #expect(newTrail.map(\.from) == [.candidate])
        #expect(newTrail.first?.reason == nil)

        // The trail survives reopening the folder.
        let reopened = try CoordinatorState(directory: fixture.folder)
        let reread = try reopened.transitions(of: old)
        #expect(reread == oldTrail)
    }

    @Test("Artifacts are checked against their digest: a changed blob file is a corruptArtifact")
    func artifactDigest() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let model = try state.model(try ModelReference(parsing: "trial@1.0.2"))
        let bytes = try state.artifact(of: model)
        #expect(bytes == StateFixture.modelBytes(2))
        #expect(BlobStore.digest(of: bytes) == model.digest)

        var flipped = bytes
        flipped[flipped.count - 1] ^= 0x01
        try Data(flipped).write(to: state.blobs.url(of: model.digest))
        let corrupt = #expect(throws: RegistryError.self) { try state.artifact(of: model) }
        #expect(corrupt?.code == .corruptArtifact)
        #expect(corrupt?.message.hasPrefix("trial@1.0.2: the blob ") == true)
        #expect(corrupt?.message.contains("does not hash to its name") == true)

        let exportFolder = fixture.folder.appendingPathComponent("export")
        #expect(throws: RegistryError.self) {
            try state.export(try ModelReference(parsing: "trial@1.0.2"), to: exportFolder)
        }
        let written = (try? FileManager.default.contentsOfDirectory(atPath: exportFolder.path)) ?? []
        #expect(written.isEmpty)

        try FileManager.default.removeItem(at: state.blobs.url(of: model.digest))
        let missing = #expect(throws: StateError.self) { try state.artifact(of: model) }
        #expect(missing?.code == .notFound)
    }

    @Test("Lineage follows parents within the name and ends at the unregistered seed")
    func lineage() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let model = try fixture.state.model(try ModelReference(parsing: "trial@1.0.3"))
        let steps = try fixture.state.lineage(of: model)
        let versions = steps.map(\.version.description)
        #expect(versions == ["1.0.3", "1.0.2", "1.0.1", "1.0.0"])
        let registered = steps.map { $0.model != nil }
        #expect(registered == [true, true, true, false])
    }

    @Test("Export writes the checked safetensors file and a model card with lineage and stage history")
    func export() throws {
        let (fixture, trial, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let reference = try ModelReference(parsing: "trial@1.0.3")
        try state.promote(reference, to: .staging, by: "local:alice", reason: "canary")
        let out = fixture.folder.appendingPathComponent("export")
        let written = try state.export(reference, to: out)
        #expect(written.model.lastPathComponent == "trial-1.0.3.safetensors")
        #expect(written.card.lastPathComponent == "trial-1.0.3.model-card.json")

        let model = try state.model(reference)
        let bytes = [UInt8](try Data(contentsOf: written.model))
        #expect(BlobStore.digest(of: bytes) == model.digest)
        let decoded = try Safetensors.decode(bytes)
        #expect(decoded.tensors["w"]?.scalars == [3, 3, 3, 3])

        let text = try String(contentsOf: written.card, encoding: .utf8)
        #expect(text.contains("\"config_hash\" : \"hash-trial\""))
        let card = try ModelCard.decoder().decode(ModelCard.self, from: Data(text.utf8))
        #expect(card.name == "trial")
        #expect(card.version == "1.0.3")
        #expect(card.digest == model.digest)
        #expect(card.parent == "trial@1.0.2")
        #expect(card.experiment == trial.id)
        #expect(card.round == 3)
        #expect(card.cohortSize == 3)
        #expect(card.contributors == 2)
        #expect(card.metrics == ["accuracy": 0.95, "loss": 0.2])
        #expect(card.architecture == "logistic 4→2")
        #expect(card.createdAt == model.createdAt)
        #expect(card.stage == .staging)
        #expect(card.stageHistory?.map(\.actor) == ["local:alice"])
        #expect(card.stageHistory?.first?.reason == "canary")
    }

    @Test("Diff gives the per-tensor L2 distance and the total, and refuses different architectures")
    func diff() throws {
        let (fixture, _, _) = try Self.populated()
        defer { fixture.remove() }
        let state = fixture.state
        let diff = try state.diff(
            try ModelReference(parsing: "trial@1.0.1"), try ModelReference(parsing: "trial@1.0.3"))
        // w: four elements 1 → 3 (‖·‖ = 4); b: [0, 1] → [0, 3] (‖·‖ = 2); total √20.
        let entries = diff.entries.map { "\($0.name) \($0.shape) \($0.distance)" }
        #expect(entries == ["b [2] 2.0", "w [2, 2] 4.0"])
        #expect(abs(diff.total - 20.0.squareRoot()) < 1e-12)
        let same = try state.diff(try ModelReference(parsing: "trial@1.0.2"), try ModelReference(parsing: "1.0.2"))
        #expect(same.total == 0)

        try fixture.runExperiment("wide", metrics: [[:]], wide: true)
        let shapes = #expect(throws: RegistryError.self) {
            try state.diff(try ModelReference(parsing: "trial@1.0.1"), try ModelReference(parsing: "wide@1.0.1"))
        }
        #expect(shapes?.code == .incompatibleModels)
        #expect(shapes?.message == "tensor 'w' has shape [2, 2] in trial@1.0.1 but [2, 3] in wide@1.0.1")
    }

    @Test("Diff refuses versions whose tensor names differ, naming the tensors each lacks")
    func diffNames() throws {
        let a = try Safetensors.decode(
            try Safetensors.encode([(name: "w", tensor: Tensor([1])), (name: "b", tensor: Tensor([1]))]))
        let b = try Safetensors.decode(
            try Safetensors.encode([(name: "w", tensor: Tensor([1])), (name: "bias", tensor: Tensor([1]))]))
        let x = try ModelReference(parsing: "m@1.0.1")
        let y = try ModelReference(parsing: "m@2.0.1")
        let error = #expect(throws: RegistryError.self) { try ModelDiff.compute(from: a, x, to: b, y) }
        #expect(
            error?.message == "m@1.0.1 and m@2.0.1 have different tensors; only m@1.0.1 has b; only m@2.0.1 has bias")
    }
}
