import Foundation
import Testing

@testable import TesseraFederation

/// Parses `yaml` and returns the `ConfigError` it must throw.
private func configError(_ yaml: String, source: String = "test.yaml") -> ConfigError? {
    do {
        _ = try ExperimentConfig.parse(yaml: yaml, source: source)
        return nil
    } catch {
        return error
    }
}

/// The committed experiment files, found from this source file's location.
private var experimentFiles: [URL] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let directory = root.appendingPathComponent("Experiments")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
        directory.appendingPathComponent($0)
    }
}

@Suite("Experiment configuration: defaults and committed files")
struct ConfigDefaultsTests {
    @Test("absent keys take the initializer's documented defaults")
    func defaults() throws {
        let empty = try ExperimentConfig.parse(yaml: "", source: "empty.yaml")
        #expect(empty == ExperimentConfig())
        let config = try ExperimentConfig.parse(
            yaml: "name: defaults\nlocal_training:\n  epochs: 3\n", source: "t.yaml")
        #expect(config.name == "defaults")
        #expect(config.rounds == 10 && config.seed == 0 && config.participants == 10)
        #expect(config.model.preset == .logisticRegression)
        #expect(config.dataset.kind == .syntheticIID && config.dataset.testFraction == 0.2)
        #expect(config.partitioning.scheme == .iid)
        #expect(config.cohort == CohortConfig(fraction: 1, minimum: 3, maximum: nil, overSelection: 1))
        #expect(config.strategy.name == .fedavg && config.strategy.serverLearningRate == 1)
        #expect(config.localTraining.epochs == 3 && config.localTraining.batchSize == 32)
        #expect(config.localTraining.optimizer == .sgd && config.localTraining.learningRate == 0.01)
        #expect(config.secureAggregation.enabled, "secure aggregation must be on unless a file turns it off")
        #expect(config.secureAggregation.bits == 20 && config.secureAggregation.clip == 1)
        #expect(config.deadlines.train == 600)
        #expect(config.evaluation.every == 1)
        #expect(config.onRoundFailure == .continue)
        #expect(config.resolvedOutputDirectory == "results/defaults")
        // An empty section is the same as an absent one.
        #expect(try ExperimentConfig.parse(yaml: "local_training:\nmodel:\n", source: "t.yaml") == ExperimentConfig())
    }

    @Test("each strategy fills in its own documented hyperparameters")
    func strategyDefaults() throws {
        let adam = try ExperimentConfig.parse(yaml: "strategy: {name: fedadam}", source: "t.yaml").strategy
        #expect(adam.serverLearningRate == 0.01 && adam.beta1 == 0.9 && adam.beta2 == 0.99 && adam.tau == 0.001)
        #expect(adam.momentum == nil)
        let adagrad = try ExperimentConfig.parse(yaml: "strategy: {name: fedadagrad}", source: "t.yaml").strategy
        #expect(adagrad.serverLearningRate == 0.1 && adagrad.beta1 == 0 && adagrad.beta2 == nil)
        let momentum = try ExperimentConfig.parse(yaml: "strategy: {name: fedavgm}", source: "t.yaml").strategy
        #expect(momentum.momentum == 0.9 && momentum.serverLearningRate == 1)
        let prox = try ExperimentConfig.parse(yaml: "strategy: {name: fedprox}", source: "t.yaml")
        #expect(prox.localTraining.proximalMu == FedProx.defaultMu)
        let built = try prox.makeStrategy()
        #expect(built.name == "fedprox" && (built as? FedProx)?.mu == FedProx.defaultMu)
        let adamLocal = try ExperimentConfig.parse(yaml: "local_training: {optimizer: adam}", source: "t.yaml")
        #expect(adamLocal.localTraining.learningRate == 0.001)
        // Lowered to the task participants run.
        let task = try ExperimentConfig.parse(
            yaml: "strategy: {name: fedprox}\nlocal_training: {epochs: 3, momentum: 0.5, clip_norm: 5}",
            source: "t.yaml"
        ).localTraining.trainingTask(seed: 9)
        #expect(
            task.epochs == 3 && task.proximalMu == Float(FedProx.defaultMu) && task.gradientClipNorm == 5
                && task.seed == 9)
        #expect(task.optimizer == .sgd(learningRate: 0.01, momentum: 0.5, weightDecay: 0))
    }

    @Test("every committed experiment file parses and validates")
    func committedExperimentsValidate() throws {
        let files = experimentFiles
        #expect(files.count >= 3, "expected the quickstart, fedprox and dirichlet experiments in Experiments/")
        for file in files {
            let config = try ExperimentConfig.load(from: file)
            for run in config.runs {
                try run.validate()
                // Every data file an experiment names is in the repository.
                for path in run.dataset.paths
                    + [run.dataset.features, run.dataset.images, run.dataset.labels].compactMap({ $0 })
                {
                    #expect(
                        FileManager.default.fileExists(atPath: run.resolve(path).path),
                        "\(file.lastPathComponent) names \(path), which does not exist")
                }
            }
            #expect(config.baseDirectory == file.deletingLastPathComponent().path)
        }
    }

    @Test("the committed experiments say what their documentation says")
    func committedExperimentsContent() throws {
        let directory = experimentFiles.first?.deletingLastPathComponent() ?? URL(fileURLWithPath: "Experiments")
        let quickstart = try ExperimentConfig.load(from: directory.appendingPathComponent("quickstart.yaml"))
        #expect(quickstart.secureAggregation.enabled && quickstart.partitioning.scheme == .natural)
        #expect(quickstart.participants == 5 && quickstart.dataset.paths.count == 5)
        #expect(
            quickstart.resolve(quickstart.dataset.paths[0]).path.hasSuffix("Datasets-sample/clinical-risk/site-1.csv"))

        let fedprox = try ExperimentConfig.load(from: directory.appendingPathComponent("fedprox-synthetic.yaml"))
        #expect(fedprox.variants.map(\.name) == ["fedavg", "fedprox-mu1"])
        let (avg, prox) = (fedprox.variants[0].config, fedprox.variants[1].config)
        #expect(
            avg.name == "fedprox-synthetic-fedavg" && avg.strategy.name == .fedavg && avg.localTraining.proximalMu == 0)
        #expect(prox.strategy.name == .fedprox && prox.localTraining.proximalMu == 1)
        for arm in [avg, prox] {
            #expect(arm.participants == 30 && arm.cohort.selection(available: 30)! == (target: 10, selected: 10))
            #expect(
                arm.localTraining.epochs == 20 && arm.localTraining.batchSize == 10
                    && arm.localTraining.learningRate == 0.01)
            #expect(arm.rounds == 200 && arm.dataset.kind == .syntheticFedProx && arm.seed == fedprox.seed)
        }
        #expect(avg.configHash != prox.configHash)

        let sweep = try ExperimentConfig.load(from: directory.appendingPathComponent("dirichlet-sweep.yaml"))
        #expect(sweep.runs.map(\.partitioning.alpha) == [0.1, 0.5, 1, 10, 100])
        #expect(sweep.runs.allSatisfy { $0.partitioning.scheme == .dirichlet })
    }
}

@Suite("Experiment configuration: errors name the path")
struct ConfigErrorTests {
    @Test("an unknown top-level key is named, with the accepted keys and a suggestion")
    func unknownTopLevelKey() throws {
        let error = try #require(configError("rounds: 5\nnmae: trial\n"))
        #expect(error.code == .unknownKey)
        #expect(error.path == "nmae")
        #expect(error.message.contains("accepted keys: name, seed, rounds"))
        #expect(error.message.contains("did you mean \"name\""))
        #expect(error.line == 2 && error.column == 1 && error.file == "test.yaml")
        #expect(error.description.hasPrefix("test.yaml:2:1: nmae: unknown key"))
    }

    @Test("an unknown nested key is named by its full path")
    func unknownNestedKey() throws {
        let yaml = """
            name: nested
            local_training:
              epochs: 2
              lerning_rate: 0.1
            """
        let error = try #require(configError(yaml))
        #expect(error.code == .unknownKey)
        #expect(error.path == "local_training.lerning_rate")
        #expect(error.message.contains("accepted keys: epochs, batch_size, optimizer, learning_rate"))
        #expect(error.message.contains("did you mean \"learning_rate\""))
        #expect(error.line == 4 && error.column == 3)

        let deep = try #require(configError("secure_aggregation:\n  enabled: true\n  treshold: 3\n"))
        #expect(deep.path == "secure_aggregation.treshold" && deep.code == .unknownKey)
    }

    @Test("a key of another strategy, kind or scheme is refused, naming who uses it")
    func inapplicableKeys() throws {
        let momentum = try #require(configError("strategy:\n  name: fedadam\n  momentum: 0.9\n"))
        #expect(momentum.code == .unknownKey && momentum.path == "strategy.momentum")
        #expect(momentum.message.contains("not used by strategy \"fedadam\"") && momentum.message.contains("fedavgm"))
        let alpha = try #require(configError("partitioning: {scheme: iid, alpha: 0.1}"))
        #expect(alpha.path == "partitioning.alpha" && alpha.message.contains("dirichlet"))
        let hidden = try #require(configError("model: {preset: logistic_regression, hidden: [8]}"))
        #expect(hidden.path == "model.hidden" && hidden.message.contains("mlp"))
        let images = try #require(configError("dataset: {kind: csv, images: x.idx}"))
        #expect(images.path == "dataset.images" && images.message.contains("idx"))
    }

    @Test("a value of the wrong type names the path, the expected type and what was found")
    func wrongType() throws {
        let rounds = try #require(configError("rounds: many\n"))
        #expect(rounds.code == .typeMismatch && rounds.path == "rounds")
        #expect(rounds.message == "expected an integer, found \"many\"")
        let section = try #require(configError("model: 5\n"))
        #expect(
            section.code == .typeMismatch && section.path == "model" && section.message.contains("expected a mapping"))
        let element = try #require(configError("model:\n  preset: mlp\n  hidden: [64, wide]\n"))
        #expect(element.path == "model.hidden[1]" && element.code == .typeMismatch)
        let seed = try #require(configError("seed: -1\n"))
        #expect(seed.path == "seed" && seed.message.contains("non-negative integer"))
        let flag = try #require(configError("secure_aggregation: {enabled: sometimes}"))
        #expect(flag.path == "secure_aggregation.enabled" && flag.message.contains("true or false"))
    }

    @Test("out-of-range values name the path and the accepted range")
    func outOfRange() throws {
        let fraction = try #require(configError("cohort: {fraction: 1.5}"))
        #expect(fraction.code == .invalidValue && fraction.path == "cohort.fraction")
        #expect(fraction.message.contains("(0, 1]"))
        let zero = try #require(configError("cohort: {fraction: 0}"))
        #expect(zero.path == "cohort.fraction")
        let rate = try #require(configError("local_training: {learning_rate: -0.1}"))
        #expect(rate.path == "local_training.learning_rate" && rate.message.contains("positive"))
        let bits = try #require(configError("secure_aggregation: {bits: 40}"))
        #expect(bits.path == "secure_aggregation.bits" && bits.message.contains("2...32"))
        let beta = try #require(configError("strategy: {name: fedyogi, beta2: 1.0}"))
        #expect(beta.path == "strategy.beta2" && beta.message.contains("[0, 1)"))
        let rounds = try #require(configError("rounds: 0"))
        #expect(rounds.path == "rounds")
        let threshold = try #require(configError("secure_aggregation: {threshold: 1}"))
        #expect(threshold.path == "secure_aggregation.threshold" && threshold.message.contains("at least 2"))
        let name = try #require(configError("name: ../escape"))
        #expect(name.path == "name")
    }

    @Test("a bad name lists the accepted names")
    func badEnumValues() throws {
        let strategy = try #require(configError("strategy:\n  name: fedavgg\n"))
        #expect(strategy.code == .invalidValue && strategy.path == "strategy.name")
        #expect(
            strategy.message.hasPrefix(
                "\"fedavgg\" is not one of fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, median, trimmed_mean, krum, multi_krum"
            ))
        #expect(strategy.line == 2 && strategy.column == 9)
        let optimizer = try #require(configError("local_training: {optimizer: rmsprop}"))
        #expect(optimizer.path == "local_training.optimizer" && optimizer.message.contains("sgd, adam"))
        let kind = try #require(configError("dataset: {kind: parquet}"))
        #expect(kind.message.contains("csv, npy, idx, synthetic_fedprox, synthetic_iid, clinical_risk"))
        let policy = try #require(configError("on_round_failure: retry"))
        #expect(policy.path == "on_round_failure" && policy.message.contains("continue, stop"))
        let auto = try #require(configError("secure_aggregation: {threshold: atuo}"))
        #expect(auto.path == "secure_aggregation.threshold" && auto.message.contains("auto"))
        #expect(
            try ExperimentConfig.parse(yaml: "secure_aggregation: {threshold: auto}", source: "t").secureAggregation
                .threshold == nil)
    }

    @Test("cohort minimum above maximum is refused")
    func cohortMinAboveMax() throws {
        let error = try #require(configError("cohort: {minimum: 5, maximum: 3}"))
        #expect(error.code == .conflict && error.path == "cohort.minimum")
        #expect(error.message.contains("cannot exceed the maximum"))
        let tooFewParticipants = try #require(configError("participants: 3\ncohort: {minimum: 4}"))
        #expect(
            tooFewParticipants.path == "cohort.minimum" && tooFewParticipants.message.contains("only 3 participants"))
    }

    @Test("robust aggregation under secure aggregation is refused, explaining why")
    func robustWithSecureAggregation() throws {
        for name in ["median", "trimmed_mean", "krum", "multi_krum"] {
            let yaml = "participants: 10\ncohort: {minimum: 6}\nstrategy: {name: \(name)}\n"
            let error = try #require(configError(yaml))
            #expect(error.code == .conflict && error.path == "strategy.name")
            #expect(error.message.contains("only ever learns the sum"))
            #expect(error.message.contains("cannot take a coordinate-wise median"))
            #expect(error.message.contains("secure_aggregation.enabled: false"))
            let plaintext = try ExperimentConfig.parse(
                yaml: yaml + "secure_aggregation: {enabled: false}\n", source: "t.yaml")
            #expect(try plaintext.makeStrategy().requiresIndividualUpdates)
        }
    }

    @Test("Krum's n > 2f + 2 is checked against the cohort minimum")
    func krumCohort() throws {
        let error = try #require(
            configError(
                "cohort: {minimum: 4}\nstrategy: {name: krum, byzantine: 1}\nsecure_aggregation: {enabled: false}"))
        #expect(error.code == .conflict && error.path == "strategy.byzantine" && error.message.contains("at least 5"))
    }

    @Test("quantization that could overflow and infeasible secure-aggregation parameters are refused")
    func secureAggregationFeasibility() throws {
        let overflow = try #require(configError("participants: 10\nsecure_aggregation: {bits: 32}"))
        #expect(overflow.code == .conflict && overflow.path == "secure_aggregation.bits")
        #expect(overflow.message.contains("overflow"))
        let weights = try #require(
            configError(
                "dataset: {kind: synthetic_iid, max_samples_per_participant: 5000}\npartitioning: {scheme: natural}\n"
                    + "secure_aggregation: {max_weight: 100}"))
        #expect(weights.path == "secure_aggregation.max_weight")
        let infeasible = try #require(
            configError("participants: 4\nsecure_aggregation: {dropout_rate: 0.6, corruption_rate: 0.5}"))
        #expect(infeasible.path == "secure_aggregation.dropout_rate" && infeasible.code == .conflict)
        let single = try #require(configError("participants: 3\ncohort: {minimum: 2}"))
        #expect(single.path == "cohort.minimum" && single.message.contains("learn the other's"))
        let threshold = try #require(configError("cohort: {minimum: 3}\nsecure_aggregation: {threshold: 4}"))
        #expect(threshold.path == "secure_aggregation.threshold" && threshold.message.contains("cohort.minimum = 3"))
        let tooFew = try #require(configError("dataset: {kind: synthetic_iid, max_samples_per_participant: 40}"))
        #expect(tooFew.path == "dataset.max_samples_per_participant" && tooFew.message.contains("at least 50"))
        let harary = try #require(configError("secure_aggregation: {neighbourhood: harary}"))
        #expect(harary.code == .missingValue && harary.path == "secure_aggregation.degree")
    }

    @Test("cross-section rules: FedProx μ, natural partitioning, model against data")
    func crossField() throws {
        let mu = try #require(configError("strategy: {name: fedprox}\nlocal_training: {proximal_mu: 0}"))
        #expect(mu.path == "local_training.proximal_mu" && mu.message.contains("FedAvg"))
        let natural = try #require(
            configError("dataset: {kind: npy, features: x.npy, labels: y.npy}\npartitioning: {scheme: natural}"))
        #expect(natural.path == "partitioning.scheme" && natural.message.contains("npy has none"))
        let generated = try #require(
            configError("participants: 4\ndataset: {kind: clinical_risk}\npartitioning: {scheme: natural}"))
        #expect(generated.path == "participants" && generated.message.contains("5 sites"))
        let files = try #require(
            configError(
                "participants: 3\ndataset: {kind: csv, paths: [a.csv, b.csv], label_column: y}\npartitioning: {scheme: natural}"
            ))
        #expect(files.path == "participants" && files.message.contains("lists 2"))
        let label = try #require(configError("dataset: {kind: csv, paths: [a.csv]}"))
        #expect(label.code == .missingValue && label.path == "dataset.label_column")
        let classes = try #require(configError("model: {classes: 3}\ndataset: {kind: synthetic_iid, classes: 10}"))
        #expect(classes.path == "model.classes")
        // Once the data is read, the inferred sizes fill in the architecture.
        let mlp = ModelConfig(preset: .mlp, hidden: [16, 8])
        #expect(try mlp.architecture(dataInputs: 11, dataClasses: 2) == .mlp(inputs: 11, hidden: [16, 8], classes: 2))
        #expect(throws: ConfigError.self) {
            try ModelConfig(preset: .mcmahanCNN).architecture(dataInputs: 11, dataClasses: 2)
        }
        #expect(throws: ConfigError.self) { try ModelConfig(inputs: 12).architecture(dataInputs: 11, dataClasses: 2) }
    }

    @Test("YAML syntax errors and duplicate keys give a line")
    func syntax() throws {
        let broken = try #require(configError("name: x\nmodel: {preset: mlp\n"))
        #expect(broken.code == .syntax && broken.line != nil)
        let duplicate = try #require(configError("rounds: 3\nrounds: 4\n"))
        #expect(duplicate.code == .syntax && duplicate.message.contains("rounds"))
        #expect(duplicate.line == 2 && duplicate.column == 1, "the second occurrence, not the mapping's start")
        let list = try #require(configError("- a\n- b\n"))
        #expect(list.code == .typeMismatch && list.message.contains("mapping of sections"))
    }

    @Test("a bad value inside a variant is located inside the variant")
    func variantErrors() throws {
        let base = "name: arms\nstrategy: {name: fedavg}\n"
        let bad = try #require(
            configError(base + "variants:\n  - name: a\n  - name: b\n    set:\n      strategy: {name: fedadamm}\n"))
        #expect(bad.path == "variants[1].set.strategy.name" && bad.code == .invalidValue && bad.line == 7)
        let unknown = try #require(configError(base + "variants:\n  - name: a\n    sett: {}\n"))
        #expect(unknown.path == "variants[0].sett" && unknown.code == .unknownKey)
        let duplicate = try #require(configError(base + "variants:\n  - name: a\n  - name: a\n"))
        #expect(duplicate.path == "variants[1].name")
        let arms = try ExperimentConfig.parse(
            yaml: base + "output_directory: out\nvariants:\n  - name: a\n  - name: b\n    set: {rounds: 3}\n",
            source: "t")
        #expect(arms.runs.map(\.name) == ["arms-a", "arms-b"])
        #expect(arms.runs.map(\.rounds) == [10, 3])
        #expect(arms.runs.map(\.resolvedOutputDirectory) == ["out/a", "out/b"])
    }

    @Test("load names the file in its errors")
    func loadNamesFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.yaml")
        try "rounds: 3\ncohort:\n  maximun: 4\n".write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try ExperimentConfig.load(from: file)
            Issue.record("a misspelt key was accepted")
        } catch {
            #expect(error.file == file.path)
            #expect(error.description.hasPrefix("\(file.path):3:3: cohort.maximun: unknown key"))
        }
        do {
            _ = try ExperimentConfig.load(from: directory.appendingPathComponent("missing.yaml"))
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.code == .unreadableFile)
        }
    }
}

@Suite("Experiment configuration: hash and selection")
struct ConfigHashTests {
    @Test("FNV-1a 64 matches the published test vectors")
    func fnvVectors() {
        #expect(FNV1a64.hash([]) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a64.hash(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a64.hash(Array("foobar".utf8)) == 0x8594_4171_f739_67e8)
    }

    @Test("the hash ignores formatting, key order, spelt-out defaults and the output directory")
    func hashIsCanonical() throws {
        let a = try ExperimentConfig.parse(yaml: "name: h\nrounds: 5\nstrategy: {name: fedadam}\n", source: "a")
        let b = try ExperimentConfig.parse(
            yaml: """
                # the same experiment, written differently
                strategy:
                  tau: 0.001
                  name: fedadam
                rounds: 5
                name: h
                output_directory: elsewhere
                secure_aggregation: {enabled: true}
                """, source: "b")
        #expect(a.configHash == b.configHash)
        #expect(a.configHash.count == 16 && a.configHash.allSatisfy(\.isHexDigit))
        let c = try ExperimentConfig.parse(yaml: "name: h\nrounds: 6\nstrategy: {name: fedadam}\n", source: "c")
        #expect(a.configHash != c.configHash)
        // Codable round trip through the canonical JSON gives the same configuration.
        let decoded = try JSONDecoder().decode(ExperimentConfig.self, from: Data(a.canonicalJSON.utf8))
        #expect(decoded == a)
    }

    @Test("cohort selection rounds the fraction, clamps it and over-selects")
    func cohortSelection() {
        let fedprox = CohortConfig(fraction: 0.3334, minimum: 10, maximum: 10)
        #expect(fedprox.selection(available: 30)! == (target: 10, selected: 10))
        #expect(fedprox.selection(available: 9) == nil)
        let over = CohortConfig(fraction: 0.5, minimum: 2, overSelection: 1.3)
        #expect(over.selection(available: 20)! == (target: 10, selected: 13))
        #expect(over.selection(available: 11)! == (target: 6, selected: 8))
        let all = CohortConfig()
        #expect(all.selection(available: 5)! == (target: 5, selected: 5))
        #expect(
            EvaluationConfig(every: 5).evaluates(round: 10, of: 12)
                && EvaluationConfig(every: 5).evaluates(round: 12, of: 12))
        #expect(!EvaluationConfig(every: 5).evaluates(round: 11, of: 12))
    }
}
