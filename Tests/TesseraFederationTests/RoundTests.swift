import TesseraData
import TesseraSecAgg
import TesseraSimulation
import TesseraTensor
import Testing

@testable import TesseraFederation

/// A small linearly separable 2-class problem split across sites, with site-specific
/// covariate shift (the same decision boundary everywhere, different feature means).
enum RoundFixtures {
    static func dataset(_ n: Int, seed: UInt64, shift: Float = 0) throws -> Dataset {
        var rng = TesseraRandom(seed: seed)
        var x = Tensor.randomNormal([n, 4], using: &rng)
        x = x + shift
        let y = (0..<n).map { i -> Float in
            x.scalars[(4 * i)..<(4 * i + 4)].reduce(0, +) > 0 ? 1 : 0
        }
        return try Dataset(features: x, labels: Tensor(y), classCount: 2)
    }

    static func agents(
        _ count: Int, samples: Int = 60, seed: UInt64 = 1, policy: SitePolicy = lenientPolicy
    ) throws -> [ParticipantAgent] {
        try (0..<count).map { i in
            let train = try dataset(samples + 7 * i, seed: seed &+ UInt64(i), shift: Float(i % 3) * 0.2)
            let test = try dataset(40, seed: seed &+ 1000 &+ UInt64(i), shift: Float(i % 3) * 0.2)
            let site = "site-\(i + 1)"
            return ParticipantAgent(
                site: site, data: ["risk": LocalData(train: train, test: test)], policy: policy,
                signer: try signing.signer(for: site), credentialVerifier: signing.verifier, simulationSeed: 42)
        }
    }

    /// The sites of these tests take what the round logic under test asks for: plaintext rounds,
    /// cohorts of two, per-site metrics. The site policy has tests of its own.
    static let lenientPolicy = SitePolicy(
        requireSecureAggregation: false, minimumCohort: 2, shareMetrics: .perSite, maxEvaluationsPerRound: 2)

    /// Real signing certificates from one in-memory CA, for the active-adversary rounds.
    static let signing: SimulatedSigning = {
        do { return try SimulatedSigning() } catch { fatalError("\(error)") }
    }()

    static let architecture = ModelArchitecture.logisticRegression(inputs: 4, classes: 2)

    static func plan(
        rounds: Int = 3, secure: Bool = true, minimum: Int = 2, epochs: Int = 1,
        onFailure: FederationPlan.RoundFailurePolicy = .continue,
        neighbourhood: FederationPlan.SecureAggregation.Neighbourhood = .automatic,
        threshold: FederationPlan.SecureAggregation.Threshold? = nil
    ) -> FederationPlan {
        FederationPlan(
            experimentID: "test", rounds: rounds, datasetName: "risk", architecture: architecture,
            selection: .init(fraction: 1, minimum: minimum),
            training: TrainingTask(epochs: epochs, batchSize: 16, optimizer: .sgd(learningRate: 0.1)),
            secureAggregation: secure
                ? .init(
                    neighbourhood: neighbourhood, threshold: threshold, dropoutRate: 0.3, corruptionRate: 0.1, clip: 2)
                : nil,
            evaluationEvery: 1, onRoundFailure: onFailure, seed: 5)
    }

    static func initialModel() throws -> [Float] { try architecture.build(seed: 3).parameters }
}

@Suite struct RoundStateMachineTests {
    @Test func fedAvgWithOneParticipantEqualsCentralisedSGD() throws {
        let data = try RoundFixtures.dataset(100, seed: 9)
        let agent = ParticipantAgent(
            site: "only", data: ["risk": LocalData(train: data)], policy: RoundFixtures.lenientPolicy)
        var plan = RoundFixtures.plan(rounds: 1, secure: false, minimum: 1, epochs: 2)
        plan.evaluationEvery = 0
        let w0 = try RoundFixtures.initialModel()
        let outcome = InMemoryFederation(plan: plan, initialModel: w0, strategy: try FedAvg(), participants: [agent])
            .run()
        #expect(outcome.completedRounds == 1)

        // The same batches, in the same order, with plain SGD on one model.
        let model = try RoundFixtures.architecture.build(seed: 3)
        var sgd = SGD(learningRate: 0.1)
        let seed = CoordinatorStateMachine.trainingSeed(experimentSeed: plan.seed, round: 1, position: 0)
        var batches = try data.batches(size: 16, shuffleSeed: seed)
        for _ in 0..<2 {
            while batches.next() {
                try model.trainStep(
                    input: batches.features, targets: batches.labels, loss: .softmaxCrossEntropy, optimizer: &sgd)
            }
        }
        let maxDifference = zip(model.parameters, outcome.finalModel).map { abs($0 - $1) }.max() ?? 1
        #expect(maxDifference < 1e-5, "FedAvg(1 site) vs centralised SGD differ by \(maxDifference)")
    }

    @Test(
        "a training override stands in for local training; its update is what the round aggregates, and its error fails the site"
    )
    func trainingOverride() throws {
        let w0 = try RoundFixtures.initialModel()
        let data = try RoundFixtures.dataset(20, seed: 4)
        func agent(_ site: String, delta: Float, samples: Int) -> ParticipantAgent {
            ParticipantAgent(
                site: SiteID(site), data: ["risk": LocalData(train: data)], policy: RoundFixtures.lenientPolicy
            ) { global, task in
                #expect(global.count == w0.count && task.epochs == 1)
                return TrainingOutcome(
                    delta: [Float](repeating: delta, count: global.count), sampleCount: samples, loss: 1, steps: 1)
            }
        }
        let failing = ParticipantAgent(
            site: "broken", data: ["risk": LocalData(train: data)], policy: RoundFixtures.lenientPolicy
        ) { _, _ in
            throw AggregationError(.emptyInput, "the stub refuses")
        }
        var plan = RoundFixtures.plan(rounds: 1, secure: false, minimum: 2)
        plan.evaluationEvery = 0
        let outcome = InMemoryFederation(
            plan: plan, initialModel: w0, strategy: try FedAvg(),
            participants: [agent("a", delta: 1, samples: 1), agent("b", delta: 3, samples: 3), failing]
        ).run()
        #expect(outcome.completedRounds == 1)
        // FedAvg: w0 + (1·1 + 3·3) / 4 = w0 + 2.5 in every coordinate; the failing site is not in it.
        #expect(zip(outcome.finalModel, w0).allSatisfy { abs($0 - $1 - 2.5) < 1e-6 })
        #expect(outcome.records.first?.contributors == 2)
        let failure = outcome.transcript.contains {
            guard case .failed(_, let reason) = $0.message else { return false }
            return reason.contains("the stub refuses")
        }
        #expect(failure)
    }

    /// FedAvg asking for every update: the plaintext path that keeps them all until the round ends.
    struct FedAvgOverIndividualUpdates: FederatedStrategy {
        var inner = try! FedAvg()
        var name: String { "fedavg" }
        var requiresIndividualUpdates: Bool { true }
        mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
            guard case .individual = aggregate else { throw AggregationError(.invalidState, "expected every update") }
            return try inner.step(global: global, aggregate: aggregate)
        }
        var state: StrategyState { inner.state }
        mutating func restore(_ state: StrategyState) throws(AggregationError) { try inner.restore(state) }
    }

    @Test(
        "a plaintext round of a mean-only strategy sums updates as they arrive: the same models, to the bit, as keeping them all"
    )
    func runningPlaintextSum() throws {
        let w0 = try RoundFixtures.initialModel()
        let plan = RoundFixtures.plan(rounds: 3, secure: false)
        let running = InMemoryFederation(
            plan: plan, initialModel: w0, strategy: try FedAvg(), participants: try RoundFixtures.agents(7)
        ).run()
        let kept = InMemoryFederation(
            plan: plan, initialModel: w0, strategy: FedAvgOverIndividualUpdates(),
            participants: try RoundFixtures.agents(7)
        ).run()
        #expect(running.completedRounds == 3 && kept.completedRounds == 3)
        #expect(running.finalModel == kept.finalModel)
        #expect(running.records.map(\.contributors) == kept.records.map(\.contributors))
        #expect(running.records.map(\.trainLoss) == kept.records.map(\.trainLoss))
    }

    @Test func plaintextAndSecureRoundsReachTheSameModel() throws {
        let w0 = try RoundFixtures.initialModel()
        let plain = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 4, secure: false), initialModel: w0, strategy: try FedAvg(),
            participants: try RoundFixtures.agents(10)
        ).run()
        let secure = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 4, secure: true), initialModel: w0, strategy: try FedAvg(),
            participants: try RoundFixtures.agents(10)
        ).run()
        #expect(plain.completedRounds == 4)
        #expect(secure.completedRounds == 4)
        let difference = zip(plain.finalModel, secure.finalModel).map { abs($0 - $1) }.max() ?? 1
        // 2 clip / (2^23 − 1) quantization steps per round, 4 rounds: far below 1e-3.
        #expect(difference < 1e-3, "secure vs plaintext models differ by \(difference)")
        let plainAccuracy = plain.records.last?.evalAccuracy ?? 0
        let secureAccuracy = secure.records.last?.evalAccuracy ?? 0
        #expect(plainAccuracy > 0.85)
        #expect(abs(plainAccuracy - secureAccuracy) < 0.02)
        // Under secure aggregation no participant ever sent its update in the clear.
        let clearUpdates = secure.transcript.filter {
            if case .update = $0.message { return true } else { return false }
        }
        #expect(clearUpdates.isEmpty)
        #expect(secure.published.map(\.version.description) == ["1.0.1", "1.0.2", "1.0.3", "1.0.4"])
    }

    @Test(arguments: [
        InMemoryFederation.FaultPoint.training, .shareKeys, .maskedInput, .unmasking,
    ])
    func secureRoundSurvivesADropoutAtEveryStage(point: InMemoryFederation.FaultPoint) throws {
        for kind in [InMemoryFederation.FaultKind.disconnect, .silent] {
            let fault = InMemoryFederation.Fault(site: "site-3", round: 2, point: point, kind: kind)
            let outcome = InMemoryFederation(
                plan: RoundFixtures.plan(rounds: 3, neighbourhood: .complete, threshold: .fraction(0.6)),
                initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
                participants: try RoundFixtures.agents(6), faults: [fault]
            ).run()
            #expect(outcome.completedRounds == 3, "\(point) \(kind): \(outcome.records.map(\.failureReason))")
            let round2 = outcome.records.first { $0.round == 2 }
            // A participant whose masked input reached the server is still in the sum: its
            // self-mask is reconstructed from its peers' shares.
            let expectedContributors = point == .unmasking ? 6 : 5
            #expect(round2?.contributors == expectedContributors, "\(point) \(kind)")
            // It rejoins and contributes to the next round.
            #expect(outcome.records.first { $0.round == 3 }?.contributors == 6, "\(point) \(kind)")
        }
    }

    @Test func tooManyDropoutsFailTheRoundCleanlyAndTheExperimentGoesOn() throws {
        let faults = ["site-1", "site-2", "site-3", "site-4"].map {
            InMemoryFederation.Fault(site: $0, round: 1, point: .maskedInput)
        }
        let w0 = try RoundFixtures.initialModel()
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, neighbourhood: .complete, threshold: .fraction(0.6)), initialModel: w0,
            strategy: try FedAvg(), participants: try RoundFixtures.agents(6), faults: faults
        ).run()
        let first = outcome.records.first { $0.round == 1 }
        #expect(first?.status == .failed)
        #expect(first?.failureReason?.contains("secure aggregation aborted") == true)
        #expect(outcome.records.first { $0.round == 2 }?.status == .completed)
        #expect(outcome.completedRounds == 1)
        // The failed round published nothing: the first version comes from round 2.
        #expect(outcome.published.map(\.round) == [2])
    }

    /// Fewer masked inputs than the cohort minimum: the round fails before unmasking, so the
    /// sum of too few updates is never computed (found by the multi-process kill test, where
    /// a round of 3 with minimum 3 completed with 2 contributors).
    @Test func aSecureRoundWithFewerMaskedInputsThanTheMinimumFailsBeforeUnmasking() throws {
        let faults = ["site-1", "site-2"].map { InMemoryFederation.Fault(site: $0, round: 1, point: .maskedInput) }
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, minimum: 5, neighbourhood: .complete, threshold: .fraction(0.6)),
            initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(6),
            faults: faults
        ).run()
        let first = try #require(outcome.records.first { $0.round == 1 })
        #expect(first.status == .failed)
        #expect(
            first.failureReason?.contains("only 4 of 6 participants sent a masked input; the minimum is 5") == true,
            "\(first)")
        let unmaskedInRoundOne = outcome.transcript.contains {
            if case .secAgg(1, .unmaskingResponse) = $0.message { true } else { false }
        }
        #expect(!unmaskedInRoundOne, "no participant may be asked to unmask a round below the minimum")
        #expect(outcome.published.map(\.round) == [2])
    }

    @Test func stopPolicyEndsTheExperimentOnAFailedRound() throws {
        let faults = ["site-1", "site-2", "site-3", "site-4"].map {
            InMemoryFederation.Fault(site: $0, round: 1, point: .shareKeys, kind: .silent)
        }
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 3, onFailure: .stop, neighbourhood: .complete, threshold: .fraction(0.6)),
            initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(6), faults: faults
        ).run()
        #expect(outcome.records.count == 1)
        #expect(outcome.records[0].status == .failed)
        #expect(outcome.completedRounds == 0)
    }

    @Test func tooFewParticipantsForTheMinimumFailsAfterTheSelectionDeadline() throws {
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, secure: false, minimum: 5),
            initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: try RoundFixtures.agents(3)
        ).run()
        #expect(outcome.records.count == 2)
        #expect(outcome.records.allSatisfy { $0.status == .failed })
        #expect(outcome.records[0].failureReason?.contains("minimum is 5") == true)
    }

    @Test func plaintextDropoutBelowMinimumFailsButAboveItCompletes() throws {
        let w0 = try RoundFixtures.initialModel()
        let one = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 1, secure: false, minimum: 3), initialModel: w0, strategy: try FedAvg(),
            participants: try RoundFixtures.agents(4),
            faults: [InMemoryFederation.Fault(site: "site-2", round: 1, point: .training, kind: .silent)]
        ).run()
        #expect(one.records[0].status == .completed)
        #expect(one.records[0].contributors == 3)
        let two = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 1, secure: false, minimum: 3), initialModel: w0, strategy: try FedAvg(),
            participants: try RoundFixtures.agents(4),
            faults: ["site-1", "site-2"].map { InMemoryFederation.Fault(site: $0, round: 1, point: .training) }
        ).run()
        #expect(two.records[0].status == .failed)
    }

    @Test func misbehavingParticipantsAreDroppedAndTheRoundGoesOn() throws {
        // Plaintext: one site sends an update of the wrong length.
        let federation = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, secure: false), initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: try RoundFixtures.agents(4))
        federation.tamper = { site, message in
            if site == "site-2", case .update(let round, let delta, let report) = message, round == 1 {
                return .update(round: round, delta: Array(delta.dropLast()), report: report)
            }
            return message
        }
        let outcome = federation.run()
        #expect(outcome.records[0].status == .completed)
        #expect(outcome.records[0].contributors == 3)
        #expect(outcome.rejections.contains { $0.site == "site-2" && $0.reason.contains("update of") })
        #expect(outcome.records[1].contributors == 4)
    }

    @Test func secureRoundRefusesAClearUpdateAndAReplayedMessage() throws {
        var replay: ParticipantMessage?
        let federation = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, neighbourhood: .complete, threshold: .fraction(0.6)),
            initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(5))
        federation.tamper = { site, message in
            // site-4 sends a clear update instead of taking part in round 1.
            if site == "site-4", case .trained(let round, let report) = message, round == 1 {
                return .update(round: round, delta: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], report: report)
            }
            // site-5 replays its round-1 AdvertiseKeys message in round 2.
            if site == "site-5", case .secAgg(let round, .advertiseKeys) = message {
                if round == 1 { replay = message } else if let old = replay { return old }
            }
            return message
        }
        let outcome = federation.run()
        #expect(outcome.completedRounds == 2)
        #expect(
            outcome.rejections.contains {
                $0.site == "site-4" && $0.reason.contains("plaintext update in a secure round")
            })
        #expect(
            outcome.rejections.contains { $0.site == "site-5" && $0.reason.contains("round 1 arrived during round 2") })
        #expect(outcome.records[0].contributors == 4)
    }
}

@Suite struct SecureParameterFailureTests {
    /// Two participants, one of whom may drop out: no Shamir threshold of at least 2 survives
    /// that, so the round must fail with that reason instead of running on the complete graph
    /// with a threshold that no dropout could meet.
    static func plan(onFailure: FederationPlan.RoundFailurePolicy) -> FederationPlan {
        var plan = RoundFixtures.plan(rounds: 2, minimum: 2, onFailure: onFailure)
        plan.secureAggregation?.dropoutRate = 0.5
        return plan
    }

    @Test func aCohortWithoutSafeParametersFailsItsRoundWithTheReasonAndTheExperimentGoesOn() throws {
        let outcome = InMemoryFederation(
            plan: Self.plan(onFailure: .continue), initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: try RoundFixtures.agents(2)
        ).run()
        #expect(outcome.records.map(\.round) == [1, 2])
        for record in outcome.records {
            #expect(record.status == .failed)
            let reason = record.failureReason ?? ""
            #expect(reason.contains("no secure-aggregation parameters for a cohort of 2"), "\(reason)")
            #expect(reason.contains("dropout rate 0.5") && reason.contains("corruption rate 0.1"), "\(reason)")
        }
        #expect(outcome.completedRounds == 0 && outcome.published.isEmpty)
        // No participant was asked to train for a round that could not be secured.
        #expect(!outcome.transcript.contains { if case .trained = $0.message { true } else { false } })
    }

    @Test func withTheStopPolicyTheFirstSuchRoundEndsTheExperiment() throws {
        let outcome = InMemoryFederation(
            plan: Self.plan(onFailure: .stop), initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: try RoundFixtures.agents(2)
        ).run()
        #expect(outcome.records.count == 1 && outcome.records[0].status == .failed)
        #expect(outcome.records[0].failureReason?.contains("no secure-aggregation parameters") == true)
    }
}

/// What leaves a site in a secure experiment, and where each round's public randomness comes from.
@Suite struct SecureRoundTrustTests {
    @Test("Sites on the default policy release no metric in the clear; the sums still give the metrics")
    func metricsOnlyInsideTheSum() throws {
        let agents = try RoundFixtures.agents(4, policy: SitePolicy())
        let outcome = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, minimum: 3), initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg(), participants: agents
        ).run()
        #expect(outcome.completedRounds == 2, "\(outcome.records)")
        for (site, message) in outcome.transcript {
            switch message {
            case .evaluation, .update:
                Issue.record("\(site) sent metrics or an update in the clear: \(message)")
            case .trained(_, let report):
                #expect(report.loss == nil && report.accuracy == nil, "\(site) released its training metrics")
            case .failed(_, let reason):
                Issue.record("\(site) refused: \(reason)")
            case .secAgg:
                break
            }
        }
        // The secure evaluation of the final model is the sample-weighted mean of what each site
        // measures on its own held-out rows.
        let trainer = LocalTrainer(model: try RoundFixtures.architecture.build(seed: 0), loss: .softmaxCrossEntropy)
        let perSite = try agents.map { agent in
            try trainer.evaluate(parameters: outcome.finalModel, on: try #require(agent.data["risk"]?.test))
        }
        let expected = try #require(EvaluationMetrics.weightedMean(perSite))
        let last = try #require(outcome.records.last)
        #expect(abs(try #require(last.evalAccuracy) - (expected.accuracy ?? -1)) < 1e-5)
        #expect(abs(try #require(last.evalLoss) - expected.loss) < 1e-5)
        #expect(last.trainLoss != nil)
    }

    @Test("Each round records its public randomness; a simulation replays it, a deployment draws it afresh")
    func publicRandomness() throws {
        func seeds(_ randomness: FederationPlan.PublicRandomness) throws -> [String] {
            var plan = RoundFixtures.plan(rounds: 2, minimum: 3)
            plan.publicRandomness = randomness
            plan.evaluationEvery = 0
            let outcome = InMemoryFederation(
                plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
                participants: try RoundFixtures.agents(3)
            ).run()
            #expect(outcome.completedRounds == 2, "\(outcome.records)")
            return outcome.records.compactMap(\.publicSeed)
        }
        let replayed = try seeds(.fromSeed)
        #expect(replayed.count == 2 && Set(replayed).count == 2)
        #expect(replayed.allSatisfy { $0.count == 64 })
        #expect(try seeds(.fromSeed) == replayed)
        let drawn = try seeds(.system)
        let drawnAgain = try seeds(.system)
        #expect(drawn.count == 2 && drawn != replayed && drawn != drawnAgain)
    }
}
