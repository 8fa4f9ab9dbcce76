public import TesseraCrypto
public import TesseraData
import TesseraPrivacy
import TesseraSecAgg
import TesseraTensor

/// A participant's local data for one dataset name: what it trains on and what it evaluates on.
public struct LocalData: Sendable {
    public var train: Dataset
    /// The held-out rows the site evaluates on; `nil` (`test_fraction: 0`) means the site does
    /// not evaluate: it refuses evaluation requests rather than report training rows as held out.
    public var test: Dataset?

    public init(train: Dataset, test: Dataset? = nil) {
        self.train = train
        self.test = test
    }

    /// A site's data split into a training and a held-out part (when `testFraction > 0` and
    /// there are at least two samples), optionally standardised with statistics fitted on the
    /// training part only, so nothing about the held-out rows leaks into training.
    public init(splitting data: Dataset, testFraction: Double, standardise: Bool, seed: UInt64) throws {
        var train = data
        var test: Dataset?
        if testFraction > 0, data.count >= 2 {
            let split = try data.split(testFraction: testFraction, seed: seed)
            train = split.train
            test = split.test.count > 0 ? split.test : nil
        }
        if standardise {
            let standardizer = try Standardizer.fit(train)
            train = try standardizer.transform(train)
            test = try test.map { try standardizer.transform($0) }
        }
        self.init(train: train, test: test)
    }
}

/// A site's signing key and the certificate the federation CA issued for it (active-adversary
/// secure aggregation). The certificate is what the coordinator relays to the site's peers.
public struct SiteSigner: Sendable {
    public let key: Ed25519PrivateKey
    public let certificate: [UInt8]

    public init(key: Ed25519PrivateKey, certificate: [UInt8]) {
        self.key = key
        self.certificate = certificate
    }
}

/// The participant side of a round, transport-free: coordinator messages in, participant
/// messages out.
///
/// It trains with `LocalTrainer`, and in a secure round it quantizes its update and runs the
/// `SecAggClient` state machine, so the update itself never leaves it: only the masked vector
/// does. The network participant and the in-memory simulation both wrap this type.
///
/// The agent does not obey the coordinator: every task passes the site's ``SitePolicy`` first,
/// and in the active-adversary setting every roster credential passes the site's own
/// ``SigningCredentialVerifier``. A refusal is answered with a failure that says why.
///
/// One agent serves experiment after experiment (a long-running site). The first task of an
/// experiment that passes the policy makes it the site's ``experimentID``: the round state of the
/// one before (its SecAgg client, its trainers) is dropped, and from then on a protocol message
/// of any other experiment is refused. What must outlive an experiment is kept across them: the
/// SecAgg round ids already used (a roster is never replayed) and each experiment's evaluation
/// ledger (going to another experiment and back buys no further evaluation).
public final class ParticipantAgent {
    public let site: SiteID
    public private(set) var data: [String: LocalData]
    public let softwareVersion: String
    /// What this site accepts, whatever the coordinator asks.
    public let policy: SitePolicy
    /// Seeds the stochastic rounding of updates in simulations, for reproducible runs; `nil`
    /// uses the operating system's CSPRNG.
    private let simulationSeed: UInt64?
    private let trainingOverride: TrainingOverride?
    private let signer: SiteSigner?
    private let credentialVerifier: (any SigningCredentialVerifier)?
    private var trainers: [ModelArchitecture: LocalTrainer] = [:]
    private var secure: SecureState?

    /// A secure round in progress: its SecAgg client and the input it masks. A distributed-noise
    /// input is encoded after AdvertiseKeys has left (``prepareAhead()``, or at the latest when the
    /// masked input is asked for): the noise does not depend on the keys, and drawing it while the
    /// coordinator gathers every site's keys takes it off the round's critical path.
    private struct SecureState {
        var round: Int
        var client: SecAggClient
        var input: [UInt32]
        var pending: (() throws -> [UInt32])?

        mutating func materialize() throws {
            guard let encode = pending else { return }
            input = try encode()
            pending = nil
        }
    }
    /// SecAgg round ids this site has taken part in: a roster replayed from an earlier round
    /// (whose signed keys would verify again) is refused.
    private var usedSecAggRounds: Set<UInt64> = []
    /// Per experiment, the evaluation requests answered in the newest round of it this site has
    /// seen; requests for an older round are refused, so going back a round buys no further
    /// answer. The most recent ``retainedEvaluationLedgers`` experiments are kept, newest last.
    private var evaluationLedgers: [(experiment: String, round: Int, count: Int)] = []
    /// The experiment of the last task this site accepted (see the type's discussion).
    public private(set) var experimentID: String?
    /// The privacy this site has spent, per experiment, by its own account.
    public let privacyLedger: PrivacyLedger

    /// How many experiments' evaluation ledgers are kept: a bound on what a site remembers for
    /// ever, far above the experiments one coordinator interleaves.
    public static let retainedEvaluationLedgers = 64

    /// Stands in for local training: given the global model and the task, returns the
    /// outcome. For benchmarks that time the runtime without the model's cost ("training
    /// stubbed to a fixed update"); the dataset must still be offered, for its sample count.
    public typealias TrainingOverride = @Sendable (_ global: [Float], _ task: TrainingTask) throws -> TrainingOutcome

    public init(
        site: SiteID, data: [String: LocalData], softwareVersion: String = "", policy: SitePolicy = SitePolicy(),
        signer: SiteSigner? = nil, credentialVerifier: (any SigningCredentialVerifier)? = nil,
        simulationSeed: UInt64? = nil, trainingOverride: TrainingOverride? = nil,
        privacyLedger: PrivacyLedger = PrivacyLedger()
    ) {
        self.privacyLedger = privacyLedger
        self.site = site
        self.data = data
        self.softwareVersion = softwareVersion
        self.policy = policy
        self.signer = signer
        self.credentialVerifier = credentialVerifier
        self.simulationSeed = simulationSeed
        self.trainingOverride = trainingOverride
    }

    /// What this participant tells the coordinator when it connects.
    public var descriptor: ParticipantDescriptor {
        ParticipantDescriptor(
            site: site, datasets: data.mapValues(\.train.count), cores: 1, softwareVersion: softwareVersion,
            signing: signer.map {
                SigningCredential(certificate: $0.certificate, publicKey: $0.key.publicKey.rawRepresentation)
            },
            schemas: data.mapValues { Self.schema(of: $0.train) })
    }

    /// The schema a dataset reports: its feature count, and SHA-256 over its sample shape,
    /// feature names and class names (what must agree across sites for one model to fit all).
    static func schema(of dataset: Dataset) -> DatasetSchema {
        var text = "shape=" + dataset.sampleShape.map(String.init).joined(separator: "x")
        text += ";features=" + (dataset.featureNames ?? []).joined(separator: ",")
        text += ";classes=" + (dataset.classNames ?? []).joined(separator: ",")
        let hex = SHA256.hash(Array(text.utf8)).map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
        }.joined()
        return DatasetSchema(features: dataset.featuresPerSample, hash: hex)
    }

    /// Handles one coordinator message of experiment `experimentID` (from its envelope header)
    /// and returns the replies. A SecAgg request or a leave-round notice of an experiment other
    /// than this site's ``experimentID`` is refused: its round numbers mean nothing here, and
    /// answering it would hand this site's secure-aggregation state to a stranger's round.
    public func handle(_ message: CoordinatorMessage, experimentID: String) -> [ParticipantMessage] {
        let protocolMessage: (round: Int, what: String)? =
            switch message {
            case .secAgg(let round, let request): (round, "SecAgg \(request.stage) request")
            case .leaveRound(let round, _): (round, "leave-round notice")
            // A task names its experiment itself (from the same header), and may start a new one.
            case .train, .evaluate: nil
            }
        if let protocolMessage, experimentID != self.experimentID {
            let current = self.experimentID.map { "it takes part in \"\($0)\"" } ?? "it has accepted no task yet"
            return refuse(
                round: protocolMessage.round,
                "a \(protocolMessage.what) of experiment \"\(experimentID)\", which this site did not accept (\(current))"
            )
        }
        return handle(message)
    }

    /// Handles one coordinator message and returns the replies. Tasks name their experiment;
    /// SecAgg requests and leave-round notices are taken as this site's current experiment's (the
    /// in-memory simulation runs one). A network participant uses
    /// ``handle(_:experimentID:)``, which checks the experiment of every message.
    public func handle(_ message: CoordinatorMessage) -> [ParticipantMessage] {
        switch message {
        case .train(let instruction):
            return train(instruction)
        case .secAgg(let round, let request):
            return respond(round: round, request)
        case .evaluate(let instruction):
            return evaluate(instruction)
        case .leaveRound(let round, _):
            if secure?.round == round { secure = nil }
            return []
        }
    }

    private func trainer(for architecture: ModelArchitecture) throws -> LocalTrainer {
        if let trainer = trainers[architecture] { return trainer }
        let trainer = LocalTrainer(model: try architecture.build(seed: 0), loss: architecture.loss)
        trainers[architecture] = trainer
        return trainer
    }

    /// A refusal: the failure the coordinator is told, with the reason the site logs.
    private func refuse(round: Int, _ reason: String) -> [ParticipantMessage] {
        [.failed(round: round, reason: "\(site) refuses: \(reason)")]
    }

    /// The checks every task passes before the site builds, trains or evaluates anything.
    private func admit(
        experimentID: String, round: Int, architecture: ModelArchitecture, parameterCount: Int,
        secure assignment: SecureRoundAssignment?, privacy: RoundPrivacy? = nil, evaluation: Bool
    ) throws -> [UInt32: Ed25519PublicKey] {
        try screen(
            experimentID: experimentID, round: round, architecture: architecture, parameterCount: parameterCount,
            secure: assignment, privacy: privacy, evaluation: evaluation)
        enter(experimentID)
        guard let assignment else { return [:] }
        guard !usedSecAggRounds.contains(assignment.roundID) else {
            throw SecureRoundRefusal(
                "secure-aggregation round id \(assignment.roundID) was already used: a roster replayed from an earlier round"
            )
        }
        guard assignment.activeAdversary else { return [:] }
        return try verifiedRoster(assignment)
    }

    /// Makes `experiment` this site's: the round state of another one is dropped.
    private func enter(_ experiment: String) {
        guard experiment != experimentID else { return }
        experimentID = experiment
        secure = nil
        trainers.removeAll()
    }

    /// The policy checks a task passes before its model is fetched or anything is built: the
    /// network participant calls this as soon as a task arrives, and ``handle(_:)`` again. An
    /// evaluation in the clear reveals metrics, not an update: `share_metrics` decides on it.
    public func screen(
        experimentID: String, round: Int, architecture: ModelArchitecture, parameterCount: Int,
        secure assignment: SecureRoundAssignment?, privacy: RoundPrivacy? = nil, evaluation: Bool
    ) throws {
        if !evaluation {
            try policy.checkPrivacy(privacy, secure: assignment, parameterCount: parameterCount, round: round)
            if let privacy {
                _ = try policy.checkBudget(
                    privacy, spent: privacyLedger.accountant(for: experimentID), experimentID: experimentID,
                    round: round)
            }
        }
        let ledger = evaluationLedger(of: experimentID, round: round)
        if evaluation {
            guard round == ledger.round else {
                throw SecureRoundRefusal(
                    "round \(round) asks for an evaluation after round \(ledger.round) began; a past round gets none"
                )
            }
            try policy.checkEvaluation(round: round, answeredThisRound: ledger.count)
            if assignment == nil, !policy.releasesPerSiteMetrics {
                throw SecureRoundRefusal(
                    "site policy share_metrics: round \(round) asks for this site's evaluation metrics in the clear; "
                        + "this site releases metrics only inside a secure sum (set share_metrics: per_site to allow it)"
                )
            }
        }
        try policy.checkModel(architecture, round: round)
        guard parameterCount == architecture.parameterCount else {
            let expected = architecture.parameterCount.map(String.init) ?? "an uncountable number"
            throw SecureRoundRefusal(
                "round \(round) announces \(parameterCount) parameters for \(architecture.summary), which has \(expected)"
            )
        }
        let bytes = parameterCount.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        try policy.checkModelBytes(bytes.overflow ? .max : bytes.partialValue, round: round)
        guard let assignment else {
            if !evaluation { try policy.checkPlaintextRound(round: round) }
            return
        }
        try policy.checkSecureRound(
            round: round, rosterSize: assignment.rosterSize, graph: assignment.graph, threshold: assignment.threshold,
            active: assignment.activeAdversary)
    }

    /// The ledger of `experiment`, moved to the newest place and advanced to `round` (a later
    /// round starts from no answer).
    private func evaluationLedger(of experiment: String, round: Int) -> (round: Int, count: Int) {
        var ledger = (experiment: experiment, round: round, count: 0)
        if let index = evaluationLedgers.firstIndex(where: { $0.experiment == experiment }) {
            let kept = evaluationLedgers.remove(at: index)
            if round <= kept.round { ledger = kept }
        }
        evaluationLedgers.append(ledger)
        if evaluationLedgers.count > Self.retainedEvaluationLedgers { evaluationLedgers.removeFirst() }
        return (ledger.round, ledger.count)
    }

    private func countEvaluation(of experiment: String) {
        guard let index = evaluationLedgers.lastIndex(where: { $0.experiment == experiment }) else { return }
        evaluationLedgers[index].count += 1
    }

    /// Active setting: every roster member's certificate, checked by this site. Its own entry
    /// must be its own certificate, and no site may hold two places (a coordinator could
    /// otherwise surround a victim with one colluder's copies).
    private func verifiedRoster(_ assignment: SecureRoundAssignment) throws -> [UInt32: Ed25519PublicKey] {
        guard let signer, let credentialVerifier else {
            throw SecureRoundRefusal("this site has no signing certificate for the active-adversary setting")
        }
        guard Set(assignment.credentials.keys) == Set(assignment.roster) else {
            throw SecureRoundRefusal(
                "the roster lists \(assignment.credentials.count) signing certificates for \(assignment.rosterSize) members"
            )
        }
        guard assignment.credentials[assignment.participantIndex] == signer.certificate else {
            throw SecureRoundRefusal(
                "the roster gives this site's place (\(assignment.participantIndex)) a certificate that is not its own")
        }
        var keys: [UInt32: Ed25519PublicKey] = [:]
        var places: [SiteID: UInt32] = [:]
        for (index, certificate) in assignment.credentials.sorted(by: { $0.key < $1.key }) {
            let verified: (site: SiteID, publicKey: [UInt8])
            do {
                verified = try credentialVerifier.verify(certificate: certificate)
            } catch {
                throw SecureRoundRefusal(
                    "the signing certificate of roster member \(index) is not acceptable: \(error)")
            }
            if let other = places.updateValue(index, forKey: verified.site) {
                throw SecureRoundRefusal(
                    "site \(verified.site) holds two places in the roster (\(other) and \(index))")
            }
            keys[index] = try Ed25519PublicKey(rawRepresentation: verified.publicKey)
        }
        return keys
    }

    private func train(_ instruction: TrainInstruction) -> [ParticipantMessage] {
        let round = instruction.round
        secure = nil
        let verificationKeys: [UInt32: Ed25519PublicKey]
        do {
            verificationKeys = try admit(
                experimentID: instruction.experimentID, round: round, architecture: instruction.architecture,
                parameterCount: instruction.parameters.count,
                secure: instruction.secure, privacy: instruction.privacy, evaluation: false)
            try policy.checkTask(instruction.task, round: round)
        } catch {
            return refuse(round: round, "\(error)")
        }
        guard let local = data[instruction.datasetName] else {
            return [.failed(round: round, reason: "\(site) has no dataset named '\(instruction.datasetName)'")]
        }
        do {
            let outcome =
                try trainingOverride?(instruction.parameters, instruction.task)
                ?? trainer(for: instruction.architecture).train(
                    global: instruction.parameters, on: local.train, task: instruction.task)
            if let privacy = instruction.privacy {
                return try trainPrivately(instruction, outcome: outcome, privacy: privacy, keys: verificationKeys)
            }
            guard let assignment = instruction.secure else {
                let report = TrainingReport(
                    sampleCount: outcome.sampleCount, loss: policy.releasesPerSiteMetrics ? outcome.loss : nil,
                    accuracy: policy.releasesPerSiteMetrics ? outcome.accuracy : nil, steps: outcome.steps)
                return [.update(round: round, delta: outcome.delta, report: report)]
            }
            // In a secure round the metrics travel only inside the masked vector.
            let report = TrainingReport(
                sampleCount: outcome.sampleCount, loss: nil, accuracy: nil, steps: outcome.steps)
            let codec = try assignment.codec()
            let weight = UInt32(clamping: min(outcome.sampleCount, Int(assignment.maxWeight)))
            var input: [UInt32]
            // Stochastic rounding may be seeded (reproducible simulations); key pairs and mask
            // seeds always come from the operating system's CSPRNG.
            if let simulationSeed {
                var rng = TesseraRandom(seed: simulationSeed ^ instruction.task.seed)
                input = try codec.encode(outcome.delta, weight: weight, using: &rng)
            } else {
                var rng = SecureRandomGenerator()
                input = try codec.encode(outcome.delta, weight: weight, using: &rng)
            }
            input += try assignment.metrics().encode(
                Array([outcome.loss, outcome.accuracy].prefix(assignment.metricCount)), weight: weight)
            let configuration = try assignment.configuration(
                vectorLength: outcome.delta.count, verificationKeys: verificationKeys)
            let advertise = try startSecureRound(
                round: round, assignment: assignment, configuration: configuration, input: input)
            return [.trained(round: round, report: report), advertise]
        } catch {
            return [.failed(round: round, reason: "\(error)")]
        }
    }

    /// A round under differential privacy: the site clips its update itself, charges its own
    /// ledger (durably, before anything leaves), and in distributed mode adds its share of the
    /// noise. No training metric leaves the site: the noise covers the update alone.
    private func trainPrivately(
        _ instruction: TrainInstruction, outcome: TrainingOutcome, privacy: RoundPrivacy,
        keys verificationKeys: [UInt32: Ed25519PublicKey]
    ) throws -> [ParticipantMessage] {
        let round = instruction.round
        var delta = outcome.delta
        let norm = Clipping.clip(&delta, to: privacy.clipNorm)
        guard norm.isFinite else {
            return [.failed(round: round, reason: "\(site): local training produced a non-finite update")]
        }
        let within = norm <= privacy.clipNorm
        _ = try policy.checkBudget(
            privacy, spent: privacyLedger.accountant(for: instruction.experimentID),
            experimentID: instruction.experimentID, round: round)
        if let mechanism = policy.chargedMechanism(for: privacy) {
            try privacyLedger.charge(mechanism, to: instruction.experimentID)
        }
        let report = TrainingReport(sampleCount: outcome.sampleCount, loss: nil, accuracy: nil, steps: outcome.steps)
        guard let assignment = instruction.secure else {
            return [.update(round: round, delta: delta, report: report)]
        }
        var input: [UInt32] = []
        var pending: (() throws -> [UInt32])?
        let configuration: SecAggConfiguration
        if let distributed = privacy.distributed {
            let seed = simulationSeed.map { $0 ^ instruction.task.seed ^ 0x6469_7374_6E6F_6973 }
            pending = {
                if let seed {
                    var rng = TesseraRandom(seed: seed)
                    return try distributed.encode(
                        delta, withinClip: within, rotationSeed: privacy.rotationSeed, using: &rng)
                }
                // Bulk fills: a locked `next()` per word would cost more than the noise itself.
                var rng = SecureRandomGenerator()
                return try distributed.encode(
                    delta, withinClip: within, rotationSeed: privacy.rotationSeed, randomWords: { rng.fill($0) })
            }
            configuration = try assignment.sessionConfiguration(
                words: distributed.words, verificationKeys: verificationKeys)
        } else {
            let codec = try assignment.codec()
            var words: [UInt32]
            if let simulationSeed {
                var rng = TesseraRandom(seed: simulationSeed ^ instruction.task.seed)
                words = try codec.encode(delta, weight: 1, using: &rng)
            } else {
                var rng = SecureRandomGenerator()
                words = try codec.encode(delta, weight: 1, using: &rng)
            }
            let bit: [Double?] = privacy.reportsWithinClip ? [within ? 1 : 0] : []
            words += try assignment.metrics().encode(Array(bit.prefix(assignment.metricCount)), weight: 1)
            input = words
            configuration = try assignment.configuration(
                vectorLength: delta.count, verificationKeys: verificationKeys)
        }
        let advertise = try startSecureRound(
            round: round, assignment: assignment, configuration: configuration, input: input)
        secure?.pending = pending
        return [.trained(round: round, report: report), advertise]
    }

    /// Creates the round's SecAgg client and returns its AdvertiseKeys message.
    private func startSecureRound(
        round: Int, assignment: SecureRoundAssignment, configuration: SecAggConfiguration, input: [UInt32]
    ) throws -> ParticipantMessage {
        var client = try SecAggClient(
            id: assignment.participantIndex, configuration: configuration,
            signingKey: assignment.activeAdversary ? signer?.key : nil)
        let advertise = try client.advertiseKeys()
        usedSecAggRounds.insert(assignment.roundID)
        secure = SecureState(round: round, client: client, input: input)
        return .secAgg(round: round, .advertiseKeys(advertise))
    }

    private func respond(round: Int, _ request: SecAggMessage) -> [ParticipantMessage] {
        // Taken out while the client works, so that no second copy of its vectors is kept alive.
        guard secure?.round == round, var state = secure.take() else {
            return [.failed(round: round, reason: "\(site) holds no secure-aggregation state for round \(round)")]
        }
        do {
            try state.materialize()
            var rng = SecureRandomGenerator()
            let reply = try state.client.respond(to: request, input: state.input, using: &rng)
            secure = state
            if case .unmaskingResponse = reply { secure = nil }
            return [.secAgg(round: round, reply)]
        } catch {
            secure = nil
            return refuse(round: round, "\(error)")
        }
    }

    /// Work to do between messages, after the replies to the last one have been sent: encodes a
    /// distributed-noise input still pending, and in a secure round past ShareKeys masks the input
    /// ahead of the coordinator's request (see `SecAggClient.prepareMaskedInput(_:)`), so the
    /// masked input leaves as soon as it is asked for. Returns whether a masked input is ready; a
    /// no-op at any other point. An encoding that fails is left pending: the masked-input request
    /// then refuses with its reason.
    @discardableResult
    public func prepareAhead() -> Bool {
        guard var state = secure.take() else { return false }
        defer { secure = state }
        guard (try? state.materialize()) != nil else { return false }
        return state.client.prepareMaskedInput(state.input)
    }

    private func evaluate(_ instruction: EvaluateInstruction) -> [ParticipantMessage] {
        let round = instruction.round
        let verificationKeys: [UInt32: Ed25519PublicKey]
        do {
            verificationKeys = try admit(
                experimentID: instruction.experimentID, round: round, architecture: instruction.architecture,
                parameterCount: instruction.parameters.count,
                secure: instruction.secure, evaluation: true)
        } catch {
            return refuse(round: round, "\(error)")
        }
        countEvaluation(of: instruction.experimentID)
        guard let local = data[instruction.datasetName] else {
            return [.failed(round: round, reason: "\(site) has no dataset named '\(instruction.datasetName)'")]
        }
        // Metrics on training rows would be reported as held-out ones: a site without held-out
        // rows does not evaluate (the coordinator records no figure rather than a flattering one).
        guard let heldOut = local.test else {
            return refuse(
                round: round,
                "it holds no held-out rows of '\(instruction.datasetName)' (test_fraction 0) and does not evaluate on "
                    + "its training rows")
        }
        do {
            let metrics = try trainer(for: instruction.architecture).evaluate(
                parameters: instruction.parameters, on: heldOut)
            guard let assignment = instruction.secure else { return [.evaluation(round: round, metrics)] }
            secure = nil
            let weight = UInt32(clamping: min(metrics.sampleCount, Int(assignment.maxWeight)))
            let input = try assignment.metrics().encode(
                Array([metrics.loss, metrics.accuracy, metrics.auc].prefix(assignment.metricCount)), weight: weight)
            let configuration = try assignment.evaluationConfiguration(verificationKeys: verificationKeys)
            return [
                try startSecureRound(round: round, assignment: assignment, configuration: configuration, input: input)
            ]
        } catch {
            return [.failed(round: round, reason: "\(error)")]
        }
    }
}

/// Why the site will not take part in a secure round as asked (other than its site policy).
public struct SecureRoundRefusal: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) { self.description = description }
}
