import Foundation
import TesseraCrypto
public import TesseraPrivacy
import TesseraSecAgg
import TesseraSupport
import TesseraTensor

/// Something that happened, as seen by the coordinator.
public enum CoordinatorEvent: Sendable {
    /// Begin the experiment.
    case start
    /// A participant connected (or reconnected) and described itself.
    case participantAvailable(ParticipantDescriptor)
    /// A participant's session ended.
    case participantGone(SiteID)
    /// A message from a participant whose identity the transport established.
    case message(from: SiteID, ParticipantMessage)
    /// A deadline scheduled by ``CoordinatorAction/scheduleDeadline(token:after:)`` fired.
    case deadlinePassed(token: Int)
}

/// A model version the coordinator publishes after a completed round.
public struct PublishedModel: Sendable {
    public var experimentID: String
    public var version: ModelVersion
    public var parent: ModelVersion
    public var round: Int
    public var parameters: [Float]
    public var contributors: Int
    public var trainLoss: Double?
    /// The strategy's optimiser state, persisted with the version so a restart continues it.
    public var strategyState: StrategyState

    public init(
        experimentID: String, version: ModelVersion, parent: ModelVersion, round: Int, parameters: [Float],
        contributors: Int, trainLoss: Double?, strategyState: StrategyState
    ) {
        self.experimentID = experimentID
        self.version = version
        self.parent = parent
        self.round = round
        self.parameters = parameters
        self.contributors = contributors
        self.trainLoss = trainLoss
        self.strategyState = strategyState
    }
}

/// Something the coordinator asks its runtime to do. The state machine performs no I/O: the
/// in-memory driver and the network service carry these out.
public enum CoordinatorAction: Sendable {
    case send(to: SiteID, CoordinatorMessage)
    /// Deliver `.deadlinePassed(token:)` after `seconds`, unless the state machine has moved on
    /// (stale tokens are ignored, so cancelling is optional).
    case scheduleDeadline(token: Int, after: Double)
    /// A message was refused; tell the sender why (the round goes on).
    case reject(site: SiteID, reason: String)
    /// Register the new global model before the next round starts.
    case publish(PublishedModel)
    /// A round is about to send its first message: record that it started (its attempt and
    /// public seed) before anything of it leaves, so a restart knows to run it again afresh.
    case roundStarted(round: Int, attempt: Int, publicSeed: String)
    /// How each selected site ended the round, and the breakers as they stand after it.
    case siteOutcomes(round: Int, outcomes: [SiteID: SiteRoundOutcome], breakers: [SiteID: CircuitBreaker])
    case roundFinished(RoundRecord)
    /// A participant of the round left it in `stage` before its part was done: it disconnected,
    /// reported a failure, was dropped for misbehaving or missed the stage's deadline. Said once
    /// per site and round, for metrics and traces; the round's outcome is in its record.
    case participantLost(round: Int, site: SiteID, stage: RoundStage)
    case experimentFinished(completedRounds: Int, finalVersion: ModelVersion)
    /// A progress line for people (stage changes, dropouts, misbehaviour).
    case log(String)
}

/// The coordinator's whole round logic as a pure state machine: events in, actions out.
///
/// One instance runs one experiment. It selects a cohort per round, sends training tasks,
/// runs the secure-aggregation stages through `SecAggServer` (or collects plaintext updates
/// when secure aggregation is off), applies the strategy, publishes the model version, runs
/// evaluation on its cadence, and handles dropouts and deadlines at every stage. The same code
/// runs under the in-memory driver and behind the network service, so a simulation exercises
/// exactly what a deployment runs.
///
/// Time is passed in with every event (`now`, seconds on any monotonic clock) and used only
/// to report stage durations; deadlines are requested as actions. A runner on real time also
/// sets ``clock`` (the same clock as `now`), so that the machine's own computation — unmasking,
/// decoding, the strategy step — is counted in the aggregation stage rather than in the next
/// round's first stage.
public struct CoordinatorStateMachine: Sendable {
    public let plan: FederationPlan
    public private(set) var globalModel: [Float]
    public private(set) var version: ModelVersion
    public private(set) var round: Int
    public private(set) var completedRounds = 0
    /// The records of the rounds that finished, in order: every one, or the latest
    /// ``recordLimit`` of them.
    public private(set) var records: [RoundRecord] = []
    /// How many of the latest records ``records`` keeps; `nil` keeps all. A coordinator whose
    /// records are committed to its state database sets a limit, so that its memory does not
    /// grow with the rounds it has run: the results are written from the database.
    public var recordLimit: Int? {
        didSet { trimRecords() }
    }
    public private(set) var isFinished = false
    /// Connected participants (the registry selection draws from).
    public private(set) var available: [SiteID: ParticipantDescriptor] = [:]
    /// Each site's circuit breaker, on this machine's clock (`now`). Selection skips a site
    /// whose breaker is open; the runtime seeds it from the participant registry.
    public var breakers: [SiteID: CircuitBreaker] = [:]
    /// The attempt of the round that starts next: 0 normally; a restarted coordinator runs the
    /// round it abandoned again as a later attempt, with fresh public randomness.
    private var pendingAttempt = 0
    /// The attempt of the current round (see ``ResumePoint/nextAttempt``).
    public private(set) var attempt = 0
    /// Differential privacy: every round charged so far (charged when its cohort is drawn,
    /// before anything is sent, so a failed round is never free).
    public internal(set) var privacyAccountant = PrivacyAccountant()
    /// Differential privacy: the clip norm the next round announces.
    public internal(set) var clipNorm: Double
    /// The next round would exceed the privacy budget and the plan says to fail it: the
    /// experiment ends.
    var budgetExhausted = false

    /// Reads the clock that `now` comes from, after the aggregation's computation; `nil` (a
    /// driver on virtual time) counts that computation as instantaneous.
    public var clock: (@Sendable () -> Double)?

    private var strategy: any FederatedStrategy
    private var storedPhase: Phase = .notStarted
    private var nextToken = 0
    private var activeToken = -1

    private enum Phase: Sendable {
        case notStarted
        case waitingForParticipants(since: Double)
        case running(RoundContext)
        case finished
        /// The round is taken out of the phase while it is worked on in place, so that its
        /// running sums have a single reference and are not copied. Only ``takeRunningRound()``
        /// sets it, and the same event puts a phase back before anything reads it.
        case _modifying
    }

    /// The stage of the round in progress (for log lines); `nil` between rounds.
    public var currentStage: RoundStage? {
        if case .running(let context) = storedPhase { return context.stage }
        return nil
    }

    /// The round in progress as a dashboard shows it (see ``StageProgress``); `nil` between rounds.
    public var stageProgress: StageProgress? {
        guard case .running(let context) = storedPhase else { return nil }
        let current = context.currentStageAnswers
        return StageProgress(
            round: context.round, attempt: attempt, stage: context.stage, cohortSize: context.cohort.count,
            asked: current.asked, answered: current.answered, dropouts: context.gone.union(context.dropped).count,
            stageStartedAt: context.stageStartedAt,
            stageDeadline: context.stageStartedAt + plan.deadlines.seconds(for: context.stage),
            finishedStages: context.finishedStages)
    }

    /// Since when the machine waits for enough eligible participants to start a round (on its
    /// clock); `nil` while a round runs, before the start and after the end.
    public var waitingForParticipantsSince: Double? {
        if case .waitingForParticipants(let since) = storedPhase { return since }
        return nil
    }

    /// Where the experiment is. Reading it while a round is taken out is a programming error.
    private var phase: Phase {
        get {
            if case ._modifying = storedPhase {
                preconditionFailure("the coordinator's phase was read while its round was taken out of it")
            }
            return storedPhase
        }
        set { storedPhase = newValue }
    }

    /// Leaves `._modifying` in place of the running round, so that the caller's copy of the
    /// round (taken from `phase` before) is its only reference. The caller sets `phase` again
    /// before it returns.
    private mutating func takeRunningRound() {
        guard case .running = storedPhase else {
            preconditionFailure("a round can be taken out only while it runs")
        }
        storedPhase = ._modifying
    }

    /// - Parameters:
    ///   - initialModel: the global model of round 1 (or of the round after `completedRounds`).
    ///   - completedRounds: rounds already completed (a restarted coordinator resumes after them).
    public init(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, completedRounds: Int = 0
    ) {
        self.plan = plan
        self.globalModel = initialModel
        self.strategy = strategy
        self.completedRounds = completedRounds
        self.round = completedRounds
        self.version = ModelVersion(major: plan.versionMajor, minor: plan.versionMinor, patch: completedRounds)
        self.clipNorm = plan.privacy?.initialClipNorm ?? 1
    }

    /// Where a restarted coordinator picks an experiment up.
    public struct ResumePoint: Sendable {
        /// The records of every round that finished (completed or failed), in order.
        public var records: [RoundRecord]
        /// The attempt the next round starts as: one more than the attempts already made of it,
        /// so an abandoned round never reuses its public randomness.
        public var nextAttempt: Int

        public init(records: [RoundRecord], nextAttempt: Int) {
            self.records = records
            self.nextAttempt = nextAttempt
        }
    }

    private mutating func appendRecord(_ record: RoundRecord) {
        records.append(record)
        trimRecords()
    }

    private mutating func trimRecords() {
        if let recordLimit, records.count > max(0, recordLimit) {
            records.removeFirst(records.count - max(0, recordLimit))
        }
    }

    /// A machine that resumes after the finished rounds of `resume`, from `model` (the model of
    /// the last completed round) and a strategy already restored to its state then.
    public init(plan: FederationPlan, model: [Float], strategy: any FederatedStrategy, resume: ResumePoint) {
        let completed = resume.records.filter { $0.status == .completed }.count
        self.init(plan: plan, initialModel: model, strategy: strategy, completedRounds: completed)
        self.records = resume.records
        self.round = resume.records.map(\.round).max() ?? 0
        self.pendingAttempt = max(0, resume.nextAttempt)
        for record in resume.records {
            guard let charged = record.privacy else { continue }
            privacyAccountant.compose(charged.mechanism, samplingRate: charged.samplingRate)
            clipNorm = charged.nextClipNorm
        }
    }

    // MARK: Events

    public mutating func handle(_ event: CoordinatorEvent, now: Double) -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        switch event {
        case .start:
            guard case .notStarted = phase else { return [] }
            actions.append(
                .log(
                    "experiment \(plan.experimentID): \(plan.rounds) rounds of \(plan.architecture.summary), "
                        + (plan.secureAggregation == nil ? "plaintext aggregation" : "secure aggregation")))
            startNextRound(now: now, into: &actions)
        case .participantAvailable(let descriptor):
            available[descriptor.site] = descriptor
            if case .waitingForParticipants = phase { tryToSelect(now: now, into: &actions) }
        case .participantGone(let site):
            available[site] = nil
            if case .running(var context) = phase,
                context.cohort.contains(site) || context.evaluators.contains(site), !context.gone.contains(site)
            {
                context.gone.insert(site)
                Self.lose(site, in: &context, into: &actions)
                actions.append(.log("round \(context.round): \(site) disconnected during \(context.stage.rawValue)"))
                phase = .running(context)
                closeStageIfComplete(now: now, into: &actions)
            }
        case .message(let site, let message):
            receive(message, from: site, now: now, into: &actions)
        case .deadlinePassed(let token):
            guard token == activeToken else { return [] }
            deadlinePassed(now: now, into: &actions)
        }
        return actions
    }

    // MARK: Rounds

    private mutating func scheduleDeadline(_ seconds: Double, into actions: inout [CoordinatorAction]) {
        nextToken += 1
        activeToken = nextToken
        actions.append(.scheduleDeadline(token: activeToken, after: seconds))
    }

    /// Participants that can take part: they offer the dataset, and in the active-adversary
    /// setting they have a signing credential.
    private func eligible(at now: Double) -> [ParticipantDescriptor] {
        CohortSelection.eligible(candidates(at: now), dataset: plan.datasetName)
    }

    /// The connected sites whose breaker allows selection (and, in the active-adversary
    /// setting, that have a signing credential).
    private func candidates(at now: Double) -> [ParticipantDescriptor] {
        available.values.filter { descriptor in
            if plan.secureAggregation?.activeAdversary == true, descriptor.signing == nil { return false }
            return breakers[descriptor.site]?.allowsSelection(at: now) ?? true
        }
    }

    private mutating func startNextRound(now: Double, into actions: inout [CoordinatorAction]) {
        guard completedRounds < plan.rounds, round < plan.rounds, !budgetExhausted else {
            finish(into: &actions)
            return
        }
        round += 1
        attempt = pendingAttempt
        pendingAttempt = 0
        phase = .waitingForParticipants(since: now)
        scheduleDeadline(plan.deadlines.selection, into: &actions)
        tryToSelect(now: now, into: &actions)
    }

    private mutating func tryToSelect(now: Double, into actions: inout [CoordinatorAction]) {
        guard case .waitingForParticipants(let since) = phase else { return }
        let randomness = RoundRandomness(plan: plan, round: round, attempt: attempt)
        var random = randomness.generator("cohort")
        let selection: CohortSelection
        if let privacy = plan.privacy {
            // Poisson sampling draws once, when enough sites are there to make a round possible.
            let candidates = candidates(at: now)
            guard CohortSelection.eligible(candidates, dataset: plan.datasetName).count >= plan.selection.minimum
            else { return }
            selection = CohortSelection.poisson(
                from: candidates, dataset: plan.datasetName, rate: privacy.samplingRate, random: &random)
        } else {
            do {
                selection = try CohortSelection.select(
                    from: candidates(at: now), dataset: plan.datasetName, rule: plan.selection, random: &random)
            } catch {
                // `available` is keyed by site, so no site is listed twice: there are too few eligible
                // participants, and the round waits for more until its selection deadline.
                precondition(error.code == .tooFewEligible, "\(error)")
                return
            }
        }
        let cohort = selection.cohort
        var context = RoundContext(
            round: round, cohort: cohort, target: selection.target, startedAt: since, stageStartedAt: now,
            stage: .training, randomness: randomness)
        context.stageSeconds[RoundStage.selection.rawValue] = now - since
        if let privacy = plan.privacy {
            context.expectedCohort = privacy.samplingRate * Double(selection.eligibleCount)
            guard cohort.count >= plan.selection.minimum else {
                failRound(
                    context,
                    reason:
                        "the Poisson sample drew \(cohort.count) of \(selection.eligibleCount) eligible sites (rate "
                        + "\(privacy.samplingRate)); the minimum is \(plan.selection.minimum)",
                    now: now, into: &actions)
                return
            }
        }
        for site in cohort { context.announced[site] = available[site]?.datasets[plan.datasetName] ?? 0 }
        if plan.secureAggregation == nil, !strategy.requiresIndividualUpdates { context.plaintextSum = PlaintextSum() }
        var task = plan.training
        if let secure = plan.secureAggregation {
            do {
                context.secure = try secureRound(
                    secure, purpose: .training, roster: cohort, randomness: randomness,
                    vectorLength: globalModel.count)
            } catch {
                failRound(
                    context, reason: "cannot set up secure aggregation for \(cohort.count) participants: \(error)",
                    now: now, into: &actions)
                return
            }
        }
        if let privacy = plan.privacy {
            guard chargePrivacy(privacy, context: &context, now: now, into: &actions) else { return }
        }
        actions.append(
            .log(
                "round \(round): selected \(cohort.count) of \(selection.eligibleCount) eligible participants (target \(selection.target))"
            ))
        actions.append(.roundStarted(round: round, attempt: attempt, publicSeed: randomness.hex))
        for (offset, site) in cohort.enumerated() {
            task.seed = Self.trainingSeed(experimentSeed: plan.seed, round: round, position: offset)
            let secure = context.secure?.assignment(forIndex: UInt32(offset + 1))
            actions.append(
                .send(
                    to: site,
                    .train(
                        TrainInstruction(
                            experimentID: plan.experimentID, round: round, modelVersion: version,
                            architecture: plan.architecture, datasetName: plan.datasetName, parameters: globalModel,
                            task: task, secure: secure, privacy: context.privacy))))
        }
        context.expected = Set(cohort)
        phase = .running(context)
        scheduleDeadline(plan.deadlines.training, into: &actions)
    }

    /// Sets up a SecAgg session over `roster` (protocol ids are positions in it, from 1): the
    /// public parameters, the graph seed (committed to, revealed at ShareKeys), the signing
    /// credentials of the active setting, and the server state machine.
    private func secureRound(
        _ secure: FederationPlan.SecureAggregation, purpose: SecureRound.Purpose, roster: [SiteID],
        randomness: RoundRandomness, vectorLength: Int
    ) throws -> SecureRound {
        let n = roster.count
        let parameters = try secure.roundParameters(cohortSize: n)
        let label = purpose == .training ? "training" : "evaluation"
        let graphSeed = randomness.bytes("graph seed, \(label)")
        let graph = parameters.graphKind(seed: graphSeed)
        var commitment: [UInt8]?
        if case .harary = graph { commitment = SHA256.hash(graphSeed) }
        let bits = secure.bits ?? min(24, 31 - Int(ceil(log2(Double(n + 1)))))
        let counts = roster.map { available[$0]?.datasets[plan.datasetName] ?? 1 }
        var maxWeight = secure.maxWeight ?? UInt32(clamping: max(1, counts.max() ?? 1))
        var clip = secure.clip
        var metricCount = purpose == .training ? SecureMetricsLayout.training : SecureMetricsLayout.evaluation
        var privacy: RoundPrivacy?
        if purpose == .training, let dp = plan.privacy {
            // Every site counts once (user-level DP), and no training metric leaves a site: the
            // noise covers the update alone. Central mode's codec clips coordinates at the L2 norm,
            // which no coordinate of a clipped update exceeds.
            maxWeight = 1
            clip = clipNorm
            privacy = roundPrivacy(dp, randomness: randomness)
            metricCount = dp.adaptive != nil ? 1 : 0
            if dp.mode == .distributed {
                metricCount = 0
                privacy!.distributed = try DistributedSkellam.calibrate(
                    dimension: vectorLength, clipNorm: clipNorm, noiseMultiplier: dp.noiseMultiplier,
                    minimumSurvivors: parameters.threshold, maximumCohort: n, bitNoise: dp.countNoise)
            }
        }
        var credentials: [UInt32: [UInt8]] = [:]
        var verificationKeys: [UInt32: Ed25519PublicKey] = [:]
        if secure.activeAdversary {
            for (offset, site) in roster.enumerated() {
                guard let signing = available[site]?.signing else {
                    throw SecureRoundSetupError("\(site) has no signing credential for the active-adversary setting")
                }
                credentials[UInt32(offset + 1)] = signing.certificate
                verificationKeys[UInt32(offset + 1)] = try Ed25519PublicKey(rawRepresentation: signing.publicKey)
            }
        }
        let assignment = SecureRoundAssignment(
            roundID: randomness.word("secagg round id, \(label)"), participantIndex: 0, rosterSize: n, graph: graph,
            threshold: parameters.threshold, clip: clip, bits: bits, maxWeight: maxWeight,
            activeAdversary: secure.activeAdversary, credentials: credentials, graphSeedCommitment: commitment,
            metricCount: metricCount)
        let configuration: SecAggConfiguration
        if let distributed = privacy?.distributed {
            configuration = try assignment.sessionConfiguration(
                words: distributed.words, verificationKeys: verificationKeys)
        } else if purpose == .training {
            configuration = try assignment.configuration(vectorLength: vectorLength, verificationKeys: verificationKeys)
        } else {
            configuration = try assignment.evaluationConfiguration(verificationKeys: verificationKeys)
        }
        return SecureRound(
            purpose: purpose, roster: roster, server: SecAggServer(configuration: configuration),
            codec: try assignment.codec(), assignment: assignment, privacy: privacy)
    }

    /// The batch-order seed of the participant at `position` (0-based, in the sorted cohort)
    /// in `round`: distinct per round and participant, reproducible from the experiment seed.
    public static func trainingSeed(experimentSeed: UInt64, round: Int, position: Int) -> UInt64 {
        experimentSeed ^ (UInt64(round) << 32) ^ (UInt64(position + 1) &* 0xA24B_AED4_963E_E407)
    }

    // MARK: Messages

    private mutating func receive(
        _ message: ParticipantMessage, from site: SiteID, now: Double, into actions: inout [CoordinatorAction]
    ) {
        guard case .running(var context) = phase else {
            actions.append(
                .reject(site: site, reason: "no round is running; message for round \(message.round) ignored"))
            return
        }
        guard message.round == context.round else {
            actions.append(
                .reject(
                    site: site,
                    reason: "message for round \(message.round) arrived during round \(context.round); ignored"))
            return
        }
        guard context.cohort.contains(site) || context.evaluators.contains(site) else {
            actions.append(.reject(site: site, reason: "\(site) is not part of round \(context.round)"))
            return
        }
        if context.gone.contains(site) || context.dropped.contains(site) {
            actions.append(.reject(site: site, reason: "\(site) already left round \(context.round)"))
            return
        }
        switch message {
        case .failed(_, let reason):
            actions.append(
                .log("round \(context.round): \(site) reports failure: \(UntrustedText.loggable(reason))"))
            context.dropped.insert(site)
            Self.lose(site, in: &context, into: &actions)
        case .trained(_, let report):
            guard context.secure != nil, context.stage == .training else {
                actions.append(.reject(site: site, reason: "unexpected training report in \(context.stage.rawValue)"))
                return
            }
            let announced = context.announced[site] ?? 0
            guard report.sampleCount >= 1, report.sampleCount <= announced else {
                // The decoded sum is checked against these counts (see `checkDecodedWeight`), so a
                // count that disagrees with the Hello would refuse the whole round: the site goes.
                drop(
                    site, from: &context,
                    reason:
                        "reported \(report.sampleCount) training samples; it announced \(announced) when it connected",
                    into: &actions)
                break
            }
            context.reports[site] = report
            phase = .running(context)
            return  // the AdvertiseKeys message that follows counts as the submission
        case .update(_, let delta, let report):
            guard context.secure == nil else {
                // Never accept a clear update in a secure round.
                drop(site, from: &context, reason: "sent a plaintext update in a secure round", into: &actions)
                break
            }
            guard context.stage == .training, !context.submitted.contains(site) else {
                actions.append(.reject(site: site, reason: "duplicate or late update in \(context.stage.rawValue)"))
                return
            }
            guard delta.count == globalModel.count else {
                drop(
                    site, from: &context,
                    reason: "sent an update of \(delta.count) values; the model has \(globalModel.count)",
                    into: &actions)
                break
            }
            if let index = Aggregation.firstNonFiniteIndex(delta) {
                drop(
                    site, from: &context, reason: "sent an update whose value \(index) is \(delta[index])",
                    into: &actions)
                break
            }
            guard report.sampleCount > 0 else {
                drop(site, from: &context, reason: "reported \(report.sampleCount) training samples", into: &actions)
                break
            }
            var delta = delta
            if let privacy = context.privacy {
                // The sensitivity the accountant assumes holds here, whatever the site did.
                let norm = Clipping.clip(&delta, to: privacy.clipNorm)
                if norm > privacy.clipNorm * (1 + 1e-6) {
                    actions.append(
                        .log(
                            "round \(context.round): \(site) sent an update of norm \(norm) above the clip norm "
                                + "\(privacy.clipNorm); clipped"))
                }
                if norm < privacy.clipNorm * (1 - 1e-6) { context.withinClip += 1 }
            } else if let bound = plan.updateLimits.maxUpdateNorm {
                let norm = Aggregation.l2Norm(delta)
                guard norm <= bound else {
                    drop(
                        site, from: &context,
                        reason: "sent an update of L2 norm \(norm); max_update_norm is \(bound)", into: &actions)
                    break
                }
            }
            var report = report
            let announced = context.announced[site] ?? 0
            // Under differential privacy every site counts once.
            let weight =
                context.privacy != nil
                ? min(1, announced) : min(report.sampleCount, announced, plan.updateLimits.maxWeight)
            if weight < report.sampleCount, context.privacy == nil {
                actions.append(
                    .log(
                        "round \(context.round): \(site) reported \(report.sampleCount) samples; weighted as \(weight) "
                            + "(announced \(announced) when it connected, max_weight \(plan.updateLimits.maxWeight))"))
                report.sampleCount = weight
            }
            guard weight > 0 else {
                drop(site, from: &context, reason: "announced no samples of \(plan.datasetName)", into: &actions)
                break
            }
            if context.plaintextSum != nil {
                // Added now and not kept. The round's state is out of `phase` (put back below)
                // so that the running sum has a single reference and is added to in place.
                takeRunningRound()
                context.plaintextSum!.add(delta, weight: UInt32(clamping: weight), from: site)
            } else {
                context.updates.append(ClientUpdate(delta: delta, sampleCount: weight, participant: site))
            }
            context.reports[site] = report
            context.submitted.insert(site)
        case .secAgg(_, let secAggMessage):
            guard context.secure != nil, let index = context.index(of: site) else {
                actions.append(.reject(site: site, reason: "secure-aggregation message in a plaintext round"))
                return
            }
            // The round's state is taken out of `phase` (put back below), so that the server's
            // running sum has a single reference: adding a masked input into it then copies
            // nothing. Copied, it cost a model-sized allocation and copy per masked input.
            takeRunningRound()
            var secure = context.secure.take()!
            do {
                try secure.server.receive(secAggMessage, from: index)
                context.submitted.insert(site)
            } catch {
                // The server already excluded the sender; it is out of this round.
                context.secure = secure
                drop(site, from: &context, reason: "\(error)", into: &actions)
                break
            }
            context.secure = secure
        case .evaluation(_, let metrics):
            guard context.plaintextEvaluation, context.evaluators.contains(site), context.evaluations[site] == nil
            else {
                actions.append(.reject(site: site, reason: "unexpected evaluation result in \(context.stage.rawValue)"))
                return
            }
            if let problem = metrics.implausibility {
                drop(site, from: &context, reason: "sent an evaluation with \(problem)", into: &actions)
                break
            }
            var metrics = metrics
            metrics.sampleCount = min(metrics.sampleCount, plan.updateLimits.maxWeight)
            context.evaluations[site] = metrics
        }
        phase = .running(context)
        scheduleStragglerGraceIfQuorum(now: now, into: &actions)
        closeStageIfComplete(now: now, into: &actions)
    }

    /// In an evaluation, once ``FederationPlan/evaluationQuorum`` of the stage's participants
    /// have answered, the rest get as long again as those took (within the stage's deadline):
    /// a silent evaluator then delays the next round by about one evaluation.
    private mutating func scheduleStragglerGraceIfQuorum(now: Double, into actions: inout [CoordinatorAction]) {
        guard case .running(var context) = phase, !context.stragglerGraceScheduled else { return }
        let answered: Int
        let asked: Int
        if context.plaintextEvaluation {
            answered = context.evaluations.count
            asked = context.evaluators.count
        } else if context.secure?.purpose == .evaluation {
            answered = context.submitted.count
            asked = context.expected.count
        } else {
            return
        }
        let quorum = max(1, Int((plan.evaluationQuorum * Double(asked) - 1e-9).rounded(.up)))
        guard answered >= quorum, answered < asked else { return }
        let elapsed = now - context.stageStartedAt
        let remaining = context.stageStartedAt + plan.deadlines.seconds(for: context.stage) - now
        context.stragglerGraceScheduled = true
        phase = .running(context)
        scheduleDeadline(max(0, min(max(1, elapsed), remaining)), into: &actions)
    }

    /// Says once per site and round that `site` left the round in its current stage.
    private static func lose(_ site: SiteID, in context: inout RoundContext, into actions: inout [CoordinatorAction]) {
        if context.lost.insert(site).inserted {
            actions.append(.participantLost(round: context.round, site: site, stage: context.stage))
        }
    }

    private mutating func drop(
        _ site: SiteID, from context: inout RoundContext, reason: String, into actions: inout [CoordinatorAction]
    ) {
        context.dropped.insert(site)
        Self.lose(site, in: &context, into: &actions)
        actions.append(.reject(site: site, reason: reason))
        actions.append(.send(to: site, .leaveRound(round: context.round, reason: reason)))
        actions.append(.log("round \(context.round): dropped \(site): \(reason)"))
    }

    // MARK: Stage transitions

    private mutating func closeStageIfComplete(now: Double, into actions: inout [CoordinatorAction]) {
        guard case .running(let context) = phase else { return }
        let waiting = context.plaintextEvaluation ? context.evaluators : context.expected
        let outstanding = waiting.subtracting(context.submitted).subtracting(context.gone).subtracting(context.dropped)
        let trainingTargetMet =
            context.stage == .training && context.submitted.count >= context.target && context.secure == nil
        if context.plaintextEvaluation {
            let pending = context.evaluators.filter {
                context.evaluations[$0] == nil && !context.gone.contains($0) && !context.dropped.contains($0)
            }
            if pending.isEmpty { closeStage(now: now, into: &actions) }
            return
        }
        if outstanding.isEmpty || trainingTargetMet { closeStage(now: now, into: &actions) }
    }

    private mutating func deadlinePassed(now: Double, into actions: inout [CoordinatorAction]) {
        switch phase {
        case .waitingForParticipants(let since):
            let context = RoundContext(
                round: round, cohort: [], target: 0, startedAt: since, stageStartedAt: since, stage: .selection,
                randomness: RoundRandomness(plan: plan, round: round, attempt: attempt))
            let eligibleNow = eligible(at: now)
            var reason =
                "only \(eligibleNow.count) eligible participants after \(Int(plan.deadlines.selection)) s; the minimum is \(plan.selection.minimum)"
            let benched = CohortSelection.eligible(available.values, dataset: plan.datasetName)
                .filter { !(breakers[$0.site]?.allowsSelection(at: now) ?? true) }.count
            let unsigned =
                CohortSelection.eligible(available.values, dataset: plan.datasetName).count - eligibleNow.count
                - benched
            if unsigned > 0 {
                reason +=
                    " (\(unsigned) more connected without a signing certificate, which the active-adversary setting needs)"
            }
            if benched > 0 { reason += " (\(benched) more benched by their circuit breaker)" }
            failRound(context, reason: reason, now: now, into: &actions)
        case .running(let context):
            let late = (context.plaintextEvaluation ? context.evaluators : context.expected)
                .subtracting(context.submitted).subtracting(context.gone).subtracting(context.dropped)
                .filter { !context.plaintextEvaluation || context.evaluations[$0] == nil }
            if !late.isEmpty {
                actions.append(
                    .log(
                        "round \(context.round): deadline of \(context.stage.rawValue) passed; \(late.count) late: \(late.sorted().joined(separator: ", "))"
                    ))
                var context = context
                for site in late.sorted() { Self.lose(site, in: &context, into: &actions) }
                phase = .running(context)
                if !context.plaintextEvaluation {
                    for site in late {
                        actions.append(
                            .send(
                                to: site,
                                .leaveRound(
                                    round: context.round, reason: "missed the \(context.stage.rawValue) deadline")))
                    }
                }
            }
            closeStage(now: now, into: &actions)
        case .notStarted, .finished:
            break
        case ._modifying:
            preconditionFailure("unreachable: `phase` never reads as ._modifying")
        }
    }

    private mutating func closeStage(now: Double, into actions: inout [CoordinatorAction]) {
        guard case .running(var context) = phase else { return }
        context.stageSeconds[context.stage.rawValue, default: 0] += now - context.stageStartedAt
        context.stageStartedAt = now
        context.finishedStages.append(context.currentStageAnswers)
        if context.plaintextEvaluation {
            finishEvaluation(context, now: now, into: &actions)
            return
        }
        if context.secure != nil {
            // Taken out as in `receive`: unmasking works on the running sum in place. Every
            // branch below sets `phase` again.
            takeRunningRound()
            var secure = context.secure.take()!
            let step: SecAggServer.Step
            do {
                step = try secure.server.closeStage()
            } catch {
                context.secure = secure
                failSecureRound(context, reason: "secure aggregation aborted: \(error)", now: now, into: &actions)
                return
            }
            context.secure = secure
            switch step {
            case .requests(let requests):
                let stage = Self.stage(after: context.stage, requests: requests)
                // Unmasking is asked of the participants whose masked input arrived: the sum of
                // fewer than the cohort minimum must not be computed, let alone published (with
                // two contributors, each could subtract its own update and learn the other's).
                if stage == .unmasking || stage == .consistencyCheck, requests.count < plan.selection.minimum {
                    failSecureRound(
                        context,
                        reason:
                            "only \(requests.count) of \(context.cohort.count) participants sent a masked input; the minimum is \(plan.selection.minimum)",
                        now: now, into: &actions)
                    return
                }
                context.stage = stage
                context.submitted = []
                context.expected = []
                context.stragglerGraceScheduled = false
                for request in requests {
                    guard let site = context.site(ofIndex: request.recipient) else { continue }
                    context.expected.insert(site)
                    actions.append(.send(to: site, .secAgg(round: context.round, request)))
                }
                actions.append(
                    .log(
                        "round \(context.round): \(secure.purpose == .evaluation ? "evaluation " : "")\(stage.rawValue) with \(context.expected.count) participants"
                    ))
                phase = .running(context)
                scheduleDeadline(plan.deadlines.seconds(for: stage), into: &actions)
                closeStageIfComplete(now: now, into: &actions)
            case .finished(let result):
                for corrupt in result.corruptShares {
                    let holder = context.site(ofIndex: corrupt.holder) ?? "participant \(corrupt.holder)"
                    let owner = context.site(ofIndex: corrupt.owner) ?? "participant \(corrupt.owner)"
                    actions.append(
                        .log(
                            "round \(context.round): \(holder) returned a corrupt \(corrupt.kind) share of \(owner); excluded"
                        ))
                }
                if secure.purpose == .training, let privacy = secure.privacy {
                    context.contributors = result.survivors.compactMap { context.site(ofIndex: $0) }
                    let decoded: (sum: [Double], withinClip: Double?)
                    do {
                        decoded = try decodePrivateSum(result, secure: secure, privacy: privacy, context: context)
                    } catch {
                        failSecureRound(
                            context, reason: "the aggregate could not be decoded: \(error)", now: now, into: &actions)
                        return
                    }
                    finishPrivateRound(
                        context, sum: decoded.sum, withinClip: decoded.withinClip, now: now, into: &actions)
                    return
                }
                let metrics = (try? secure.assignment.metrics()) ?? (try! MetricsEncoding(count: 0))
                let updateWords = result.sum.count - metrics.wordCount
                let mean: [Float]
                let means: [Double?]
                let totalWeight: Double
                do {
                    (totalWeight, means) = try metrics.decode(
                        result.sum[updateWords...], inputCount: result.survivors.count)
                    if secure.purpose == .training {
                        let decoded = try secure.codec.decode(
                            sum: Array(result.sum[..<updateWords]), inputCount: result.survivors.count)
                        try Self.checkDecoded(
                            decoded, metricsWeight: totalWeight, codec: secure.codec,
                            expectedWeight: context.expectedWeight(
                                of: result.survivors, maxWeight: secure.codec.maxWeight))
                        mean = decoded.mean.map { Float($0) }
                    } else {
                        mean = []
                    }
                } catch {
                    failSecureRound(
                        context, reason: "the aggregate could not be decoded: \(error)", now: now, into: &actions)
                    return
                }
                if secure.purpose == .evaluation {
                    context.secure = nil
                    let evaluation = EvaluationMetrics(
                        sampleCount: totalWeight < Double(Int.max) ? Int(totalWeight) : Int.max,
                        loss: means.first.flatMap { $0 } ?? .nan,
                        accuracy: means.count > 1 ? means[1] : nil, auc: means.count > 2 ? means[2] : nil)
                    if let problem = evaluation.implausibility {
                        actions.append(
                            .log(
                                "round \(context.round): no evaluation: the secure sum of \(result.survivors.count) evaluators decoded to \(problem)"
                            ))
                    } else {
                        context.evaluation = evaluation
                        actions.append(
                            .log("round \(context.round): evaluated securely by \(result.survivors.count) participants")
                        )
                    }
                    completeRound(context, now: now, into: &actions)
                    return
                }
                let loss = means.first.flatMap { $0 }
                if let loss, !(loss.isFinite && loss >= 0) {
                    actions.append(
                        .log("round \(context.round): the decoded training loss is \(loss); it is not recorded"))
                } else {
                    context.trainLoss = loss
                }
                context.contributors = result.survivors.compactMap { context.site(ofIndex: $0) }
                aggregate(context, .mean(mean), now: now, into: &actions)
            }
        } else {
            // Updates arrive in any order; the strategy sees them sorted by site, so that its
            // result (a robust rule's tie-breaks, the loss mean) is a function of the updates alone.
            context.updates.sort { ($0.participant ?? "") < ($1.participant ?? "") }
            context.contributors = context.plaintextSum?.contributors ?? context.updates.compactMap(\.participant)
            guard context.contributors.count >= max(1, plan.selection.minimum) else {
                failRound(
                    context,
                    reason:
                        "only \(context.contributors.count) of \(context.cohort.count) participants sent an update; the minimum is \(plan.selection.minimum)",
                    now: now, into: &actions)
                return
            }
            if let sum = context.plaintextSum, context.privacy != nil {
                let total = sum.mean.map { Double($0) * Double(context.contributors.count) }
                finishPrivateRound(
                    context, sum: total, withinClip: Double(context.withinClip), now: now, into: &actions)
            } else if let sum = context.plaintextSum {
                aggregate(context, .mean(sum.mean), now: now, into: &actions)
            } else {
                aggregate(context, .individual(context.updates), now: now, into: &actions)
            }
        }
    }

    /// Refuses a decoded secure sum that honest contributors could not have produced: its
    /// weight must be exactly `Σ min(nᵢ, W)` of the contributors' reported counts (in the update
    /// and in the metrics block alike), and every coordinate of the mean must lie within the
    /// clip plus the quantization error. A site that wrote a wrapped weight word, or scaled its
    /// input past its weight, would otherwise multiply the published mean.
    static func checkDecoded(
        _ decoded: QuantizationCodec.Aggregate, metricsWeight: Double, codec: QuantizationCodec, expectedWeight: UInt64
    ) throws(DecodedSumError) {
        guard decoded.totalWeight == expectedWeight else {
            throw DecodedSumError(
                "its weight is \(decoded.totalWeight), but the \(decoded.inputCount) contributors reported "
                    + "\(expectedWeight) samples (each capped at \(codec.maxWeight)): a contributor encoded another weight"
            )
        }
        guard metricsWeight == Double(expectedWeight) else {
            throw DecodedSumError(
                "the weight of its metrics block is \(metricsWeight), but the contributors reported \(expectedWeight) samples"
            )
        }
        let bound =
            (codec.clip + codec.errorBound(inputCount: decoded.inputCount, totalWeight: decoded.totalWeight))
            * (1 + 1e-9)
        if let index = decoded.mean.firstIndex(where: { !(abs($0) <= bound) }) {
            throw DecodedSumError(
                "coordinate \(index) of its mean is \(decoded.mean[index]), outside ±\(bound) (the clip \(codec.clip) "
                    + "plus the quantization error): a contributor's input exceeds its weight")
        }
    }

    /// The round stage a batch of server requests opens.
    private static func stage(after stage: RoundStage, requests: [SecAggMessage]) -> RoundStage {
        switch requests.first?.stage {
        case .some(.shareKeys): .shareKeys
        case .some(.maskedInputCollection): .maskedInput
        case .some(.consistencyCheck): .consistencyCheck
        case .some(.unmasking): .unmasking
        default: stage
        }
    }

    mutating func aggregate(
        _ context: RoundContext, _ aggregate: RoundAggregate, now: Double, into actions: inout [CoordinatorAction]
    ) {
        var context = context
        let parent = version
        let newModel: [Float]
        do {
            newModel = try strategy.step(global: globalModel, aggregate: aggregate)
        } catch {
            failRound(context, reason: "the strategy could not apply the round: \(error)", now: now, into: &actions)
            return
        }
        globalModel = newModel
        completedRounds += 1
        version = ModelVersion(major: plan.versionMajor, minor: plan.versionMinor, patch: completedRounds)
        // The stage began when the last stage closed (`now`), before unmasking and decoding.
        let finished = max(now, clock?() ?? now)
        context.stageSeconds[RoundStage.aggregation.rawValue] = finished - now
        if context.secure == nil {
            // Plaintext rounds: the losses the sites released (a secure round decoded its own).
            // A loss no site could have measured (NaN, ±∞, negative) stays out of the results.
            let reports = context.contributors.compactMap { context.reports[$0] }.filter {
                $0.loss.map { $0.isFinite && $0 >= 0 } == true
            }
            let weight = reports.reduce(0) { $0 + $1.sampleCount }
            context.trainLoss =
                weight > 0
                ? reports.reduce(0) { $0 + ($1.loss ?? 0) * Double($1.sampleCount) } / Double(weight) : nil
        }
        actions.append(
            .publish(
                PublishedModel(
                    experimentID: plan.experimentID, version: version, parent: parent, round: context.round,
                    parameters: globalModel, contributors: context.contributors.count, trainLoss: context.trainLoss,
                    strategyState: strategy.state)))
        actions.append(
            .log("round \(context.round): aggregated \(context.contributors.count) updates → model \(version)"))
        let evaluate =
            context.round == plan.rounds || (plan.evaluationEvery > 0 && context.round % plan.evaluationEvery == 0)
        // A site that left this round and came back is not asked: its answer would be refused
        // as coming from a site gone from the round.
        var evaluators = eligible(at: now).map(\.site).filter { !context.gone.contains($0) }
        if plan.evaluationFraction < 1, !evaluators.isEmpty {
            var rng = context.randomness.generator("evaluators")
            rng.shuffle(&evaluators)
            let count = max(1, Int((plan.evaluationFraction * Double(evaluators.count)).rounded(.up)))
            evaluators = Array(evaluators.prefix(count))
        }
        if evaluate, let secure = plan.secureAggregation {
            startSecureEvaluation(
                secure, evaluators: evaluators.sorted(), context: context, now: finished, into: &actions)
        } else if evaluate && !evaluators.isEmpty {
            context.secure = nil
            context.stage = .evaluation
            context.evaluators = Set(evaluators)
            context.stageStartedAt = finished
            for site in evaluators {
                actions.append(.send(to: site, .evaluate(evaluateInstruction(round: context.round, secure: nil))))
            }
            phase = .running(context)
            scheduleDeadline(plan.deadlines.evaluation, into: &actions)
        } else {
            completeRound(context, now: finished, into: &actions)
        }
    }

    /// Evaluation in a secure experiment: the metrics leave the sites only inside a secure sum,
    /// so the evaluators run a SecAgg session over their metrics blocks. A session that cannot
    /// run (too few evaluators, an abort) leaves the round completed without evaluation.
    private mutating func startSecureEvaluation(
        _ secure: FederationPlan.SecureAggregation, evaluators: [SiteID], context: RoundContext, now: Double,
        into actions: inout [CoordinatorAction]
    ) {
        var context = context
        context.secure = nil
        let minimum = max(2, plan.selection.minimum)
        guard evaluators.count >= minimum else {
            actions.append(
                .log(
                    "round \(context.round): no evaluation: \(evaluators.count) eligible evaluators, a secure sum needs \(minimum)"
                ))
            completeRound(context, now: now, into: &actions)
            return
        }
        do {
            context.secure = try secureRound(
                secure, purpose: .evaluation, roster: evaluators, randomness: context.randomness, vectorLength: 0)
        } catch {
            actions.append(.log("round \(context.round): no evaluation: cannot set up its secure sum: \(error)"))
            completeRound(context, now: now, into: &actions)
            return
        }
        context.stage = .evaluation
        context.stageStartedAt = now
        context.evaluators = Set(evaluators)
        context.expected = Set(evaluators)
        context.submitted = []
        for (offset, site) in evaluators.enumerated() {
            let secure = context.secure?.assignment(forIndex: UInt32(offset + 1))
            actions.append(.send(to: site, .evaluate(evaluateInstruction(round: context.round, secure: secure))))
        }
        phase = .running(context)
        scheduleDeadline(plan.deadlines.evaluation, into: &actions)
    }

    /// The evaluation of the current global model, in the clear or (`secure`) inside a secure sum.
    private func evaluateInstruction(round: Int, secure: SecureRoundAssignment?) -> EvaluateInstruction {
        EvaluateInstruction(
            experimentID: plan.experimentID, round: round, modelVersion: version, architecture: plan.architecture,
            datasetName: plan.datasetName, parameters: globalModel, secure: secure)
    }

    /// A secure session failed: a training round fails; an evaluation leaves its round
    /// completed, without metrics (the model was already published).
    mutating func failSecureRound(
        _ context: RoundContext, reason: String, now: Double, into actions: inout [CoordinatorAction]
    ) {
        guard context.secure?.purpose == .evaluation else {
            failRound(context, reason: reason, now: now, into: &actions)
            return
        }
        var context = context
        context.secure = nil
        actions.append(.log("round \(context.round): no evaluation: \(reason)"))
        completeRound(context, now: now, into: &actions)
    }

    private mutating func finishEvaluation(
        _ context: RoundContext, now: Double, into actions: inout [CoordinatorAction]
    ) {
        var context = context
        // Summed in site order, not in the dictionary's (per-process) or arrival order.
        context.evaluation = EvaluationMetrics.weightedMean(
            context.evaluations.sorted { $0.key < $1.key }.map(\.value))
        completeRound(context, now: now, into: &actions)
    }

    private mutating func completeRound(_ context: RoundContext, now: Double, into actions: inout [CoordinatorAction]) {
        var context = context
        let central = centralEvaluation(round: context.round, now: now, into: &actions)
        if let central { context.stageSeconds[Self.centralEvaluationStage] = central.seconds }
        let now = now + (central?.seconds ?? 0)
        let record = RoundRecord(
            round: context.round, status: .completed, modelVersion: version.description,
            cohortSize: context.cohort.count,
            contributors: context.contributors.count, dropouts: context.cohort.count - context.contributors.count,
            trainLoss: context.trainLoss, evalLoss: context.evaluation?.loss,
            evalAccuracy: context.evaluation?.accuracy,
            evalAUC: context.evaluation?.auc, centralLoss: central?.metrics?.loss,
            centralAccuracy: central?.metrics?.accuracy, centralAUC: central?.metrics?.auc,
            stageSeconds: context.stageSeconds, seconds: now - context.startedAt, publicSeed: context.randomness.hex,
            attempt: attempt > 0 ? attempt : nil, privacy: context.privacyRecord)
        appendRecord(record)
        recordOutcomes(of: context, completed: true, now: now, into: &actions)
        actions.append(.roundFinished(record))
        startNextRound(now: now, into: &actions)
    }

    /// Records how each selected site ended the round in its breaker: a contributor resets it,
    /// a site that dropped out or misbehaved counts a failure, and the others of a failed round
    /// count nothing. A site benched by this round is left out of the next selections.
    private mutating func recordOutcomes(
        of context: RoundContext, completed: Bool, now: Double, into actions: inout [CoordinatorAction]
    ) {
        guard !context.cohort.isEmpty else { return }
        let contributors = Set(context.contributors)
        var outcomes: [SiteID: SiteRoundOutcome] = [:]
        for site in context.cohort {
            if contributors.contains(site) {
                outcomes[site] = .contributed
            } else if completed || context.gone.contains(site) || context.dropped.contains(site) {
                outcomes[site] = .failed
            } else {
                outcomes[site] = .roundFailed
            }
        }
        var changed: [SiteID: CircuitBreaker] = [:]
        for (site, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
            var breaker = breakers[site] ?? CircuitBreaker()
            if breaker.record(outcome, at: now, policy: plan.circuitBreaker), case .open(let until) = breaker.state {
                actions.append(
                    .log(
                        "\(site) failed \(breaker.consecutiveFailures) rounds in a row: benched for \(Int(until - now)) s"
                    ))
            }
            breakers[site] = breaker
            changed[site] = breaker
        }
        actions.append(.siteOutcomes(round: context.round, outcomes: outcomes, breakers: changed))
    }

    /// The name of the central evaluation's entry in a round's stage times.
    public static let centralEvaluationStage = "central_evaluation"

    /// The current global model on the plan's central test set, and the seconds it took on
    /// ``clock``; `nil` without a central evaluator. A failed or implausible evaluation is
    /// logged and leaves the round's central metrics empty: the model is published either way.
    private func centralEvaluation(
        round: Int, now: Double, into actions: inout [CoordinatorAction]
    ) -> (metrics: EvaluationMetrics?, seconds: Double)? {
        guard let evaluator = plan.centralEvaluator else { return nil }
        let started = clock?() ?? now
        var metrics: EvaluationMetrics?
        do {
            let result = try evaluator.evaluate(globalModel)
            if let problem = result.implausibility {
                actions.append(.log("round \(round): no central evaluation: it gave \(problem)"))
            } else {
                metrics = result
            }
        } catch {
            actions.append(.log("round \(round): no central evaluation: \(error)"))
        }
        return (metrics, max(0, (clock?() ?? started) - started))
    }

    mutating func failRound(
        _ context: RoundContext, reason: String, now: Double, into actions: inout [CoordinatorAction]
    ) {
        let record = RoundRecord(
            round: context.round, status: .failed, failureReason: reason, cohortSize: context.cohort.count,
            contributors: 0, dropouts: context.cohort.count, stageSeconds: context.stageSeconds,
            seconds: now - context.startedAt, publicSeed: context.randomness.hex, attempt: attempt > 0 ? attempt : nil,
            privacy: context.privacyRecord)
        appendRecord(record)
        recordOutcomes(of: context, completed: false, now: now, into: &actions)
        actions.append(.log("round \(context.round) failed: \(reason)"))
        for site in context.cohort where !context.gone.contains(site) && !context.dropped.contains(site) {
            actions.append(.send(to: site, .leaveRound(round: context.round, reason: "round failed: \(reason)")))
        }
        actions.append(.roundFinished(record))
        if plan.onRoundFailure == .stop || budgetExhausted {
            finish(into: &actions)
        } else {
            startNextRound(now: now, into: &actions)
        }
    }

    mutating func finish(into actions: inout [CoordinatorAction]) {
        guard !isFinished else { return }
        isFinished = true
        phase = .finished
        activeToken = -1
        actions.append(.experimentFinished(completedRounds: completedRounds, finalVersion: version))
    }
}

/// Bookkeeping of the round in progress.
struct RoundContext: Sendable {
    var round: Int
    var cohort: [SiteID]
    var target: Int
    var startedAt: Double
    var stageStartedAt: Double
    var stage: RoundStage
    var randomness: RoundRandomness
    var stageSeconds: [String: Double] = [:]
    /// Who the current stage waits for.
    var expected: Set<SiteID> = []
    var submitted: Set<SiteID> = []
    var gone: Set<SiteID> = []
    var dropped: Set<SiteID> = []
    /// Who was reported lost (``CoordinatorAction/participantLost(round:site:stage:)``).
    var lost: Set<SiteID> = []
    var reports: [SiteID: TrainingReport] = [:]
    /// Plaintext updates, kept for a strategy that needs every one (robust rules).
    var updates: [ClientUpdate] = []
    /// Plaintext updates summed as they arrive, for a strategy that needs only their mean.
    var plaintextSum: PlaintextSum?
    var contributors: [SiteID] = []
    var trainLoss: Double?
    var secure: SecureRound?
    var evaluators: Set<SiteID> = []
    var evaluations: [SiteID: EvaluationMetrics] = [:]
    var evaluation: EvaluationMetrics?
    /// The training sample count each cohort member announced when it connected: the cap on
    /// the count its update is weighted by.
    var announced: [SiteID: Int] = [:]
    /// Whether this stage's early close for stragglers is scheduled (evaluation stages only).
    var stragglerGraceScheduled = false
    /// Differential privacy: what the round asked of its sites, what it charged, the expected
    /// cohort the noisy sum is divided by, and (plaintext rounds) the sites within the clip.
    var privacy: RoundPrivacy?
    var privacyRecord: RoundPrivacyRecord?
    var expectedCohort: Double = 0
    var withinClip = 0

    /// An evaluation answered in the clear (plaintext experiments).
    var plaintextEvaluation: Bool { stage == .evaluation && secure == nil }
    /// The stages this round has closed, with how many answered each (for dashboards).
    var finishedStages: [StageProgress.FinishedStage] = []

    /// How many of those the current stage waits for have answered it.
    var currentStageAnswers: StageProgress.FinishedStage {
        plaintextEvaluation
            ? .init(stage: stage, answered: evaluations.count, asked: evaluators.count)
            : .init(stage: stage, answered: submitted.count, asked: expected.count)
    }

    /// `Σ min(nᵢ, W)` over the secure session's `survivors` (protocol ids): the weight their
    /// honest inputs carry, from the counts they reported (or, with no report, announced).
    func expectedWeight(of survivors: some Sequence<UInt32>, maxWeight: UInt32) -> UInt64 {
        var total: UInt64 = 0
        for index in survivors {
            guard let site = site(ofIndex: index) else { continue }
            let count = reports[site]?.sampleCount ?? announced[site] ?? 0
            // At most 65,535 inputs of at most 2³² − 1 each: the sum cannot wrap a UInt64.
            total += UInt64(min(max(count, 0), Int(maxWeight)))
        }
        return total
    }

    /// Protocol ids are positions in the secure session's roster (the sorted cohort, or the
    /// sorted evaluators), from 1.
    func index(of site: SiteID) -> UInt32? {
        (secure?.roster ?? cohort).firstIndex(of: site).map { UInt32($0 + 1) }
    }

    func site(ofIndex index: UInt32) -> SiteID? {
        let roster = secure?.roster ?? cohort
        let position = Int(index) - 1
        return roster.indices.contains(position) ? roster[position] : nil
    }
}

struct SecureRound: Sendable {
    enum Purpose: Sendable { case training, evaluation }

    var purpose: Purpose
    /// The sites in protocol-id order.
    var roster: [SiteID]
    var server: SecAggServer
    var codec: QuantizationCodec
    var assignment: SecureRoundAssignment
    /// A training round of a private experiment: what its sites were asked to do.
    var privacy: RoundPrivacy?

    /// The assignment sent to roster member `index`: with its id, and without the graph seed
    /// when the round committed to it (the ShareKeys request reveals it).
    func assignment(forIndex index: UInt32) -> SecureRoundAssignment {
        var copy = assignment
        copy.participantIndex = index
        if copy.graphSeedCommitment != nil, case .harary(let degree, _) = copy.graph {
            copy.graph = .harary(degree: degree, seed: [])
        }
        return copy
    }
}

/// Why a decoded secure sum was refused.
struct DecodedSumError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}

/// Why a secure session could not be set up for a roster.
struct SecureRoundSetupError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}
