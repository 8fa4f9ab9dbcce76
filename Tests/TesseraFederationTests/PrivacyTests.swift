import Foundation
import TesseraPrivacy
import TesseraSimulation
import Testing

@testable import TesseraFederation

/// A small private experiment: 12 sites of Synthetic-IID, logistic regression.
private func privateExperiment(
    _ privacy: String, secure: Bool = false, rounds: Int = 6, sitePolicy: String? = nil, fraction: Double = 0.5,
    participants: Int = 12
) throws -> ExperimentConfig {
    var yaml = """
        name: dp-check
        seed: 11
        rounds: \(rounds)
        participants: \(participants)
        model: {preset: logistic_regression}
        dataset: {kind: synthetic_iid, max_samples_per_participant: 120, test_fraction: 0.2, standardise: true}
        partitioning: {scheme: natural}
        cohort: {fraction: \(fraction), minimum: 3}
        strategy: {name: fedavg}
        local_training: {epochs: 1, batch_size: 20, optimizer: sgd, learning_rate: 0.1}
        secure_aggregation: {enabled: \(secure), active_adversary: false, threshold_fraction: 0.8}
        evaluation: {every: 100}
        privacy: \(privacy)

        """
    if let sitePolicy {
        yaml += "site_policy: \(sitePolicy)\n"
    } else if secure {
        yaml += "site_policy: {require_active_adversary_protection: false}\n"
    } else {
        yaml += "site_policy: {require_secure_aggregation: false, share_metrics: per_site}\n"
    }
    return try ExperimentConfig.parse(yaml: yaml, source: "dp-check.yaml")
}

private func run(_ config: ExperimentConfig) throws -> (ExperimentRunner.Report, [String]) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dp-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: output) }
    var lines: [String] = []
    let report = try ExperimentRunner.run(config, outputRoot: output) { lines.append($0) }
    return (report, lines)
}

private func configError(_ yaml: String) -> ConfigError? {
    do {
        _ = try ExperimentConfig.parse(yaml: yaml, source: "dp.yaml")
        return nil
    } catch {
        return error
    }
}

@Suite("Differential privacy: the privacy section")
struct PrivacyConfigTests {
    @Test("a privacy section decodes, resolves its noise from the budget, and round-trips")
    func decodesAndCalibrates() throws {
        let config = try privateExperiment("{mode: central, target_epsilon: 3, delta: 1e-5}", rounds: 20)
        let budget = try #require(try config.privacyBudget())
        #expect(budget.samplingRate == 0.5)
        #expect(budget.noiseMultiplier > 0.5 && budget.noiseMultiplier < 20)
        // Calibrated for the whole run: every round fits, and the plan spends at most the target.
        #expect(budget.affordableRounds == 20)
        #expect(budget.plannedEpsilon <= 3 * (1 + 1e-6))
        #expect(budget.plannedEpsilon > 2.9)
        let again = try ExperimentConfig.parse(yaml: config.canonicalJSON, source: "canonical.json")
        #expect(again == config && again.configHash == config.configHash)
    }

    @Test("distributed mode needs more noise than central for the same budget (a looser subsampling bound)")
    func distributedPlansMoreNoise() throws {
        let central = try #require(
            try privateExperiment("{mode: central, target_epsilon: 3}", secure: true, rounds: 20).privacyBudget())
        let distributed = try #require(
            try privateExperiment("{mode: distributed, target_epsilon: 3}", secure: true, rounds: 20).privacyBudget())
        #expect(distributed.noiseMultiplier >= central.noiseMultiplier)
        #expect(distributed.noiseMultiplier < central.noiseMultiplier * 1.5)
    }

    @Test("each bad privacy setting names its path")
    func badSettingsNameTheirPath() throws {
        let base = """
            participants: 10
            dataset: {kind: synthetic_iid}

            """
        let cases: [(String, String)] = [
            ("privacy: {target_epsilon: 1}", "privacy.mode"),
            ("privacy: {mode: central}", "privacy.noise_multiplier"),
            ("privacy: {mode: central, target_epsilon: -1}", "privacy.target_epsilon"),
            ("privacy: {mode: central, target_epsilon: 1, delta: 2}", "privacy.delta"),
            ("privacy: {mode: central, noise_multiplier: lots}", "privacy.noise_multiplier"),
            ("privacy: {mode: central, target_epsilon: 3, noise_multiplier: [1]}", "privacy.noise_multiplier"),
            ("privacy: {mode: central, noise_multiplier: 1, clip: {norm: 1, adaptive: {}}}", "privacy.clip.adaptive"),
            ("privacy: {mode: central, noise_multiplier: 1, clip: {}}", "privacy.clip.norm"),
            ("privacy: {mode: central, noise_multiplier: 1, clip: {norm: 0}}", "privacy.clip.norm"),
            ("privacy: {mode: central, noise_multiplier: 1, sampling: fixed}", "privacy.sampling"),
            (
                "privacy: {mode: central, noise_multiplier: 1, clip: {adaptive: {target_quantile: 1.5}}}",
                "privacy.clip.adaptive.target_quantile"
            ),
            (
                "privacy: {mode: central, noise_multiplier: 4, clip: {adaptive: {count_noise: 1}}}",
                "privacy.clip.adaptive.count_noise"
            ),
            (
                "secure_aggregation: {enabled: false}\nprivacy: {mode: distributed, noise_multiplier: 1}",
                "privacy.mode"
            ),
            (
                "strategy: {name: median}\nsecure_aggregation: {enabled: false}\nprivacy: {mode: central, noise_multiplier: 1}",
                "strategy.name"
            ),
            ("cohort: {over_selection: 1.3}\nprivacy: {mode: central, noise_multiplier: 1}", "cohort.over_selection"),
        ]
        for (yaml, path) in cases {
            let error = configError(base + yaml)
            #expect(error?.path == path, "\(yaml): \(String(describing: error))")
        }
    }
}

@Suite("Differential privacy: end to end")
struct PrivacyRunTests {
    @Test("a run stops before the round that would exceed its budget, and every round records its ε")
    func runStopsAtItsBudget() throws {
        // z = 1.5 at q = 0.5 spends ε ≈ 2.3, 3.1, 3.7, 4.6 after rounds 1 to 4: a budget of 4 holds three.
        let config = try privateExperiment(
            "{mode: central, noise_multiplier: 1.5, target_epsilon: 4, on_budget_exhausted: stop}", rounds: 10)
        let budget = try #require(try config.privacyBudget())
        #expect(budget.affordableRounds == 3)
        let (report, lines) = try run(config)
        // A round whose Poisson sample fell below the cohort minimum fails uncharged: it sent nothing.
        let charged = report.records.filter { $0.privacy != nil }
        #expect(charged.count == budget.affordableRounds)
        #expect(report.records.allSatisfy { $0.privacy != nil || $0.failureReason?.contains("Poisson sample") == true })
        let spent = charged.compactMap { $0.privacy?.epsilon }
        #expect(spent == spent.sorted() && spent.allSatisfy { $0 <= 4 })
        #expect(lines.contains { $0.contains("privacy budget") && $0.contains("stops") })
        // The results carry ε per round.
        let csv = ResultsWriter.csv(
            ExperimentResults(
                experiment: config.name, configHash: config.configHash, seed: config.seed, startedAt: "now",
                rounds: report.records))
        #expect(csv.split(separator: "\n").first?.contains("epsilon") == true)
    }

    @Test("on_budget_exhausted: fail records the refused round as failed and ends the run")
    func runFailsAtItsBudget() throws {
        let config = try privateExperiment(
            "{mode: central, noise_multiplier: 1.5, target_epsilon: 4, on_budget_exhausted: fail}", rounds: 10)
        let (report, _) = try run(config)
        let last = try #require(report.records.last)
        #expect(last.status == .failed)
        #expect(last.failureReason?.contains("privacy budget") == true)
        #expect(report.records.filter { $0.privacy != nil }.count == 3)
        #expect(last.privacy == nil)
    }

    @Test("a site refuses the round that would take its own ledger past max_epsilon")
    func siteRefusesPastItsOwnBudget() throws {
        // The experiment has no budget; each site allows itself ε = 2 by its own ledger, which
        // charges every round it joins without amplification: one round of z = 2 is about 1.3.
        let config = try privateExperiment(
            "{mode: central, noise_multiplier: 2.0}", rounds: 6,
            sitePolicy:
                "{require_secure_aggregation: false, share_metrics: per_site, max_epsilon: 2, trust_central_noise: true}"
        )
        let prepared = try ExperimentRunner.prepare(config) { _ in }
        let federation = InMemoryFederation(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: prepared.strategy,
            participants: prepared.agents, log: { _ in })
        let outcome = federation.run()
        let refusals = outcome.transcript.compactMap { entry -> String? in
            if case .failed(_, let reason) = entry.message, reason.contains("max_epsilon") { return reason }
            return nil
        }
        #expect(!refusals.isEmpty)
        // No site's own ledger went past its cap.
        for agent in prepared.agents {
            let account = agent.privacyLedger.accountant(for: config.name)
            #expect(account.steps <= 1)
            if account.steps > 0 { #expect(account.epsilon(delta: 1e-5) <= 2) }
        }
    }

    @Test("a site that requires differential privacy refuses central noise it cannot check")
    func siteRefusesUntrustedCentralNoise() throws {
        let config = try privateExperiment(
            "{mode: central, noise_multiplier: 2.0}", rounds: 1,
            sitePolicy:
                "{require_secure_aggregation: false, share_metrics: per_site, require_differential_privacy: true}")
        let prepared = try ExperimentRunner.prepare(config) { _ in }
        let outcome = InMemoryFederation(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: prepared.strategy,
            participants: prepared.agents, log: { _ in }
        ).run()
        #expect(outcome.completedRounds == 0)
        let reasons = outcome.transcript.compactMap { entry -> String? in
            if case .failed(_, let reason) = entry.message { return reason }
            return nil
        }
        #expect(!reasons.isEmpty && reasons.allSatisfy { $0.contains("trust_central_noise") })
    }

    @Test("distributed DP runs inside secure aggregation: the sum carries the noise and the model still learns")
    func distributedRunLearns() throws {
        let config = try privateExperiment(
            "{mode: distributed, noise_multiplier: 0.3, clip: {norm: 1}}", secure: true, rounds: 12, fraction: 0.8,
            participants: 40)
        let (report, _) = try run(config)
        #expect(report.completedRounds == 12)
        // No plaintext update and no training metric left a site.
        let clear = report.outcome!.transcript.contains {
            switch $0.message {
            case .update: true
            case .trained(_, let training): training.loss != nil || training.accuracy != nil
            default: false
            }
        }
        #expect(!clear)
        let last = try #require(report.records.last)
        // Ten classes: chance is 0.1; without privacy this run reaches about 0.5.
        #expect((last.evalAccuracy ?? 0) > 0.3, "accuracy \(last.evalAccuracy ?? 0)")
        #expect(last.privacy?.mechanism != nil)
        if case .skellam = last.privacy!.mechanism {} else { Issue.record("distributed rounds charge Skellam noise") }
    }

    @Test("adaptive clipping moves the clip norm from its initial value towards the update norms")
    func adaptiveClippingMoves() throws {
        let config = try privateExperiment(
            "{mode: central, noise_multiplier: 0.5, clip: {adaptive: {initial: 0.001, target_quantile: 0.5, learning_rate: 0.5, count_noise: 0.5}}}",
            rounds: 5, fraction: 1)
        let (report, _) = try run(config)
        let norms = report.records.compactMap { $0.privacy?.clipNorm }
        #expect(norms.count == 5)
        // Every site's update is far above 0.001, so the norm grows geometrically.
        #expect(norms.last! > norms.first! * 2)
    }

    @Test("a restarted coordinator recomposes its accountant from the round records")
    func resumeRecomposes() throws {
        let config = try privateExperiment("{mode: central, noise_multiplier: 1.5}", rounds: 4)
        let (report, _) = try run(config)
        let prepared = try ExperimentRunner.prepare(config) { _ in }
        let resumed = CoordinatorStateMachine(
            plan: prepared.plan, model: prepared.initialModel, strategy: prepared.strategy,
            resume: .init(records: Array(report.records.prefix(3)), nextAttempt: 0))
        let expected = try #require(report.records[2].privacy?.epsilon)
        #expect(abs(resumed.privacyAccountant.epsilon(delta: 1e-5) - expected) < 1e-9)
    }
}

@Suite("Differential privacy: the site's ledger")
struct PrivacyLedgerTests {
    @Test("the ledger file survives a restart and an unreadable one stops the site")
    func ledgerPersists() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("privacy-ledger.json")
        let ledger = try PrivacyLedger(store: FilePrivacyLedgerStore(url: url))
        try ledger.charge(.gaussian(noiseMultiplier: 2), to: "study")
        try ledger.charge(.gaussian(noiseMultiplier: 2), to: "study")
        let reopened = try PrivacyLedger(store: FilePrivacyLedgerStore(url: url))
        #expect(reopened.accountant(for: "study").steps == 2)
        #expect(reopened.accountant(for: "study") == ledger.accountant(for: "study"))
        #expect(reopened.accountant(for: "other").steps == 0)

        try Data("{not json".utf8).write(to: url)
        #expect(throws: PrivacyLedgerError.self) { try PrivacyLedger(store: FilePrivacyLedgerStore(url: url)) }
    }

    @Test("the policy refuses malformed distributed parameters before charging anything")
    func malformedDistributedParameters() throws {
        let policy = SitePolicy()
        let privacy = RoundPrivacy(
            mode: .distributed, clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, samplingRate: 0.1, distributed: nil)
        #expect(throws: SitePolicyViolation.self) {
            try policy.checkPrivacy(privacy, secure: nil, parameterCount: 10, round: 1)
        }
        #expect(throws: SitePolicyViolation.self) {
            try SitePolicy(requireDifferentialPrivacy: true).checkPrivacy(
                nil, secure: nil, parameterCount: 10, round: 1)
        }
    }
}
