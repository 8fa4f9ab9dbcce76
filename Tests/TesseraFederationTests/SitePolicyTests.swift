import Foundation
import TesseraFederation
import TesseraSecAgg
import TesseraTensor
import Testing

/// The repository's Experiments directory.
private let experimentsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Experiments")

/// The violation `body` throws, or `nil` (recorded as an issue) if it accepts.
private func refusal(
    _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) -> SitePolicyViolation? {
    do {
        try body()
        Issue.record("expected a refusal", sourceLocation: sourceLocation)
    } catch let violation as SitePolicyViolation {
        return violation
    } catch {
        Issue.record("expected a SitePolicyViolation, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Whether `body` accepts; a refusal is recorded with its message.
private func accepts(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    do {
        try body()
        return true
    } catch {
        Issue.record("refused: \(error)", sourceLocation: sourceLocation)
        return false
    }
}

@Suite("A site's own policy, whatever the coordinator asks")
struct SitePolicyTests {
    @Test("the defaults are the documented ones")
    func defaults() {
        let policy = SitePolicy()
        #expect(policy.requireSecureAggregation && policy.requireActiveAdversaryProtection)
        #expect(policy.minimumCohort == 3)
        #expect(policy.maxCorruptionRate == 0.1 && policy.maxDropoutRate == 0.1)
        #expect(policy.maxParameters == 50_000_000 && policy.maxLayerWidth == 65_536)
        #expect(policy.maxEpochs == 1_000 && policy.maxBatchSize == 65_536)
        #expect(policy.maxModelBytes == 536_870_912)
        #expect(policy.shareMetrics == .aggregateOnly && !policy.releasesPerSiteMetrics)
        #expect(policy.maxEvaluationsPerRound == 1)
        #expect(SitePolicy(shareMetrics: .perSite).releasesPerSiteMetrics)
        #expect(throws: Never.self) { try policy.validate() }
    }

    // MARK: Secure aggregation

    @Test("a plaintext round is refused unless the site allows it")
    func plaintextRounds() throws {
        let violation = try #require(
            refusal {
                try SitePolicy().checkPlaintextRound(round: 4)
            })
        #expect(violation.code == .secureAggregationRequired && violation.key == .requireSecureAggregation)
        #expect(violation.round == 4)
        #expect(
            violation.description
                == "site policy require_secure_aggregation: round 4 asks for a plaintext update (no secure "
                + "aggregation); this site sends its update only inside a secure sum")
        #expect(
            accepts {
                try SitePolicy(requireSecureAggregation: false).checkPlaintextRound(round: 4)
            })
    }

    @Test("a secure round without the active-adversary protection is refused unless the site allows it")
    func activeProtection() throws {
        let violation = try #require(
            refusal {
                try SitePolicy().checkSecureRound(
                    round: 2, rosterSize: 5, graph: .complete, threshold: 4, active: false)
            })
        #expect(violation.code == .activeProtectionRequired && violation.key == .requireActiveAdversaryProtection)
        #expect(
            violation.description
                == "site policy require_active_adversary_protection: round 2 asks for secure aggregation without the "
                + "active-adversary protection (keys signed with the site certificates and the consistency check); "
                + "this site requires it")
        #expect(
            accepts {
                try SitePolicy().checkSecureRound(round: 2, rosterSize: 5, graph: .complete, threshold: 4, active: true)
            })
        #expect(
            accepts {
                try SitePolicy(requireActiveAdversaryProtection: false).checkSecureRound(
                    round: 2, rosterSize: 5, graph: .complete, threshold: 4, active: false)
            })
    }

    @Test("a roster below minimum_cohort is refused; one of 1 always is")
    func minimumCohort() throws {
        let violation = try #require(
            refusal {
                try SitePolicy().checkSecureRound(round: 3, rosterSize: 1, graph: .complete, threshold: 1, active: true)
            })
        #expect(violation.code == .cohortTooSmall && violation.key == .minimumCohort && violation.round == 3)
        #expect(
            violation.description
                == "site policy minimum_cohort: round 3 asks for a secure round with a roster of 1; this site requires "
                + "at least 3")
        #expect(
            refusal {
                try SitePolicy().checkSecureRound(round: 3, rosterSize: 2, graph: .complete, threshold: 2, active: true)
            }?.code == .cohortTooSmall)
        #expect(
            accepts {
                try SitePolicy().checkSecureRound(round: 3, rosterSize: 3, graph: .complete, threshold: 2, active: true)
            })
        let pairs = SitePolicy(minimumCohort: 2)
        #expect(
            accepts {
                try pairs.checkSecureRound(round: 3, rosterSize: 2, graph: .complete, threshold: 2, active: true)
            })
        // Even a policy built in code with a minimum below 2 refuses a roster of 1.
        #expect(
            refusal {
                try SitePolicy(minimumCohort: 1).checkSecureRound(
                    round: 3, rosterSize: 1, graph: .complete, threshold: 1, active: true)
            }?.message == "round 3 asks for a secure round with a roster of 1; this site requires at least 2")
    }

    @Test("a Harary degree that is odd, below 2 or not below the roster is refused as malformed")
    func malformedGraph() throws {
        for degree in [3, 0, 10, 12] {
            let violation = try #require(
                refusal {
                    try SitePolicy().checkSecureRound(
                        round: 1, rosterSize: 10, graph: .harary(degree: degree, seed: []), threshold: 4, active: true)
                })
            #expect(violation.code == .malformedGraph && violation.key == nil)
            #expect(
                violation.description
                    == "site policy: round 1 asks for a Harary graph of degree \(degree) over 10; a Harary degree must "
                    + "be even and in 2...9")
        }
    }

    @Test("a threshold of at most half the holders is refused, one above it accepted when the floor allows")
    func majorityBoundary() throws {
        // Complete graph over 8: holders 8. With no corrupted client assumed, the active floor is 5.
        let open = SitePolicy(maxCorruptionRate: 0, maxDropoutRate: 0)
        let half = try #require(
            refusal {
                try open.checkSecureRound(round: 6, rosterSize: 8, graph: .complete, threshold: 4, active: true)
            })
        #expect(half.code == .thresholdNotAMajority && half.key == nil)
        #expect(
            half.description
                == "site policy: round 6 asks for threshold 4 of 8 share holders (the complete graph over 8); this site "
                + "requires more than half of the holders (at least 5), so that no two disjoint groups of holders can "
                + "each rebuild a secret; no site-file key lowers this")
        #expect(
            accepts {
                try open.checkSecureRound(round: 6, rosterSize: 8, graph: .complete, threshold: 5, active: true)
            })
        // Odd holders: 2 of 5 refused, 3 of 5 accepted.
        #expect(
            refusal {
                try open.checkSecureRound(round: 6, rosterSize: 5, graph: .complete, threshold: 2, active: true)
            }?.code == .thresholdNotAMajority)
        #expect(
            accepts {
                try open.checkSecureRound(round: 6, rosterSize: 5, graph: .complete, threshold: 3, active: true)
            })
        // Harary degree 10 over 100: holders 11, so 5 refused and 6 accepted.
        let harary = NeighbourGraph.Kind.harary(degree: 10, seed: [1, 2, 3])
        #expect(
            refusal {
                try open.checkSecureRound(round: 6, rosterSize: 100, graph: harary, threshold: 5, active: true)
            }?.message.hasPrefix(
                "round 6 asks for threshold 5 of 11 share holders (a Harary graph of degree 10 over 100)")
                == true)
        #expect(
            accepts {
                try open.checkSecureRound(round: 6, rosterSize: 100, graph: harary, threshold: 6, active: true)
            })
        // The floor holds without the active protection too, where the security bound alone is only 2.
        let passive = SitePolicy(requireActiveAdversaryProtection: false, maxCorruptionRate: 0, maxDropoutRate: 0)
        #expect(
            refusal {
                try passive.checkSecureRound(round: 6, rosterSize: 100, graph: harary, threshold: 5, active: false)
            }?.code == .thresholdNotAMajority)
        #expect(
            accepts {
                try passive.checkSecureRound(round: 6, rosterSize: 100, graph: harary, threshold: 6, active: false)
            })
        // A threshold of 1 (every share is the secret) or less is refused by the same rule.
        for threshold in [1, 0, -3] {
            #expect(
                refusal {
                    try open.checkSecureRound(
                        round: 6, rosterSize: 3, graph: .complete, threshold: threshold, active: true)
                }?.code == .thresholdNotAMajority)
        }
    }

    @Test("a threshold below the security floor for the site's own max_corruption_rate is refused")
    func securityFloor() throws {
        // Complete graph over 10 with 3 corrupted clients: an active server needs 2t > 13, so t ≥ 7.
        let wary = SitePolicy(maxCorruptionRate: 0.3)
        let violation = try #require(
            refusal {
                try wary.checkSecureRound(round: 9, rosterSize: 10, graph: .complete, threshold: 6, active: true)
            })
        #expect(violation.code == .thresholdBelowSecurityFloor && violation.key == .maxCorruptionRate)
        #expect(
            violation.description
                == "site policy max_corruption_rate: round 9 asks for threshold 6 of 10 share holders (the complete "
                + "graph over 10); with a fraction 0.3 of the roster colluding with an active server, this site "
                + "requires at least 7")
        #expect(
            accepts {
                try wary.checkSecureRound(round: 9, rosterSize: 10, graph: .complete, threshold: 7, active: true)
            })
        // Against a semi-honest server the bound is the corrupted clients plus one (4), under the majority (6).
        let passive = SitePolicy(requireActiveAdversaryProtection: false, maxCorruptionRate: 0.3)
        #expect(
            accepts {
                try passive.checkSecureRound(round: 9, rosterSize: 10, graph: .complete, threshold: 6, active: false)
            })
        // The floor is the finder's own bound: on a Harary graph it sits one below what the finder's t for a
        // higher corruption rate asks.
        let found = try SecAggParameterFinder.find(
            cohortSize: 600, dropoutRate: 0.1, corruptionRate: 0.1, adversary: .activeServer)
        guard case .harary(let degree) = found.shape else {
            Issue.record("expected a Harary graph for 600 clients, got \(found)")
            return
        }
        let graph = NeighbourGraph.Kind.harary(degree: degree, seed: [7])
        #expect(
            accepts {
                try SitePolicy().checkSecureRound(
                    round: 1, rosterSize: 600, graph: graph, threshold: found.threshold, active: true)
            })
        #expect(
            refusal {
                try SitePolicy().checkSecureRound(
                    round: 1, rosterSize: 600, graph: graph, threshold: found.threshold - 1, active: true)
            }?.code == .thresholdBelowSecurityFloor)
    }

    @Test("a Harary graph whose honest survivors may split is refused under max_dropout_rate")
    func sparseGraph() throws {
        // Degree 10 over 100, with 10 corrupted and 10 dropped: two runs of 5 removed is too likely.
        let violation = try #require(
            refusal {
                try SitePolicy().checkSecureRound(
                    round: 2, rosterSize: 100, graph: .harary(degree: 10, seed: [1]), threshold: 11, active: true)
            })
        #expect(violation.code == .graphMayDisconnect && violation.key == .maxDropoutRate)
        let least = try #require(
            stride(from: 2, to: 99, by: 2).first { degree in
                SecAggParameterFinder.keepsHonestSurvivorsConnected(
                    cohortSize: 100, shape: .harary(degree: degree), dropoutRate: 0.1, corruptionRate: 0.1)
            })
        #expect(least > 10)
        #expect(
            violation.description
                == "site policy max_dropout_rate: round 2 asks for a Harary graph of degree 10 over 100; with a "
                + "fraction 0.1 of the roster dropping out and 0.1 colluding (max_corruption_rate), its honest "
                + "survivors may split and reveal their partial sums; this site requires a degree of at least \(least)")
        // Planning for no dropout and no corruption accepts it (the majority floor still holds).
        #expect(
            accepts {
                try SitePolicy(maxCorruptionRate: 0, maxDropoutRate: 0).checkSecureRound(
                    round: 2, rosterSize: 100, graph: .harary(degree: 10, seed: [1]), threshold: 11, active: true)
            })
        // The complete graph never splits.
        #expect(
            accepts {
                try SitePolicy(maxDropoutRate: 0.9).checkSecureRound(
                    round: 2, rosterSize: 100, graph: .complete, threshold: 80, active: true)
            })
    }

    // MARK: What the repository's own experiments ask for

    /// Checks every round an experiment can ask of a site: each cohort size it selects, its
    /// model and its local training.
    private func checkEveryRound(
        of config: ExperimentConfig, inputs: Int, classes: Int, adversary: SecAggAdversary, policy: SitePolicy
    ) throws {
        let plan = config.federationPlan(
            datasetName: config.name,
            architecture: try config.model.architecture(dataInputs: inputs, dataClasses: classes))
        #expect(accepts { try policy.checkModel(plan.architecture, round: 1) })
        #expect(accepts { try policy.checkTask(plan.training, round: 1) })
        let secure = try #require(plan.secureAggregation)
        for n in config.cohortSizeRange where n >= 2 {
            // The coordinator's computation, for the adversary the round runs against.
            let graph: SecAggNeighbourhood =
                switch secure.neighbourhood {
                case .automatic: .automatic
                case .complete: .complete
                case .harary(let degree): .harary(degree: degree)
                }
            let parameters = try SecAggParameterFinder.roundParameters(
                cohortSize: n, neighbourhood: graph, threshold: nil, dropoutRate: secure.dropoutRate,
                corruptionRate: secure.corruptionRate, adversary: adversary)
            #expect(
                accepts {
                    try policy.checkSecureRound(
                        round: 1, rosterSize: n, graph: parameters.graphKind(seed: [9]),
                        threshold: parameters.threshold, active: adversary == .activeServer)
                }, "\(config.name): cohort of \(n)")
        }
    }

    @Test("the default policy accepts every round of the quick start in the active-adversary mode")
    func quickstartIsAccepted() throws {
        let quickstart = try ExperimentConfig.load(from: experimentsDirectory.appendingPathComponent("quickstart.yaml"))
        #expect(quickstart.cohortSizeRange == 4...5)
        try checkEveryRound(of: quickstart, inputs: 11, classes: 2, adversary: .activeServer, policy: SitePolicy())
        // Its complete graph over 5 has t = 4: exactly the active floor for one corrupted site of five.
        let plan = try #require(
            quickstart.federationPlan(
                datasetName: "quickstart", architecture: .logisticRegression(inputs: 11, classes: 2)
            ).secureAggregation)
        #expect(try plan.roundParameters(cohortSize: 5).threshold == 4)
        #expect(
            accepts {
                try SitePolicy(maxCorruptionRate: 0.2).checkSecureRound(
                    round: 1, rosterSize: 5, graph: .complete, threshold: 4, active: true)
            })
    }

    @Test("the default policy accepts the default experiment in the active-adversary mode, not its semi-honest t")
    func defaultExperimentIsAccepted() throws {
        let defaults = ExperimentConfig()
        try checkEveryRound(of: defaults, inputs: 11, classes: 2, adversary: .activeServer, policy: SitePolicy())
        // The same rates against a semi-honest server: t = 2 of the 5 holders of a Harary graph of degree 4 over
        // 10, which the majority floor refuses.
        let semiHonest = try SecAggParameterFinder.roundParameters(
            cohortSize: 10, neighbourhood: .automatic, threshold: nil, dropoutRate: 0.1, corruptionRate: 0.1)
        #expect(semiHonest.shape == .harary(degree: 4) && semiHonest.threshold == 2 && semiHonest.holders == 5)
        #expect(
            refusal {
                try SitePolicy(requireActiveAdversaryProtection: false).checkSecureRound(
                    round: 1, rosterSize: 10, graph: semiHonest.graphKind(seed: []), threshold: 2, active: false)
            }?.code == .thresholdNotAMajority)
    }

    @Test("a large cohort's SecAgg+ graph from the finder passes at the experiment's rates")
    func largeCohortHarary() throws {
        for n in [200, 600] {
            let parameters = try SecAggParameterFinder.roundParameters(
                cohortSize: n, neighbourhood: .automatic, threshold: nil, dropoutRate: 0.1, corruptionRate: 0.1,
                adversary: .activeServer)
            #expect(parameters.holders < n, "expected a Harary graph for \(n)")
            #expect(
                accepts {
                    try SitePolicy().checkSecureRound(
                        round: 1, rosterSize: n, graph: parameters.graphKind(seed: [1]),
                        threshold: parameters.threshold,
                        active: true)
                })
        }
    }

    // MARK: Resource bounds

    @Test("parameter count and widest layer match the built presets")
    func sizesMatchTheBuiltModels() throws {
        let architectures: [ModelArchitecture] = [
            .logisticRegression(inputs: 11, classes: 2), .logisticRegression(inputs: 784, classes: 10),
            .mlp(inputs: 11, hidden: [64, 32], classes: 2), .mlp(inputs: 784, hidden: [200, 200], classes: 10),
            .mlp(inputs: 5, hidden: [], classes: 3), .mcmahanCNN(classes: 10), .mcmahanCNN(classes: 62),
        ]
        for architecture in architectures {
            let model = try architecture.build(seed: 1)
            #expect(architecture.parameterCount == model.parameterCount, "\(architecture.summary)")
            var shape = model.inputShape
            var widest = shape.reduce(1, *)
            for layer in model.layers {
                shape = try layer.build(inputShape: shape)
                widest = max(widest, shape.reduce(1, *))
            }
            #expect(architecture.widestLayer == widest, "\(architecture.summary)")
        }
        #expect(ModelArchitecture.mcmahanCNN(classes: 10).parameterCount == 1_663_370)
    }

    @Test("sizes that overflow or have a non-positive dimension are nil")
    func unknownSizes() {
        #expect(ModelArchitecture.mlp(inputs: 1 << 40, hidden: [1 << 40], classes: 2).parameterCount == nil)
        #expect(ModelArchitecture.mlp(inputs: 2, hidden: [Int.max], classes: 2).parameterCount == nil)
        #expect(ModelArchitecture.logisticRegression(inputs: Int.max, classes: 2).parameterCount == nil)
        for architecture in [
            ModelArchitecture.logisticRegression(inputs: 0, classes: 2), .mlp(inputs: 4, hidden: [8, -1], classes: 2),
            .mlp(inputs: 4, hidden: [8], classes: 0), .mcmahanCNN(classes: 0),
        ] {
            #expect(architecture.parameterCount == nil && architecture.widestLayer == nil, "\(architecture.summary)")
        }
        #expect(ModelArchitecture.mlp(inputs: 2, hidden: [Int.max], classes: 2).widestLayer == Int.max)
    }

    @Test("a model is bounded by its shape before it is built: parameters, width and bytes, at the boundary")
    func modelBounds() throws {
        // A 10^12-wide MLP is refused from arithmetic alone (building it would need terabytes).
        let huge = ModelArchitecture.mlp(inputs: 11, hidden: [1_000_000_000_000], classes: 2)
        let tooMany = try #require(
            refusal {
                try SitePolicy().checkModel(huge, round: 5)
            })
        #expect(tooMany.code == .tooManyParameters && tooMany.key == .maxParameters && tooMany.round == 5)
        #expect(
            tooMany.description
                == "site policy max_parameters: round 5 asks for MLP 11-1000000000000-2 with 14000000000002 parameters; "
                + "this site allows at most 50000000")
        let overflowing = try #require(
            refusal {
                try SitePolicy().checkModel(.mlp(inputs: 1 << 40, hidden: [1 << 40], classes: 2), round: 5)
            })
        #expect(overflowing.code == .modelSizeUnknown && overflowing.key == .maxParameters)
        #expect(
            refusal {
                try SitePolicy().checkModel(.logisticRegression(inputs: -1, classes: 2), round: 5)
            }?.code == .modelSizeUnknown)
        // A long list of hidden layers is counted in the message, not spelt out.
        let deep = ModelArchitecture.mlp(inputs: 4, hidden: Array(repeating: 60_000, count: 100), classes: 2)
        #expect(
            refusal { try SitePolicy().checkModel(deep, round: 5) }?.message
                .hasPrefix("round 5 asks for an MLP 4→…→2 with 100 hidden layers with ") == true)

        // Parameters: exactly the limit passes, one more is refused.
        let model = ModelArchitecture.mlp(inputs: 11, hidden: [64], classes: 2)
        let count = try #require(model.parameterCount)
        #expect(
            accepts {
                try SitePolicy(maxParameters: count).checkModel(model, round: 1)
            })
        #expect(
            refusal {
                try SitePolicy(maxParameters: count - 1).checkModel(model, round: 1)
            }?.code == .tooManyParameters)
        // Width: the widest activation, input included.
        #expect(
            accepts {
                try SitePolicy().checkModel(.logisticRegression(inputs: 65_536, classes: 2), round: 1)
            })
        let wide = try #require(
            refusal {
                try SitePolicy().checkModel(.logisticRegression(inputs: 65_537, classes: 2), round: 1)
            })
        #expect(wide.code == .layerTooWide && wide.key == .maxLayerWidth)
        #expect(
            wide.description
                == "site policy max_layer_width: round 1 asks for logistic regression 65537→2, whose widest layer holds "
                + "65537 values per sample; this site allows at most 65536")
        // Bytes: the 32-bit parameters must fit max_model_bytes.
        #expect(
            accepts {
                try SitePolicy(maxModelBytes: 4 * count).checkModel(model, round: 1)
            })
        let heavy = try #require(
            refusal {
                try SitePolicy(maxModelBytes: 4 * count - 1).checkModel(model, round: 1)
            })
        #expect(heavy.code == .modelTooLarge && heavy.key == .maxModelBytes)
        // Every preset the experiments use passes the defaults.
        for preset in [
            ModelArchitecture.mcmahanCNN(classes: 62), .mlp(inputs: 784, hidden: [200, 200], classes: 10),
            .logisticRegression(inputs: 60, classes: 10),
        ] {
            #expect(accepts { try SitePolicy().checkModel(preset, round: 1) })
        }
    }

    @Test("an announced download above max_model_bytes is refused before the first byte")
    func modelBytes() throws {
        #expect(
            accepts {
                try SitePolicy().checkModelBytes(536_870_912, round: 2)
            })
        let violation = try #require(
            refusal {
                try SitePolicy().checkModelBytes(536_870_913, round: 2)
            })
        #expect(violation.code == .modelTooLarge && violation.key == .maxModelBytes)
        #expect(
            violation.description
                == "site policy max_model_bytes: round 2 asks this site to download a model of 536870913 bytes; this "
                + "site allows at most 536870912")
    }

    @Test("epochs and batch size are bounded, at the boundary")
    func taskBounds() throws {
        #expect(
            accepts {
                try SitePolicy().checkTask(TrainingTask(epochs: 1_000, batchSize: 65_536), round: 1)
            })
        let epochs = try #require(
            refusal {
                try SitePolicy().checkTask(TrainingTask(epochs: 1_001), round: 7)
            })
        #expect(epochs.code == .tooManyEpochs && epochs.key == .maxEpochs)
        #expect(
            epochs.description
                == "site policy max_epochs: round 7 asks for 1001 local epochs; this site allows at most 1000")
        let batch = try #require(
            refusal {
                try SitePolicy(maxBatchSize: 64).checkTask(TrainingTask(batchSize: 65), round: 7)
            })
        #expect(batch.code == .batchTooLarge && batch.key == .maxBatchSize)
        #expect(
            batch.description
                == "site policy max_batch_size: round 7 asks for a batch size of 65; this site allows at most 64")
    }

    // MARK: Evaluation and metrics

    @Test("evaluation requests beyond max_evaluations_per_round are refused")
    func evaluations() throws {
        #expect(
            accepts {
                try SitePolicy().checkEvaluation(round: 3, answeredThisRound: 0)
            })
        let second = try #require(
            refusal {
                try SitePolicy().checkEvaluation(round: 3, answeredThisRound: 1)
            })
        #expect(second.code == .tooManyEvaluations && second.key == .maxEvaluationsPerRound && second.round == 3)
        #expect(
            second.description
                == "site policy max_evaluations_per_round: round 3 asks for evaluation number 2 of the round; this "
                + "site answers at most 1 per round")
        let three = SitePolicy(maxEvaluationsPerRound: 3)
        #expect(accepts { try three.checkEvaluation(round: 3, answeredThisRound: 2) })
        #expect(
            refusal {
                try three.checkEvaluation(round: 3, answeredThisRound: 3)
            }?.code == .tooManyEvaluations)
        #expect(
            refusal {
                try SitePolicy(maxEvaluationsPerRound: 0).checkEvaluation(round: 3, answeredThisRound: 0)
            }?.message == "round 3 asks for evaluation number 1 of the round; this site answers no evaluation requests")
    }

    // MARK: The effective policy

    @Test("settings list every key in order, with its YAML value and whether it is the default")
    func settings() {
        let defaults = SitePolicy().settings
        #expect(defaults.map(\.key) == SitePolicy.Key.allCases)
        #expect(defaults.allSatisfy { $0.isDefault })
        #expect(
            defaults.map { "\($0.key.rawValue): \($0.value)" } == [
                "require_secure_aggregation: true", "require_active_adversary_protection: true", "minimum_cohort: 3",
                "max_corruption_rate: 0.1", "max_dropout_rate: 0.1", "max_parameters: 50000000",
                "max_layer_width: 65536", "max_epochs: 1000", "max_batch_size: 65536", "max_model_bytes: 536870912",
                "share_metrics: aggregate_only", "max_evaluations_per_round: 1", "require_differential_privacy: false",
                "max_epsilon: none", "privacy_delta: 1e-05", "trust_central_noise: false",
            ])
        let changed = SitePolicy(minimumCohort: 5, maxCorruptionRate: 0.2, shareMetrics: .perSite).settings
        #expect(changed.filter { !$0.isDefault }.map(\.key) == [.minimumCohort, .maxCorruptionRate, .shareMetrics])
        #expect(changed.first { $0.key == .shareMetrics }?.value == "per_site")
    }

    @Test("validation refuses values out of range at their key")
    func validation() {
        let cases: [(SitePolicy, String)] = [
            (
                SitePolicy(minimumCohort: 1),
                "policy.minimum_cohort: must be at least 2 (a secure sum of one input is "
                    + "that input), got 1"
            ),
            (SitePolicy(maxCorruptionRate: 1), "policy.max_corruption_rate: must lie in [0, 1), got 1.0"),
            (SitePolicy(maxDropoutRate: -0.1), "policy.max_dropout_rate: must lie in [0, 1), got -0.1"),
            (SitePolicy(maxParameters: 0), "policy.max_parameters: must be a positive integer, got 0"),
            (SitePolicy(maxLayerWidth: -1), "policy.max_layer_width: must be a positive integer, got -1"),
            (SitePolicy(maxEpochs: 0), "policy.max_epochs: must be a positive integer, got 0"),
            (SitePolicy(maxBatchSize: 0), "policy.max_batch_size: must be a positive integer, got 0"),
            (SitePolicy(maxModelBytes: 0), "policy.max_model_bytes: must be a positive integer, got 0"),
            (
                SitePolicy(maxEvaluationsPerRound: -1),
                "policy.max_evaluations_per_round: must be 0 (answer none) or "
                    + "more, got -1"
            ),
        ]
        for (policy, message) in cases {
            #expect {
                try policy.validate()
            } throws: { error in
                (error as? ConfigError)?.description == message
            }
        }
    }
}
