import Testing

@testable import TesseraFederation

@Suite struct UpdateLimitsConfigTests {
    @Test func defaultsBoundPlaintextUpdatesLikeSecureAggregation() throws {
        let config = try ExperimentConfig.parse(yaml: "secure_aggregation: {clip: 2}", source: "t.yaml")
        #expect(config.updateLimits == UpdateLimitsConfig(maxWeight: 10_000, maxUpdateNorm: .automatic))
        #expect(config.evaluation.quorum == 0.5)
        let plan = config.federationPlan(
            datasetName: "d", architecture: .logisticRegression(inputs: 3, classes: 2))
        // 8 parameters at ±2 each: an L2 norm of 2·√8.
        #expect(plan.updateLimits.maxUpdateNorm == 2 * 8.0.squareRoot())
        #expect(plan.updateLimits.maxWeight == 10_000)
        #expect(plan.evaluationQuorum == 0.5)
    }

    @Test func explicitValuesAndNone() throws {
        let given = try ExperimentConfig.parse(
            yaml: "update_limits: {max_weight: 50, max_update_norm: 3.5}\nevaluation: {quorum: 1}", source: "t.yaml")
        #expect(given.updateLimits == UpdateLimitsConfig(maxWeight: 50, maxUpdateNorm: .limit(3.5)))
        #expect(given.evaluation.quorum == 1)
        let none = try ExperimentConfig.parse(yaml: "update_limits: {max_update_norm: none}", source: "t.yaml")
        let plan = none.federationPlan(datasetName: "d", architecture: .logisticRegression(inputs: 3, classes: 2))
        #expect(plan.updateLimits.maxUpdateNorm == nil)
        // The canonical form decodes back to the same file.
        let again = try ExperimentConfig.parse(yaml: given.canonicalJSON, source: "again.json")
        #expect(again.updateLimits == given.updateLimits)
    }

    @Test(arguments: [
        ("update_limits: {max_update_norm: big}", "update_limits.max_update_norm"),
        ("update_limits: {max_update_norm: -1}", "update_limits.max_update_norm"),
        ("update_limits: {max_weight: 0}", "update_limits.max_weight"),
        ("update_limits: {max_norm: 1}", "update_limits.max_norm"),
        ("evaluation: {quorum: 0}", "evaluation.quorum"),
    ])
    func badValuesNameTheirPath(yaml: String, path: String) {
        let error = #expect(throws: ConfigError.self) { try ExperimentConfig.parse(yaml: yaml, source: "t.yaml") }
        #expect(error?.description.contains(path) == true, "\(String(describing: error))")
    }
}
