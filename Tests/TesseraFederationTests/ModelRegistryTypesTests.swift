import Foundation
import TesseraFederation
import Testing

@Suite("Model registry types: references, stages, --where conditions")
struct ModelRegistryTypesTests {
    static func model(round: Int = 3, metrics: [String: Double] = ["accuracy": 0.92, "loss": 0.2]) -> RegisteredModel {
        RegisteredModel(
            name: "trial", version: ModelVersion(major: 1, minor: 0, patch: round), digest: "00", parent: nil,
            experiment: 1, run: 1, round: round, cohortSize: 4, contributors: 3, metrics: metrics, configHash: "h",
            architecture: "a", createdAt: Date(timeIntervalSince1970: 0))
    }

    @Test(
        "Conditions parse with or without spaces and compare as written",
        arguments: [
            ("accuracy>=0.9", true), ("accuracy >= 0.95", false), ("loss<0.3", true), ("loss<=0.2", true),
            ("loss>0.2", false), ("round=3", true), ("round==3", true), ("round!=3", false), ("cohort_size>=4", true),
            ("contributors<3", false), ("patch=3", true), ("auc>0", false),
        ])
    func conditions(text: String, holds: Bool) throws {
        let condition = try MetricCondition(parsing: text)
        #expect(condition.holds(for: Self.model()) == holds)
    }

    @Test("Two-character operators are not read as one")
    func operators() throws {
        let greaterOrEqual = try MetricCondition(parsing: "accuracy>=0.9")
        #expect(greaterOrEqual.comparison == .greaterOrEqual)
        #expect(greaterOrEqual.metric == "accuracy")
        #expect(greaterOrEqual.value == 0.9)
        let lessOrEqual = try MetricCondition(parsing: "loss <= 1e-3")
        #expect(lessOrEqual.comparison == .lessOrEqual)
        #expect(lessOrEqual.value == 0.001)
    }

    @Test(
        "A condition that does not parse says what is wrong",
        arguments: [
            ("accuracy", "'accuracy' has no comparison: use METRIC OP NUMBER with OP one of >= <= > < = !="),
            (">=0.9", "'>=0.9': name a metric before '>='"),
            ("acc uracy>=0.9", "'acc uracy>=0.9': name a metric before '>='"),
            ("accuracy>=high", "'accuracy>=high': 'high' is not a number"),
            ("accuracy>=", "'accuracy>=': '' is not a number"),
            ("accuracy>=nan", "'accuracy>=nan': 'nan' is not a number"),
        ])
    func badConditions(text: String, message: String) {
        let error = #expect(throws: RegistryError.self) { try MetricCondition(parsing: text) }
        #expect(error?.code == .invalidQuery)
        #expect(error?.message == message)
    }

    @Test("A query matches on every field it sets")
    func query() {
        let model = Self.model()
        #expect(ModelQuery().matches(model))
        #expect(ModelQuery(name: "trial", experiment: 1, stage: .candidate).matches(model))
        #expect(!ModelQuery(name: "other").matches(model))
        #expect(!ModelQuery(experiment: 2).matches(model))
        #expect(!ModelQuery(stage: .production).matches(model))
        let failing = ModelQuery(conditions: [MetricCondition(metric: "accuracy", comparison: .greater, value: 0.95)])
        #expect(!failing.matches(model))
    }

    @Test("References: NAME@MAJOR.MINOR.PATCH or a bare version; anything else is refused clearly")
    func references() throws {
        let full = try ModelReference(parsing: "trial@1.0.12")
        #expect(full.name == "trial")
        #expect(full.version == ModelVersion(major: 1, minor: 0, patch: 12))
        #expect(full.description == "trial@1.0.12")
        let bare = try ModelReference(parsing: "2.1.0")
        #expect(bare.name == nil)
        #expect(bare.description == "2.1.0")

        let cases = [
            ("trial@1.0", "'1.0' is not a version: use MAJOR.MINOR.PATCH, for example 1.0.12"),
            ("trial@1.0.-1", "'1.0.-1' is not a version: use MAJOR.MINOR.PATCH, for example 1.0.12"),
            ("@1.0.1", "'@1.0.1' has an empty model name before '@'"),
            ("a@b@1.0.1", "'a@b@1.0.1' is not a model reference: use NAME@MAJOR.MINOR.PATCH"),
            ("trial", "'trial' is not a version: use MAJOR.MINOR.PATCH, for example 1.0.12"),
        ]
        for (text, message) in cases {
            let error = #expect(throws: RegistryError.self) { try ModelReference(parsing: text) }
            #expect(error?.code == .invalidReference)
            #expect(error?.message == message)
        }
    }

    @Test("Stages move forward only: candidate → staging → production → archived; archived is final")
    func stageLifeCycle() throws {
        let allowed = Dictionary(
            uniqueKeysWithValues: ModelStage.allCases.map { stage in
                (stage, ModelStage.allCases.filter { stage.canMove(to: $0) })
            })
        #expect(allowed[.candidate] == [.staging, .production, .archived])
        #expect(allowed[.staging] == [.production, .archived])
        #expect(allowed[.production] == [.staging, .archived])
        #expect(allowed[.archived] == [])

        #expect(try ModelStage(parsing: "Production") == .production)
        let error = #expect(throws: RegistryError.self) { try ModelStage(parsing: "live") }
        #expect(error?.message == "'live' is not a stage: use one of candidate, staging, production, archived")
    }
}
