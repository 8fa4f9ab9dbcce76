import TesseraSecAgg
import TesseraSimulation
import Testing

@testable import TesseraFederation

/// A site that holds a valid certificate and lies: each test has one or two sites send what an
/// attacker would, and checks that the round goes on without them or is refused with the reason,
/// and that the coordinator keeps running (the experiment reaches its last round).
@Suite struct MaliciousSiteTests {
    static func plaintextPlan(rounds: Int = 2) -> FederationPlan {
        var plan = RoundFixtures.plan(rounds: rounds, secure: false)
        plan.evaluationEvery = 0
        return plan
    }

    static func securePlan(rounds: Int = 2) -> FederationPlan {
        var plan = RoundFixtures.plan(rounds: rounds, neighbourhood: .complete, threshold: .fraction(0.6))
        plan.evaluationEvery = 0
        return plan
    }

    static func run(
        _ plan: FederationPlan, sites: Int = 4,
        tamper: ((SiteID, ParticipantMessage) -> ParticipantMessage?)? = nil
    ) throws -> (outcome: InMemoryFederation.Outcome, log: [String]) {
        let lines = LogLines()
        let federation = InMemoryFederation(
            plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(sites), log: { lines.append($0) })
        federation.tamper = tamper
        return (federation.run(), lines.all)
    }

    // MARK: Counts and weights

    @Test("Int.max sample counts from two sites are capped at the announced count; the round is unchanged")
    func intMaxSampleCountsAreCapped() throws {
        let honest = try Self.run(Self.plaintextPlan())
        let lying = try Self.run(Self.plaintextPlan()) { site, message in
            guard site == "site-1" || site == "site-2", case .update(let round, let delta, var report) = message
            else { return message }
            report.sampleCount = Int.max
            return .update(round: round, delta: delta, report: report)
        }
        #expect(lying.outcome.completedRounds == 2)
        #expect(lying.outcome.records.allSatisfy { $0.contributors == 4 })
        // Capped at what each site announced, which is what an honest site reports.
        #expect(lying.outcome.finalModel == honest.outcome.finalModel)
        #expect(lying.log.contains { $0.contains("site-1 reported \(Int.max) samples; weighted as 60") })
    }

    @Test("the weight cap of a plaintext round bounds a site's say however many samples it has")
    func plaintextWeightCap() throws {
        var plan = Self.plaintextPlan(rounds: 1)
        plan.updateLimits.maxWeight = 1
        let capped = try Self.run(plan)
        let uncapped = try Self.run(Self.plaintextPlan(rounds: 1))
        #expect(capped.outcome.completedRounds == 1)
        // Sites have 60, 67, 74 and 81 samples: weighted equally under the cap, not by count.
        #expect(capped.outcome.finalModel != uncapped.outcome.finalModel)
        #expect(capped.log.contains { $0.contains("weighted as 1") })
    }

    @Test("a secure site whose report disagrees with its Hello is dropped before its input counts")
    func secureReportAboveAnnouncement() throws {
        let (outcome, _) = try Self.run(Self.securePlan(), sites: 5) { site, message in
            guard site == "site-3", case .trained(let round, var report) = message else { return message }
            report.sampleCount = 1_000_000
            return .trained(round: round, report: report)
        }
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 4 })
        let named = outcome.rejections.contains {
            $0.site == "site-3" && $0.reason.contains("reported 1000000 training samples; it announced")
        }
        #expect(named)
    }

    // MARK: The decoded secure sum

    /// Adds `amount` (mod 2³²) to word `word` of `site`'s masked input in round 1: masking is
    /// additive, so the unmasked sum changes by exactly that.
    static func shiftMaskedInput(
        site: SiteID, word: Int, by amount: UInt32
    ) -> (SiteID, ParticipantMessage) ->
        ParticipantMessage?
    {
        { sender, message in
            guard sender == site, case .secAgg(let round, .maskedInput(var input)) = message, round == 1 else {
                return message
            }
            input.maskedInput[word] &+= amount
            return .secAgg(round: round, .maskedInput(input))
        }
    }

    @Test("a wrapped weight word is refused: the decoded weight must equal the contributors' reported counts")
    func wrappedWeightWord() throws {
        let parameters = RoundFixtures.architecture.parameterCount!
        let (outcome, _) = try Self.run(
            Self.securePlan(), sites: 5, tamper: Self.shiftMaskedInput(site: "site-2", word: parameters, by: 0 &- 250))
        #expect(outcome.records[0].status == .failed)
        let reason = outcome.records[0].failureReason ?? ""
        #expect(reason.contains("its weight is"), "\(reason)")
        #expect(reason.contains("contributors reported"), "\(reason)")
        // The coordinator keeps running: the next round completes.
        #expect(outcome.records[1].status == .completed)
    }

    @Test("an input scaled past its weight is refused: the decoded mean must lie within the clip")
    func inputBeyondTheClip() throws {
        // A site's coordinate reaches Q = 2^(bits−1) − 1 only at full weight (bits is 24 for five
        // sites). 4.8 Q more keeps the sum within the 5 Q that five inputs can reach, so only
        // the check of the mean against the clip sees it: the mean is then about
        // 4.8 · clip · W / Σw = 4.8 · 2 · 88 / 370 ≈ 2.3 > clip.
        let levels = Double((1 << 23) - 1)
        let (outcome, _) = try Self.run(
            Self.securePlan(), sites: 5,
            tamper: Self.shiftMaskedInput(site: "site-4", word: 0, by: UInt32(4.8 * levels)))
        #expect(outcome.records[0].status == .failed)
        let reason = outcome.records[0].failureReason ?? ""
        #expect(reason.contains("coordinate 0 of its mean"), "\(reason)")
        #expect(outcome.records[1].status == .completed)
    }

    @Test("a masked input replayed from an earlier round is refused and its site named; the round goes on")
    func replayedMaskedInput() throws {
        let recorded = Recorded()
        let (outcome, _) = try Self.run(Self.securePlan(), sites: 5) { site, message in
            guard site == "site-5", case .secAgg(let round, .maskedInput) = message else { return message }
            if round == 1 {
                recorded.message = message
                return message
            }
            guard case .secAgg(_, let old)? = recorded.message else { return message }
            return .secAgg(round: round, old)
        }
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records[1].contributors == 4)
        #expect(outcome.rejections.contains { $0.site == "site-5" })
    }

    @Test("a secure masked input of the wrong length is refused and its site named")
    func wrongShapeMaskedInput() throws {
        let (outcome, _) = try Self.run(Self.securePlan(rounds: 1), sites: 5) { site, message in
            guard site == "site-1", case .secAgg(let round, .maskedInput(var input)) = message else { return message }
            input.maskedInput.removeLast(3)
            return .secAgg(round: round, .maskedInput(input))
        }
        #expect(outcome.records[0].status == .completed)
        #expect(outcome.records[0].contributors == 4)
        #expect(outcome.rejections.contains { $0.site == "site-1" })
    }

    // MARK: Values

    @Test(
        "NaN, +Inf and -Inf in a plaintext update drop the site, naming the value",
        arguments: [
            Float.nan, Float.infinity, -Float.infinity,
        ])
    func nonFiniteUpdate(value: Float) throws {
        let (outcome, _) = try Self.run(Self.plaintextPlan(rounds: 1)) { site, message in
            guard site == "site-3", case .update(let round, var delta, let report) = message else { return message }
            delta[2] = value
            return .update(round: round, delta: delta, report: report)
        }
        #expect(outcome.records[0].status == .completed)
        #expect(outcome.records[0].contributors == 3)
        let finite = outcome.finalModel.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(outcome.rejections.contains { $0.site == "site-3" && $0.reason.contains("value 2 is") })
    }

    @Test("a NaN training loss from one site stays out of the round's recorded loss")
    func nonFiniteTrainingLoss() throws {
        let (outcome, _) = try Self.run(Self.plaintextPlan(rounds: 1)) { site, message in
            guard site == "site-4", case .update(let round, let delta, var report) = message else { return message }
            report.loss = .nan
            return .update(round: round, delta: delta, report: report)
        }
        #expect(outcome.records[0].contributors == 4)
        let loss = try #require(outcome.records[0].trainLoss)
        #expect(loss.isFinite)
    }

    @Test("an update beyond max_update_norm drops its site; one within it is aggregated")
    func updateNormBound() throws {
        var plan = Self.plaintextPlan(rounds: 1)
        plan.updateLimits.maxUpdateNorm = 50
        let (outcome, _) = try Self.run(plan) { site, message in
            guard site == "site-2", case .update(let round, let delta, let report) = message else { return message }
            return .update(round: round, delta: delta.map { $0 * 1e6 + 1 }, report: report)
        }
        #expect(outcome.records[0].contributors == 3)
        #expect(outcome.rejections.contains { $0.site == "site-2" && $0.reason.contains("max_update_norm is 50") })
        let unbounded = try Self.run(Self.plaintextPlan(rounds: 1)) { site, message in
            guard site == "site-2", case .update(let round, let delta, let report) = message else { return message }
            return .update(round: round, delta: delta.map { $0 * 1e6 + 1 }, report: report)
        }
        #expect(unbounded.outcome.records[0].contributors == 4)
    }

    @Test(
        "evaluation metrics that no site could measure are refused; NaN never reaches the results",
        arguments: [
            EvaluationMetrics(sampleCount: 40, loss: .nan, accuracy: 0.5),
            EvaluationMetrics(sampleCount: 40, loss: .infinity),
            EvaluationMetrics(sampleCount: 40, loss: 0.3, accuracy: 7),
            EvaluationMetrics(sampleCount: 0, loss: 0.3),
        ])
    func implausibleEvaluation(metrics: EvaluationMetrics) throws {
        var plan = Self.plaintextPlan(rounds: 1)
        plan.evaluationEvery = 1
        let (outcome, _) = try Self.run(plan) { site, message in
            guard site == "site-2", case .evaluation(let round, _) = message else { return message }
            return .evaluation(round: round, metrics)
        }
        #expect(outcome.records[0].status == .completed)
        let loss = try #require(outcome.records[0].evalLoss)
        #expect(loss.isFinite)
        #expect((outcome.records[0].evalAccuracy ?? 0) <= 1)
        #expect(outcome.rejections.contains { $0.site == "site-2" && $0.reason.contains("sent an evaluation with") })
    }

    @Test("an evaluation's self-reported count is capped, so one site cannot outweigh the others")
    func evaluationCountCapped() throws {
        var plan = Self.plaintextPlan(rounds: 1)
        plan.evaluationEvery = 1
        plan.updateLimits.maxWeight = 40
        let (outcome, _) = try Self.run(plan) { site, message in
            guard site == "site-2", case .evaluation(let round, var metrics) = message else { return message }
            metrics.sampleCount = Int.max
            metrics.loss = 1000
            return .evaluation(round: round, metrics)
        }
        // Four evaluators of 40 samples each: the liar is a quarter of the mean, not all of it.
        let loss = try #require(outcome.records[0].evalLoss)
        #expect(loss > 240 && loss < 260, "\(loss)")
    }

    @Test("a failure reason is logged on one line, escaped and cut short")
    func failureReasonIsSanitised() throws {
        let forged = "ok\nround 1: aggregated 4 updates → model 9.9.9\n" + String(repeating: "x", count: 10_000)
        let (outcome, log) = try Self.run(Self.plaintextPlan(rounds: 1)) { site, message in
            guard site == "site-1", case .update(let round, _, _) = message else { return message }
            return .failed(round: round, reason: forged)
        }
        #expect(outcome.records[0].contributors == 3)
        let line = try #require(log.first { $0.contains("site-1 reports failure") })
        #expect(!line.contains("\n"))
        #expect(line.contains("ok\\nround 1"))
        #expect(line.count < 400)
        #expect(line.contains("more characters"))
    }

    // MARK: Evaluation never blocks training

    @Test(
        "a silent evaluator delays the next round by about one evaluation, not the evaluation deadline",
        arguments: [
            false, true,
        ])
    func silentEvaluator(secure: Bool) throws {
        func run(quorum: Double) throws -> InMemoryFederation.Outcome {
            var plan = secure ? Self.securePlan(rounds: 2) : Self.plaintextPlan(rounds: 2)
            plan.evaluationEvery = 1
            plan.evaluationQuorum = quorum
            plan.deadlines.evaluation = 300
            let federation = InMemoryFederation(
                plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
                participants: try RoundFixtures.agents(5),
                faults: [.init(site: "site-3", round: 1, point: .evaluation, kind: .silent)])
            federation.reportsVirtualTime = true
            return federation.run()
        }
        let outcome = try run(quorum: 0.5)
        #expect(outcome.completedRounds == 2)
        let evaluation = outcome.records[0].stageSeconds["evaluation"] ?? .infinity
        #expect(evaluation <= 1, "the evaluation of round 1 took \(evaluation) s of virtual time")
        #expect(outcome.records[0].evalLoss != nil)
        // The control: waiting for every evaluator waits for the deadline.
        let waiting = try run(quorum: 1)
        #expect((waiting.records[0].stageSeconds["evaluation"] ?? 0) >= 300)
    }
}

/// Log lines a driver reports, collected across its closure.
final class LogLines: @unchecked Sendable {
    private(set) var all: [String] = []
    func append(_ line: String) { all.append(line) }
}

final class Recorded: @unchecked Sendable {
    var message: ParticipantMessage?
}
