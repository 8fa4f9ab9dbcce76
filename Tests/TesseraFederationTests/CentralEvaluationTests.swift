import Foundation
import Synchronization
import TesseraData
import TesseraSimulation
import TesseraTensor
import Testing

@testable import TesseraFederation

/// Parses `yaml` and returns the `ConfigError` it must throw.
private func parseError(_ yaml: String) -> ConfigError? {
    do {
        _ = try ExperimentConfig.parse(yaml: yaml, source: "central.yaml")
        return nil
    } catch {
        return error
    }
}

/// A folder of small CSV files, removed by the caller.
private func csvFolder(_ files: [String: String]) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-central-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for (name, text) in files {
        try Data(text.utf8).write(to: folder.appendingPathComponent(name))
    }
    return folder
}

/// A two-feature, two-class experiment whose central test set is `dataset` (YAML flow mapping).
private func experiment(central dataset: String, base: URL?) throws -> ExperimentConfig {
    let yaml = """
        name: central
        rounds: 1
        participants: 3
        model: {preset: logistic_regression, inputs: 2, classes: 2}
        dataset: {kind: synthetic_iid, dimension: 2, classes: 2}
        evaluation: {dataset: \(dataset)}
        secure_aggregation: {enabled: false}
        """
    return try ExperimentConfig.parse(yaml: yaml, source: "central.yaml", baseDirectory: base?.path)
}

private func centralError(_ dataset: String, files: [String: String] = [:]) throws -> ConfigError? {
    let folder = try csvFolder(files)
    defer { try? FileManager.default.removeItem(at: folder) }
    let config = try experiment(central: dataset, base: folder)
    do {
        _ = try config.makeCentralEvaluator(architecture: .logisticRegression(inputs: 2, classes: 2))
        return nil
    } catch {
        return error
    }
}

@Suite("Central evaluation: the evaluation.dataset section")
struct CentralEvaluationConfigTests {
    @Test("an evaluation.dataset decodes in the dataset: style and keeps the config hash of files without one")
    func decodes() throws {
        let config = try ExperimentConfig.parse(
            yaml: """
                dataset: {kind: synthetic_iid, dimension: 5, classes: 3}
                evaluation: {every: 2, dataset: {kind: synthetic_iid, dimension: 5, classes: 3, seed: 99}}
                """, source: "t.yaml")
        let central = try #require(config.evaluation.dataset)
        #expect(central.kind == .syntheticIID && central.seed == 99 && central.dimension == 5)
        #expect(config.centralEvaluationSeed == 99)
        // The canonical form decodes back to the same configuration.
        let again = try ExperimentConfig.parse(yaml: config.canonicalJSON, source: "canonical.json")
        #expect(again == config && again.configHash == config.configHash)
        #expect(config.canonicalJSON.contains("\"seed\":99"))

        // A file without one encodes its evaluation section as before.
        let plain = try ExperimentConfig.parse(yaml: "evaluation: {every: 2}", source: "t.yaml")
        #expect(plain.evaluation.dataset == nil)
        #expect(plain.canonicalJSON.contains("\"evaluation\":{\"every\":2,\"fraction\":1,\"quorum\":0.5}"))
    }

    @Test("each bad evaluation.dataset value names its path")
    func badValuesNameTheirPath() throws {
        let cases: [(yaml: String, path: String, code: ConfigError.Code, says: String)] = [
            (
                "evaluation: {dataset: {kind: csv, paths: [\"\"], label_column: y}}",
                "evaluation.dataset.paths[0]", .invalidValue, "empty path"
            ),
            (
                "evaluation: {dataset: {kind: csv, paths: [t.csv]}}", "evaluation.dataset.label_column", .missingValue,
                "required"
            ),
            (
                "evaluation: {dataset: {kind: npy, labels: y.npy}}", "evaluation.dataset.features", .missingValue,
                "required"
            ),
            (
                "evaluation: {dataset: {kind: csv, paths: [t.csv], label_column: y, test_fraction: 0.2}}",
                "evaluation.dataset.test_fraction", .unknownKey, "every row of it is held out"
            ),
            (
                "evaluation: {dataset: {kind: csv, paths: [t.csv], label_column: y, seed: 3}}",
                "evaluation.dataset.seed", .unknownKey, "not used by dataset kind \"csv\""
            ),
            ("evaluation: {dataset: {kind: tsv}}", "evaluation.dataset.kind", .invalidValue, "is not one of"),
            ("evaluation: {dataset: {knd: csv}}", "evaluation.dataset.knd", .unknownKey, "did you mean \"kind\""),
            ("dataset: {kind: synthetic_iid, seed: 4}", "dataset.seed", .unknownKey, "unknown key"),
            (
                "dataset: {kind: clinical_risk, paths: [a.csv]}\nparticipants: 1\npartitioning: {scheme: natural}\n"
                    + "cohort: {minimum: 1}\nsecure_aggregation: {enabled: false}\n"
                    + "evaluation: {dataset: {kind: clinical_risk, paths: [b.csv], seed: 3}}",
                "evaluation.dataset.seed", .conflict, "come from the files"
            ),
            (
                "seed: 5\nevaluation: {dataset: {kind: synthetic_iid, seed: 5}}", "evaluation.dataset.seed", .conflict,
                "would draw the training rows again"
            ),
            (
                "dataset: {kind: synthetic_iid}\nevaluation: {dataset: {kind: synthetic_fedprox}}",
                "evaluation.dataset.kind", .conflict, "training data's own generator"
            ),
            (
                "dataset: {kind: synthetic_fedprox, alpha: 0.5}\nevaluation: {dataset: {kind: synthetic_fedprox}}",
                "evaluation.dataset.alpha", .conflict, "dataset.alpha is 0.5"
            ),
            (
                "dataset: {kind: synthetic_iid, dimension: 60}\nevaluation: {dataset: {kind: synthetic_iid, dimension: 30}}",
                "evaluation.dataset.dimension", .conflict, "training dataset has 60"
            ),
            (
                "model: {classes: 10}\ndataset: {kind: synthetic_iid}\nevaluation: {dataset: {kind: synthetic_iid, classes: 4}}",
                "evaluation.dataset.classes", .conflict, "model has 10 classes"
            ),
        ]
        for c in cases {
            let error = try #require(parseError(c.yaml), "no error for: \(c.yaml)")
            #expect(error.path == c.path, "\(c.yaml) → \(error)")
            #expect(error.code == c.code, "\(c.yaml) → \(error)")
            #expect(error.message.contains(c.says), "\(c.yaml) → \(error)")
        }
    }
}

@Suite("Central evaluation: loading the test set")
struct CentralEvaluationLoadingTests {
    @Test("a CSV test set pools its files, and evaluates a model to the figures Evaluation computes")
    func csvEvaluates() throws {
        let folder = try csvFolder([
            "a.csv": "x1,x2,y\n1,0,1\n2,1,1\n",
            "b.csv": "x1,x2,y\n-1,0,0\n-2,-1,0\n0.5,0.5,1\n",
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try experiment(central: "{kind: csv, paths: [a.csv, b.csv], label_column: y}", base: folder)
        let architecture = ModelArchitecture.logisticRegression(inputs: 2, classes: 2)
        let evaluator = try #require(try config.makeCentralEvaluator(architecture: architecture))
        #expect(evaluator.sampleCount == 5)
        #expect(evaluator.description.contains("central test set") && evaluator.description.contains("a.csv, b.csv"))
        // Class 1 scores x1 against class 0: every row is classified right.
        let parameters: [Float] = [0, 0, 1, 0, 0, 0]  // weight [classes, inputs], then bias
        let model = try architecture.build(seed: 0)
        model.parameters = parameters
        let data = try config.loadCentralTestSet(classes: 2)
        let expected = try Evaluation.evaluate(model: model, loss: architecture.loss, on: data)
        let metrics = try evaluator.evaluate(parameters)
        #expect(metrics == expected)
        #expect(metrics.sampleCount == 5 && metrics.auc != nil)
        let accuracy = try #require(metrics.accuracy)
        #expect(accuracy == 1, "x1 separates the classes of this set")
    }

    @Test("a missing or malformed file names its evaluation.dataset.paths entry")
    func badFilesNameTheirPath() throws {
        let missing = try #require(try centralError("{kind: csv, paths: [nowhere.csv], label_column: y}"))
        #expect(missing.path == "evaluation.dataset.paths[0]" && missing.code == .unreadableFile, "\(missing)")
        #expect(missing.message.contains("nowhere.csv"))

        let noLabel = try #require(
            try centralError(
                "{kind: csv, paths: [good.csv, bad.csv], label_column: y}",
                files: ["good.csv": "x1,x2,y\n1,2,0\n", "bad.csv": "x1,x2,label\n1,2,0\n"]))
        #expect(noLabel.path == "evaluation.dataset.paths[1]", "\(noLabel)")

        let npy = try #require(try centralError("{kind: npy, features: x.npy, labels: y.npy}"))
        #expect(npy.path == "evaluation.dataset.features" && npy.code == .unreadableFile, "\(npy)")
    }

    @Test("a test set that does not fit the model is refused, saying how")
    func mismatchesAreRefused() throws {
        let width = try #require(
            try centralError("{kind: csv, paths: [t.csv], label_column: y}", files: ["t.csv": "a,b,c,y\n1,2,3,0\n"]))
        #expect(width.path == "evaluation.dataset" && width.code == .conflict, "\(width)")
        #expect(width.message.contains("3 features per row") && width.message.contains("takes 2"))

        let label = try #require(
            try centralError("{kind: csv, paths: [t.csv], label_column: y}", files: ["t.csv": "a,b,y\n1,2,0\n1,2,3\n"]))
        #expect(label.path == "evaluation.dataset.paths[0]", "\(label)")
        #expect(label.message.contains("does not fit the 2 classes"), "\(label)")

        let text = try #require(
            try centralError(
                "{kind: csv, paths: [t.csv], label_column: y}", files: ["t.csv": "a,b,y\n1,2,yes\n3,4,yes\n"]))
        #expect(text.path == "evaluation.dataset" && text.code == .conflict, "\(text)")
        #expect(text.message.contains("must name every class"), "\(text)")

        // The feature count of a generated set is known before anything is drawn.
        let generated = try #require(
            parseError(
                "model: {inputs: 4}\ndataset: {kind: csv, paths: [a.csv], label_column: y}\n"
                    + "evaluation: {dataset: {kind: synthetic_iid}}"))
        #expect(generated.path == "evaluation.dataset.dimension" && generated.message.contains("model.inputs is 4"))
    }

    @Test("a generated test set draws fresh rows from the training data's generator")
    func generatedRowsAreFresh() throws {
        var generator = FedProxSynthetic.Configuration.synthetic(alpha: 1, beta: 1, devices: 4)
        generator.maximumSamples = 60
        let training = try FedProxSynthetic.generate(generator, seed: 11)
        let heldOut = try FedProxSynthetic.generate(generator, seed: 11, heldOutSeed: 12)
        let again = try FedProxSynthetic.generate(generator, seed: 11, heldOutSeed: 12)
        for (train, test) in zip(training, heldOut) {
            // Same devices: same size, model and feature distribution; other rows.
            #expect(train.dataset.count == test.dataset.count)
            #expect(
                train.weights.scalars == test.weights.scalars && train.featureMean.scalars == test.featureMean.scalars)
            let trainRows = Set(
                stride(from: 0, to: train.dataset.features.count, by: generator.dimension).map {
                    Array(train.dataset.features.scalars[$0..<($0 + generator.dimension)])
                })
            let shared = stride(from: 0, to: test.dataset.features.count, by: generator.dimension).filter {
                trainRows.contains(Array(test.dataset.features.scalars[$0..<($0 + generator.dimension)]))
            }
            #expect(shared.isEmpty, "a held-out row repeats a training row")
        }
        #expect(heldOut.map(\.dataset.features.scalars) == again.map(\.dataset.features.scalars))

        // Through the configuration: the generated clinical-risk set is the quick-start sites' patients,
        // drawn with the evaluation seed.
        let config = try ExperimentConfig.parse(
            yaml: """
                participants: 5
                dataset: {kind: clinical_risk}
                partitioning: {scheme: natural}
                evaluation: {dataset: {kind: clinical_risk, seed: 8}}
                """, source: "t.yaml")
        let set = try config.loadCentralTestSet(classes: 2)
        let expected = try Dataset.concatenating(
            ClinicalRisk.generateSites(ClinicalRisk.siteProfiles(count: 5), seed: 8))
        #expect(set.features.scalars == expected.features.scalars && set.labels.scalars == expected.labels.scalars)
    }
}

@Suite("Central evaluation: in the rounds")
struct CentralEvaluationRoundTests {
    /// Counts its calls and reports the first parameter as the accuracy.
    final class Probe: Sendable {
        let calls = Mutex(0)
    }

    @Test("every published model is evaluated on the central test set, and the record carries it")
    func everyModelIsEvaluated() throws {
        let agents = try RoundFixtures.agents(3)
        var plan = RoundFixtures.plan(rounds: 3, secure: false)
        plan.evaluationEvery = 2
        let probe = Probe()
        plan.centralEvaluator = CentralEvaluator(description: "probe", sampleCount: 10) { parameters in
            probe.calls.withLock { $0 += 1 }
            return EvaluationMetrics(sampleCount: 10, loss: 0.5, accuracy: 0.25, auc: 0.75)
        }
        let outcome = InMemoryFederation(
            plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(), participants: agents
        ).run()
        #expect(outcome.completedRounds == 3)
        #expect(probe.calls.withLock { $0 } == 3, "one central evaluation per published model")
        for record in outcome.records {
            #expect(record.centralAccuracy == 0.25 && record.centralLoss == 0.5 && record.centralAUC == 0.75)
            #expect(record.stageSeconds[CoordinatorStateMachine.centralEvaluationStage] != nil)
            #expect(record.summaryLine.contains("central test set accuracy 0.2500"))
        }
        // The sites' held-out figures stay apart, on their own cadence (rounds 2 and 3).
        #expect(outcome.records.map { $0.evalAccuracy != nil } == [false, true, true])
        #expect(RoundRecord.finalAccuracy(of: outcome.records)?.source == "central test set")
    }

    @Test("a central evaluation that fails leaves the round completed without central figures")
    func failureIsLogged() throws {
        var plan = RoundFixtures.plan(rounds: 1, secure: false)
        plan.centralEvaluator = CentralEvaluator(description: "broken", sampleCount: 1) { _ in
            throw TrainingError("the test set is gone")
        }
        var lines: [String] = []
        let outcome = InMemoryFederation(
            plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(2), log: { lines.append($0) }
        ).run()
        #expect(outcome.completedRounds == 1 && outcome.records[0].status == .completed)
        #expect(outcome.records[0].centralAccuracy == nil && !outcome.records[0].hasCentralEvaluation)
        #expect(lines.contains { $0.contains("no central evaluation: the test set is gone") })
    }

    @Test("a site without held-out rows refuses to evaluate: its training rows are never reported as evaluation")
    func trainingRowsAreNeverEvaluation() throws {
        // Every site holds all its rows for training (test_fraction 0).
        func agents() throws -> [ParticipantAgent] {
            try RoundFixtures.agents(3).map { agent in
                var data = agent.data
                data["risk"]?.test = nil
                return ParticipantAgent(
                    site: agent.site, data: data, policy: RoundFixtures.lenientPolicy,
                    signer: try RoundFixtures.signing.signer(for: agent.site),
                    credentialVerifier: RoundFixtures.signing.verifier, simulationSeed: 42)
            }
        }
        for secure in [false, true] {
            let plan = RoundFixtures.plan(rounds: 2, secure: secure)
            let outcome = InMemoryFederation(
                plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
                participants: try agents()
            ).run()
            #expect(outcome.completedRounds == 2, "secure: \(secure)")
            #expect(outcome.records.allSatisfy { $0.evalAccuracy == nil && $0.evalLoss == nil }, "secure: \(secure)")
            #expect(RoundRecord.finalAccuracy(of: outcome.records) == nil)
            let refusals = outcome.transcript.filter {
                guard case .failed(_, let reason) = $0.message else { return false }
                return reason.contains("holds no held-out rows")
            }
            #expect(refusals.count == 6, "each site refuses each round's evaluation (secure: \(secure))")
        }

        // One site with held-out rows: the figure is that site's alone.
        let heldOut = try RoundFixtures.dataset(40, seed: 99)
        var mixed = try agents()
        mixed[0] = ParticipantAgent(
            site: "site-1", data: ["risk": LocalData(train: try RoundFixtures.dataset(60, seed: 0), test: heldOut)],
            policy: RoundFixtures.lenientPolicy)
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 1, secure: false), initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: mixed
        ).run()
        let model = try RoundFixtures.architecture.build(seed: 0)
        model.parameters = outcome.finalModel
        let expected = try Evaluation.evaluate(model: model, loss: .softmaxCrossEntropy, on: heldOut)
        let accuracy = try #require(outcome.records[0].evalAccuracy)
        #expect(abs(accuracy - (expected.accuracy ?? -1)) < 1e-9)
    }
}

@Suite("Central evaluation: results")
struct CentralEvaluationResultsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the example experiment reports its central test set in every round, the CSV, the JSON and the report")
    func exampleExperiment() throws {
        let config = try ExperimentConfig.load(
            from: Self.repository.appendingPathComponent("Experiments/central-evaluation.yaml"))
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-central-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        var lines: [String] = []
        let report = try ExperimentRunner.run(config, outputRoot: output) { lines.append($0) }
        #expect(report.completedRounds == config.rounds)
        #expect(
            lines.contains {
                $0.hasPrefix("central test set: 5050 rows, clinical_risk rows drawn with seed 2024, standardised")
            })
        let central = report.records.compactMap(\.centralAccuracy)
        #expect(central.count == config.rounds)
        #expect(central.last! > 0.75, "central accuracy per round: \(central)")
        #expect(report.records.allSatisfy { $0.centralAUC != nil && $0.evalAccuracy != nil })
        #expect(RoundRecord.finalAccuracy(of: report.records)?.source == "central test set")

        let csv = try String(contentsOf: report.paths.csv, encoding: .utf8)
        let header = csv.prefix { $0 != "\n" }.split(separator: ",")
        #expect(
            header.contains("central_accuracy") && header.contains("central_loss") && header.contains("central_auc"))
        let json = try String(contentsOf: report.paths.json, encoding: .utf8)
        #expect(json.contains("\"central_accuracy\"") && json.contains("\"central test set\""))
        let page = try String(contentsOf: report.paths.html, encoding: .utf8)
        #expect(page.contains("central test set accuracy") && page.contains("(central test set)"))
    }

    @Test("without central figures the CSV has no central columns, and the final accuracy says it is the sites'")
    func noCentralColumns() {
        let results = ExperimentResults(
            experiment: "plain", configHash: "0", seed: 1, startedAt: "now",
            rounds: [
                RoundRecord(
                    round: 1, modelVersion: "1.0.1", cohortSize: 3, contributors: 3, dropouts: 0, evalAccuracy: 0.9,
                    seconds: 1)
            ])
        let csv = ResultsWriter.csv(results)
        #expect(!csv.contains("central"))
        #expect(
            csv.hasPrefix(
                "round,status,model_version,cohort_size,contributors,dropouts,train_loss,eval_loss,eval_accuracy,eval_auc,seconds"
            ))
        #expect(results.finalAccuracy?.source == "sites' held-out data")
        let page = ResultsWriter.html(results)
        #expect(page.contains("0.9000 (sites&#39; held-out data)"))
    }
}
