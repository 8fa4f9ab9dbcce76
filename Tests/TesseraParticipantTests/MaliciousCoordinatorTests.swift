import Foundation
import SwiftASN1
import TesseraCrypto
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraSecAgg
import TesseraSimulation
import TesseraTensor
import TesseraTesting
import TesseraWire
import Testing
import X509

/// A malicious coordinator against one real site (DESIGN.md, "Trust model"): every attack is
/// refused with a reason that names its cause, and nothing the site sends contains its update
/// (in the clear or quantized) or its metrics.
@Suite("MaliciousCoordinator: a site refuses what no coordinator may ask, and its update never leaves it")
struct MaliciousCoordinatorTests {
    // MARK: The script itself

    /// The script plays an honest round to the end: the site takes part in every stage, and the
    /// server's sum minus the peers' inputs is exactly the input the leak checks look for. Without
    /// this, a refusal below could be the script's fault, and a clean transcript a wrong needle.
    @Test(.timeLimit(.minutes(1)))
    func anHonestRoundRunsToTheEndAndOnlyTheSumLeavesTheSite() async throws {
        let model = try Victim.globalModel()
        let roster = try Roster(roundID: 0xC0_0000, site: Victim.name)
        var report: TrainingReport?
        var recovered: [UInt32]?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            let (trained, keys) = try await coordinator.trainSecurely(round: 1, roster.assignment, model: model)
            report = trained
            var peers = try HonestPeers(training: roster, parameterCount: model.count)
            guard case .finished(let result) = try await peers.run(with: coordinator, round: 1, siteKeys: keys) else {
                Issue.record("the site refused an honest round")
                return
            }
            #expect(result.survivors == [1, 2, 3, 4])
            recovered = peers.inputs.values.reduce(result.sum) { sum, input in zip(sum, input).map { $0 &- $1 } }
        }
        let input = try Victim.quantizedInput(roster.assignment, parameterCount: model.count)
        #expect(recovered == input)
        #expect(report?.sampleCount == Victim.sampleCount)
        #expect(report?.loss == nil && report?.accuracy == nil)
        #expect(outcome.fetches == [ModelDigest(parameters: model)])
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    /// The leak checks find an update and its loss when they do leave the site: a site whose
    /// policy allows plaintext rounds and per-site metrics sends both, and the scan sees them.
    @Test(.timeLimit(.minutes(1)))
    func theLeakScanFindsAnUpdateSentInTheClear() async throws {
        let model = try Victim.globalModel()
        let permissive = SitePolicy(requireSecureAggregation: false, shareMetrics: .perSite)
        var answer: ParticipantMessage?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent(policy: permissive)) { coordinator in
            try coordinator.send(Victim.train(round: 1, parameters: model, secure: nil))
            answer = try await coordinator.reply()
        }
        guard case .update(1, let delta, let report) = answer else {
            Issue.record("a permissive site answered \(String(describing: answer))")
            return
        }
        #expect(delta == Victim.delta(count: model.count))
        #expect(report.loss == Victim.loss)
        #expect(outcome.transcript.containsRun(of: littleEndianBytes(delta)))
        #expect(outcome.transcript.containsRun(of: littleEndianBytes(Victim.loss), length: 8))
    }

    // MARK: Rounds the site policy refuses before anything is fetched

    @Test(.timeLimit(.minutes(1)))
    func aPlaintextRoundIsRefused() async throws {
        let (reason, outcome) = try await refusedTraining(nil)
        #expect(reason.contains("mc-victim refuses: site policy require_secure_aggregation:"))
        #expect(reason.contains("plaintext update"))
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets())
    }

    @Test(.timeLimit(.minutes(1)))
    func aRosterOfOneIsRefused() async throws {
        let roster = try Roster(roundID: 0xC0_0002, site: Victim.name, size: 1, threshold: 1, siteIndex: 1)
        let (reason, outcome) = try await refusedTraining(roster.assignment)
        #expect(reason.contains("mc-victim refuses: site policy minimum_cohort:"))
        #expect(reason.contains("a roster of 1"))
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    @Test(.timeLimit(.minutes(1)))
    func aThresholdOfOneIsRefused() async throws {
        let roster = try Roster(roundID: 0xC0_0003, site: Victim.name, size: 4, threshold: 1)
        let (reason, outcome) = try await refusedTraining(roster.assignment)
        #expect(reason.contains("mc-victim refuses: site policy: round 1 asks for threshold 1 of 4 share holders"))
        #expect(reason.contains("more than half of the holders"))
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    /// t = 3 of 6 holders: two disjoint halves could each rebuild a secret of the site, which an
    /// active coordinator gets by telling each half a different story about who dropped out.
    @Test(.timeLimit(.minutes(1)))
    func aThresholdOfHalfTheHoldersIsRefusedInTheActiveSetting() async throws {
        let roster = try Roster(roundID: 0xC0_0004, site: Victim.name, size: 6, threshold: 3)
        #expect(roster.assignment.activeAdversary)
        let (reason, outcome) = try await refusedTraining(roster.assignment)
        #expect(reason.contains("mc-victim refuses: site policy: round 1 asks for threshold 3 of 6 share holders"))
        #expect(reason.contains("more than half of the holders (at least 4)"))
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    @Test(.timeLimit(.minutes(1)))
    func aSemiHonestSecureRoundIsRefused() async throws {
        let roster = try Roster(roundID: 0xC0_0012, site: Victim.name, active: false)
        let (reason, outcome) = try await refusedTraining(roster.assignment)
        #expect(reason.contains("mc-victim refuses: site policy require_active_adversary_protection:"))
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    /// The policy speaks from the architecture alone: a model too large to hold is refused before
    /// a byte of it is fetched (and before anything is built).
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [
            // 2 → 10^7 → 2: 50,000,002 parameters.
            (ModelArchitecture.mlp(inputs: 2, hidden: [10_000_000], classes: 2), SitePolicy.Key.maxParameters),
            // A 100,000-wide layer in a model of only 500,002 parameters.
            (ModelArchitecture.mlp(inputs: 2, hidden: [100_000], classes: 2), SitePolicy.Key.maxLayerWidth),
        ])
    func anOversizedModelIsRefusedBeforeItIsFetched(architecture: ModelArchitecture, key: SitePolicy.Key) async throws {
        let roster = try Roster(roundID: 0xC0_0008, site: Victim.name)
        let announced = try #require(architecture.parameterCount)
        var answer: ParticipantMessage?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            let task = Victim.train(round: 1, architecture: architecture, parameters: [], secure: roster.assignment)
            try coordinator.send(task, announcing: announced)
            answer = try await coordinator.reply()
        }
        let reason = try #require(answer?.refusal, "the site answered \(String(describing: answer))")
        #expect(reason.contains("mc-victim refuses: site policy \(key.rawValue):"))
        #expect(outcome.fetches.isEmpty, "the site fetched a model it refuses")
        #expect(outcome.unread.isEmpty)
    }

    // MARK: Attacks on the secure-aggregation protocol

    /// The coordinator relays, as neighbour 3's, keys it generated itself (signed with its own
    /// key): it would then hold the pairwise secrets and could unmask the site. The site checks
    /// every neighbour's signature against the certificate the roster gave it, and refuses.
    @Test(.timeLimit(.minutes(1)))
    func aNeighboursKeysSubstitutedByTheCoordinatorAreRefused() async throws {
        let model = try Victim.globalModel()
        let roster = try Roster(roundID: 0xC0_0005, site: Victim.name)
        let coordinatorKey = Ed25519PrivateKey()
        var end: HonestPeers.End?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            let (_, keys) = try await coordinator.trainSecurely(round: 1, roster.assignment, model: model)
            var peers = try HonestPeers(training: roster, parameterCount: model.count)
            end = try await peers.run(with: coordinator, round: 1, siteKeys: keys) { request in
                guard case .shareKeysRequest(var shareKeys) = request else { return request }
                shareKeys.neighbours = shareKeys.neighbours.map { advertised in
                    guard advertised.participant == 3 else { return advertised }
                    return Self.substitutedKeys(of: 3, roundID: roster.assignment.roundID, signedWith: coordinatorKey)
                }
                return .shareKeysRequest(shareKeys)
            }
        }
        guard case .refused(let reason) = end else {
            Issue.record("the site took keys the coordinator substituted: \(String(describing: end))")
            return
        }
        #expect(reason.contains("mc-victim refuses: SecAggError.invalidSignature"))
        #expect(reason.contains("Neighbour 3's advertised keys do not carry its valid signature"))
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    /// A roster replayed from a round the site took part in (same SecAgg round id): its peers'
    /// signed keys would verify again. The site refuses it even after the first round completed.
    @Test(.timeLimit(.minutes(1)))
    func aRosterReplayedFromAnEarlierRoundIsRefused() async throws {
        let model = try Victim.globalModel()
        let roster = try Roster(roundID: 0xC0_0006, site: Victim.name)
        var first: HonestPeers.End?
        var replay: ParticipantMessage?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            let (_, keys) = try await coordinator.trainSecurely(round: 1, roster.assignment, model: model)
            var peers = try HonestPeers(training: roster, parameterCount: model.count)
            first = try await peers.run(with: coordinator, round: 1, siteKeys: keys)
            try coordinator.send(Victim.train(round: 2, parameters: model, secure: roster.assignment))
            replay = try await coordinator.reply()
        }
        guard case .finished = first else {
            Issue.record("the first round did not finish: \(String(describing: first))")
            return
        }
        let reason = try #require(replay?.refusal, "the site answered the replay with \(String(describing: replay))")
        #expect(reason.contains("mc-victim refuses: secure-aggregation round id \(0xC0_0006) was already used"))
        #expect(reason.contains("replayed"))
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    /// After an honest round up to Unmasking, the coordinator lists peer 3 as both a survivor and
    /// dropped: with its self-mask share and its key share it could unmask peer 3's input. The
    /// site refuses the request and sends neither share.
    @Test(.timeLimit(.minutes(1)))
    func askingForBothSharesOfOnePeerIsRefused() async throws {
        let model = try Victim.globalModel()
        let roster = try Roster(roundID: 0xC0_0007, site: Victim.name)
        var end: HonestPeers.End?
        var summed: Set<UInt32>?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            let (_, keys) = try await coordinator.trainSecurely(round: 1, roster.assignment, model: model)
            var peers = try HonestPeers(training: roster, parameterCount: model.count)
            end = try await peers.run(with: coordinator, round: 1, siteKeys: keys) { request in
                guard case .unmaskingRequest(var unmasking) = request else { return request }
                #expect(unmasking.survivors.contains(3))
                unmasking.dropped = [3]
                return .unmaskingRequest(unmasking)
            }
            summed = peers.server.survivors[.consistencyCheck]
        }
        // The site answered every stage before Unmasking: its masked input is in the sum.
        #expect(summed == [1, 2, 3, 4])
        guard case .refused(let reason) = end else {
            Issue.record("the site answered a request for both shares of peer 3: \(String(describing: end))")
            return
        }
        #expect(reason.contains("mc-victim refuses: SecAggError.inconsistentRequest"))
        #expect(reason.contains("both the self-mask share and the key share of participant 3"))
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    // MARK: Probing the site's metrics

    /// A plaintext evaluation is refused under `share_metrics: aggregate_only` (and does not
    /// count); a secure one is answered once per round, the next in the same round refused under
    /// `max_evaluations_per_round`; the next round may ask again.
    @Test(.timeLimit(.minutes(1)))
    func endlessEvaluationRequestsAreRefused() async throws {
        let model = try Victim.globalModel()
        let rosters = try (0..<3).map { offset in
            try Roster(
                roundID: 0xC0_0090 + UInt64(offset), site: Victim.name, metricCount: SecureMetricsLayout.evaluation)
        }
        let requests: [(round: Int, secure: SecureRoundAssignment?)] = [
            (1, nil), (1, rosters[0].assignment), (1, rosters[1].assignment), (2, rosters[2].assignment),
        ]
        var answers: [ParticipantMessage] = []
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            for request in requests {
                try coordinator.send(Victim.evaluate(round: request.round, parameters: model, secure: request.secure))
                answers.append(try await coordinator.reply())
            }
        }
        try #require(answers.count == 4)
        #expect(answers[0].refusal?.contains("mc-victim refuses: site policy share_metrics:") == true)
        #expect(answers[1].advertisedKeys?.roundID == rosters[0].assignment.roundID)
        #expect(answers[2].refusal?.contains("mc-victim refuses: site policy max_evaluations_per_round:") == true)
        #expect(answers[2].refusal?.contains("evaluation number 2 of the round") == true)
        #expect(answers[3].advertisedKeys?.roundID == rosters[2].assignment.roundID)
        var secrets = try Victim.secrets()
        secrets.metrics.append(try Victim.evaluation(of: model).loss)
        outcome.expectNoLeak(of: secrets)
    }

    /// A loss oracle: models crafted so that the site's loss on them says something about its
    /// rows. Evaluations in the clear are refused, the site's training report in a secure round
    /// carries no loss or accuracy, and none of those values is in anything the site sent.
    @Test(.timeLimit(.minutes(1)))
    func craftedModelsGetNoLossOrAccuracyOutOfTheSite() async throws {
        let model = try Victim.globalModel()
        var oneHot = [Float](repeating: 0, count: model.count)
        oneHot[0] = 10
        let crafted = [[Float](repeating: 0, count: model.count), model.map { $0 * 50 }, oneHot]
        let roster = try Roster(roundID: 0xC0_0010, site: Victim.name)
        var refusals: [ParticipantMessage] = []
        var report: TrainingReport?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            for (offset, parameters) in crafted.enumerated() {
                try coordinator.send(Victim.evaluate(round: offset + 1, parameters: parameters, secure: nil))
                refusals.append(try await coordinator.reply())
            }
            report = try await coordinator.trainSecurely(round: 4, roster.assignment, model: model).report
        }
        #expect(refusals.count == crafted.count)
        for refusal in refusals {
            #expect(refusal.refusal?.contains("mc-victim refuses: site policy share_metrics:") == true)
        }
        #expect(report != nil && report?.loss == nil && report?.accuracy == nil)
        var secrets = try Victim.secrets(roster.assignment)
        secrets.metrics += try crafted.map { try Victim.evaluation(of: $0).loss }
        outcome.expectNoLeak(of: secrets)
        // Refused before the download: only the training model was fetched.
        #expect(outcome.fetches == [ModelDigest(parameters: model)])
    }

    // MARK: Gaps the suite found, now closed

    /// The evaluation budget belongs to the newest round: a coordinator that goes back to an
    /// earlier round number gets no further evaluation.
    @Test(.timeLimit(.minutes(1)))
    func returningToAnEarlierRoundNumberBuysNoFurtherEvaluation() async throws {
        let model = try Victim.globalModel()
        let rosters = try (0..<3).map { offset in
            try Roster(
                roundID: 0xC0_00A0 + UInt64(offset), site: Victim.name, metricCount: SecureMetricsLayout.evaluation)
        }
        var answers: [ParticipantMessage] = []
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            for (round, roster) in zip([1, 2, 1], rosters) {
                try coordinator.send(Victim.evaluate(round: round, parameters: model, secure: roster.assignment))
                answers.append(try await coordinator.reply())
            }
        }
        try #require(answers.count == 3)
        #expect(answers[0].advertisedKeys != nil && answers[1].advertisedKeys != nil)
        #expect(answers[2].refusal?.contains("a past round gets none") == true, "\(answers[2])")
        #expect(outcome.unread.isEmpty)
    }

    /// A task announces more parameters than its architecture has: the site tells from the task
    /// alone and refuses it before downloading anything.
    @Test(.timeLimit(.minutes(1)))
    func aModelLargerThanItsArchitectureIsRefusedBeforeItIsFetched() async throws {
        let roster = try Roster(roundID: 0xC0_00B0, site: Victim.name)
        let oversized = (0..<1_000).map { Float($0) * 0.001 }
        #expect(Victim.architecture.parameterCount != oversized.count)
        var answer: ParticipantMessage?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent(trains: true)) { coordinator in
            try coordinator.send(Victim.train(round: 1, parameters: oversized, secure: roster.assignment))
            answer = try await coordinator.reply()
        }
        let reason = try #require(answer?.refusal, "the site answered \(String(describing: answer))")
        #expect(reason.contains("announces 1000 parameters"), "\(reason)")
        #expect(outcome.fetches.isEmpty)
        outcome.expectNoLeak(of: try Victim.secrets(roster.assignment))
    }

    // MARK: The coordinator's certificate, as the site checks it

    /// Another site's TLS certificate (or the site's own signing certificate) chains to the
    /// federation CA, but does not make its holder the coordinator.
    @Test(.timeLimit(.minutes(1)))
    func aSiteCertificatePresentedAsTheCoordinatorsIsRefusedAsTheWrongRole() async throws {
        let authority = SimulatedSigning.testFederation.authority
        let trust = SiteTrust(caCertificate: authority.caCertificate, signer: nil, logger: testLogger())
        let now = Date()
        let genuine = try authority.issueCoordinatorCertificate(
            hosts: ["localhost"], notValidBefore: now - 60, notValidAfter: now + 3_600)
        try await trust.coordinatorCheck([try derBytes(genuine)], "localhost")

        let site = try derBytes(
            try authority.issueSiteCertificate(site: "mc-peer-3", notValidBefore: now - 60, notValidAfter: now + 3_600))
        let error = await #expect(throws: PKIError.self) { try await trust.coordinatorCheck([site], "localhost") }
        #expect(error?.code == .wrongRole)
        #expect(error?.message.contains("belongs to site \"mc-peer-3\", not to the coordinator") == true)

        let signing = try SimulatedSigning.testFederation.signer(for: Victim.name).certificate
        let signingError = await #expect(throws: PKIError.self) {
            try await trust.coordinatorCheck([signing], "localhost")
        }
        #expect(signingError?.code == .wrongRole)
    }

    /// A coordinator certificate revoked by the CA is refused once the site holds a list naming
    /// it (the list a Welcome relays is adopted only under the CA's signature).
    @Test(.timeLimit(.minutes(1)))
    func aRevokedCoordinatorCertificateIsRefused() async throws {
        let authority = SimulatedSigning.testFederation.authority
        let trust = SiteTrust(caCertificate: authority.caCertificate, signer: nil, logger: testLogger())
        let now = Date()
        let certificate = try authority.issueCoordinatorCertificate(
            hosts: ["localhost"], notValidBefore: now - 60, notValidAfter: now + 3_600)
        let chain = [try derBytes(certificate)]
        try await trust.coordinatorCheck(chain, "localhost")

        let serial = SerialNumberHex.string(certificate.serialNumber)
        try authority.revoke(serial: serial)
        trust.offer(signedRevocationList: try authority.signedRevocationList(issuedAt: now).encoded)
        #expect(trust.revokedSerials.contains(serial))
        let error = await #expect(throws: PKIError.self) {
            try await trust.coordinatorCheck(chain, "localhost")
        }
        #expect(error?.code == .revoked)
        #expect(error?.message.contains(serial) == true)
    }

    // MARK: Helpers

    /// Asks the site to train once (securely under `assignment`, in the clear without one) and
    /// returns its reason to refuse, with the session's outcome.
    private func refusedTraining(
        _ assignment: SecureRoundAssignment?, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (reason: String, outcome: ScriptedCoordinator.Outcome) {
        let model = try Victim.globalModel()
        var answer: ParticipantMessage?
        let outcome = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            try coordinator.send(Victim.train(round: 1, parameters: model, secure: assignment))
            answer = try await coordinator.reply()
        }
        let reason = try #require(
            answer?.refusal, "the site answered \(String(describing: answer))", sourceLocation: sourceLocation)
        return (reason, outcome)
    }

    /// Keys the coordinator generated for `peer`, signed with its own key (not the peer's).
    private static func substitutedKeys(
        of peer: UInt32, roundID: UInt64, signedWith key: Ed25519PrivateKey
    ) -> AdvertisedKeys {
        let encryption = X25519PrivateKey().publicKey.rawRepresentation
        let masking = X25519PrivateKey().publicKey.rawRepresentation
        let signature = key.signature(
            for: SecAggProtocol.advertisedKeysMessage(
                roundID: roundID, participant: peer, encryptionKey: encryption, maskingKey: masking))
        return AdvertisedKeys(participant: peer, encryptionKey: encryption, maskingKey: masking, signature: signature)
    }

    private func derBytes(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}

/// The site every attack aims at: a real agent with the default ``SitePolicy``, a signing
/// certificate of the test federation, and a stand-in for training that returns a fixed,
/// recognisable update, so a test knows exactly which bytes would betray it.
enum Victim {
    static let name: SiteID = "mc-victim"
    static let datasetName = "clinic"
    static let architecture = ModelArchitecture.mlp(inputs: 2, hidden: [16], classes: 2)
    /// Seeds the agent's stochastic rounding, so that its quantized input can be recomputed.
    static let simulationSeed: UInt64 = 0x5EED_0F_7E55
    static let sampleCount = 12
    static let loss = 0.612_345_678_901_234_5
    static let accuracy = 0.729_166_666_666_666_6
    static let task = TrainingTask(epochs: 1, batchSize: 4, seed: 31)

    /// The update the site's training returns: distinct values inside the clipping bound.
    static func delta(count: Int) -> [Float] {
        (0..<count).map { Float($0 % 17) * 0.0137 - 0.09 + Float($0) * 0.000_1 }
    }

    static func globalModel() throws -> [Float] { try architecture.build(seed: 7).parameters }

    /// - Parameter trains: whether the site really trains (with its own checks of the global
    ///   model) instead of returning ``delta(count:)``.
    static func agent(policy: SitePolicy = SitePolicy(), trains: Bool = false) throws -> ParticipantAgent {
        let fixedUpdate: ParticipantAgent.TrainingOverride = { global, _ in
            TrainingOutcome(
                delta: delta(count: global.count), sampleCount: sampleCount, loss: loss, accuracy: accuracy, steps: 3)
        }
        return ParticipantAgent(
            site: name, data: [datasetName: try data()], policy: policy,
            signer: try SimulatedSigning.testFederation.signer(for: name),
            credentialVerifier: SimulatedSigning.testFederation.verifier, simulationSeed: simulationSeed,
            trainingOverride: trains ? nil : fixedUpdate)
    }

    /// Twelve training rows and six held-out rows of two features.
    static func data() throws -> LocalData {
        func rows(_ count: Int, offset: Float) throws -> Dataset {
            let features = (0..<count).flatMap { [Float($0) * 0.25 + offset, Float($0 % 3) - offset] }
            let labels = (0..<count).map { Float(($0 * 7 + 1) % 2) }
            return try Dataset(
                features: Tensor(shape: [count, 2], scalars: features), labels: Tensor(labels), classCount: 2)
        }
        return LocalData(train: try rows(12, offset: 0.1), test: try rows(6, offset: 0.4))
    }

    static func train(
        round: Int, architecture: ModelArchitecture = Victim.architecture, parameters: [Float],
        secure: SecureRoundAssignment?
    ) -> CoordinatorMessage {
        .train(
            TrainInstruction(
                experimentID: ScriptedCoordinator.experimentID, round: round,
                modelVersion: ModelVersion(major: 1, minor: round, patch: 0), architecture: architecture,
                datasetName: datasetName, parameters: parameters, task: task, secure: secure))
    }

    static func evaluate(round: Int, parameters: [Float], secure: SecureRoundAssignment?) -> CoordinatorMessage {
        .evaluate(
            EvaluateInstruction(
                experimentID: ScriptedCoordinator.experimentID, round: round,
                modelVersion: ModelVersion(major: 1, minor: round, patch: 0), architecture: architecture,
                datasetName: datasetName, parameters: parameters, secure: secure))
    }

    /// The input the agent masks in a secure training round under `assignment`: its quantized
    /// update, then its metrics block, computed as ``ParticipantAgent`` does with the same seed.
    static func quantizedInput(_ assignment: SecureRoundAssignment, parameterCount: Int) throws -> [UInt32] {
        let weight = UInt32(clamping: min(sampleCount, Int(assignment.maxWeight)))
        var generator = TesseraRandom(seed: simulationSeed ^ task.seed)
        let update = try assignment.codec().encode(delta(count: parameterCount), weight: weight, using: &generator)
        let metrics: [Double?] = [loss, accuracy]
        return update + (try assignment.metrics().encode(Array(metrics.prefix(assignment.metricCount)), weight: weight))
    }

    /// What would betray the site in a round under `assignment` (a default roster's when none).
    static func secrets(_ assignment: SecureRoundAssignment? = nil) throws -> SiteSecrets {
        let assignment = try assignment ?? Roster(roundID: 0xC0_FFFF, site: name).assignment
        let count = try globalModel().count
        return SiteSecrets(
            update: delta(count: count),
            quantizedUpdate: Array(try quantizedInput(assignment, parameterCount: count).prefix(count)),
            metrics: [loss, accuracy])
    }

    /// The site's metrics on its held-out rows for `parameters`, as it would compute them.
    static func evaluation(of parameters: [Float]) throws -> EvaluationMetrics {
        let trainer = LocalTrainer(model: try architecture.build(seed: 0), loss: architecture.loss)
        return try trainer.evaluate(parameters: parameters, on: try #require(try data().test))
    }
}

/// What would betray a site if it ever left it.
struct SiteSecrets {
    /// Its update in the clear.
    var update: [Float]
    /// Its update quantized for the round, unmasked. (The metrics block that follows it in the
    /// input is mostly zero words, too plain to search for: the metrics are searched as values.)
    var quantizedUpdate: [UInt32]
    /// Metric values it keeps to itself (as the 8 bytes of a protobuf `double`).
    var metrics: [Double]
}

extension ScriptedCoordinator.Outcome {
    /// Expects that no 16-byte run of the site's update (in the clear or quantized) and none of
    /// its metric values occurs in anything the site sent, and that the site sent nothing the
    /// script did not read.
    func expectNoLeak(of secrets: SiteSecrets, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(transcript.count > 0, "nothing was recorded", sourceLocation: sourceLocation)
        #expect(
            !transcript.containsRun(of: littleEndianBytes(secrets.update)), "the site's update left it in the clear",
            sourceLocation: sourceLocation)
        #expect(
            !transcript.containsRun(of: littleEndianBytes(secrets.quantizedUpdate)),
            "the site's quantized update left it unmasked", sourceLocation: sourceLocation)
        for metric in secrets.metrics {
            #expect(
                !transcript.containsRun(of: littleEndianBytes(metric), length: 8),
                "the site's metric \(metric) left it", sourceLocation: sourceLocation)
        }
        #expect(unread.isEmpty, "the site also sent \(unread)", sourceLocation: sourceLocation)
    }
}

extension ScriptedCoordinator {
    /// Sends a secure training task and reads the site's two answers: its report, then its keys.
    func trainSecurely(
        round: Int, _ assignment: SecureRoundAssignment, model: [Float]
    ) async throws -> (report: TrainingReport, keys: AdvertiseKeysMessage) {
        try send(Victim.train(round: round, parameters: model, secure: assignment))
        let first = try await reply()
        guard case .trained(round, let report) = first else {
            throw ScriptError("the site answered a secure training task with \(first)")
        }
        let second = try await reply()
        guard case .secAgg(round, .advertiseKeys(let keys)) = second else {
            throw ScriptError("the site's report was followed by \(second), not its keys")
        }
        return (report, keys)
    }
}

extension HonestPeers {
    /// The peers of a training round of `roster` on a `parameterCount`-parameter model, with the
    /// SecAgg configuration the site builds from its assignment.
    init(training roster: Roster, parameterCount: Int) throws {
        try self.init(
            roster,
            configuration: roster.assignment.configuration(
                vectorLength: parameterCount, verificationKeys: roster.verificationKeys))
    }
}

extension ParticipantMessage {
    /// The reason of a failure; `nil` for any other message.
    var refusal: String? {
        if case .failed(_, let reason) = self { reason } else { nil }
    }

    /// The keys of an AdvertiseKeys message; `nil` for any other message.
    var advertisedKeys: AdvertiseKeysMessage? {
        if case .secAgg(_, .advertiseKeys(let keys)) = self { keys } else { nil }
    }
}

/// Little-endian bytes, as protobuf and the chunked vectors put numbers on the wire.
func littleEndianBytes(_ values: [Float]) -> [UInt8] { values.flatMap { littleEndianBytes($0.bitPattern) } }
func littleEndianBytes(_ words: [UInt32]) -> [UInt8] { words.flatMap { littleEndianBytes($0) } }
func littleEndianBytes(_ value: Double) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt64($0))) }
}
private func littleEndianBytes(_ word: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * UInt32($0))) }
}
