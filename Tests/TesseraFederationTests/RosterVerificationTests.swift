import Foundation
import TesseraCrypto
import TesseraData
import TesseraPKI
import TesseraSecAgg
import TesseraSimulation
import TesseraTensor
import Testing

@testable import TesseraFederation

/// In the active-adversary setting a site checks every signing certificate of the roster itself:
/// the coordinator relays them but cannot slip in one of its own making.
@Suite struct RosterVerificationTests {
    static let signing: SimulatedSigning = {
        do { return try SimulatedSigning() } catch { fatalError("\(error)") }
    }()

    func agent(_ site: String) throws -> ParticipantAgent {
        let data = try RoundFixtures.dataset(30, seed: 3)
        return ParticipantAgent(
            site: site, data: ["risk": LocalData(train: data)], signer: try Self.signing.signer(for: site),
            credentialVerifier: Self.signing.verifier, simulationSeed: 1)
    }

    /// A train task for `sites` (in protocol-id order) with the given certificates.
    func task(index: UInt32, certificates: [UInt32: [UInt8]], roundID: UInt64 = 77) throws -> CoordinatorMessage {
        let architecture = RoundFixtures.architecture
        let assignment = SecureRoundAssignment(
            roundID: roundID, participantIndex: index, rosterSize: certificates.count, graph: .complete, threshold: 2,
            clip: 2, bits: 16, maxWeight: 100, activeAdversary: true, credentials: certificates,
            metricCount: SecureMetricsLayout.training)
        return .train(
            TrainInstruction(
                experimentID: "roster", round: 1, modelVersion: ModelVersion(major: 1, minor: 0, patch: 0),
                architecture: architecture, datasetName: "risk", parameters: try architecture.build(seed: 1).parameters,
                task: TrainingTask(epochs: 1, batchSize: 8), secure: assignment))
    }

    func certificates(_ sites: [String]) throws -> [UInt32: [UInt8]] {
        var result: [UInt32: [UInt8]] = [:]
        for (offset, site) in sites.enumerated() {
            result[UInt32(offset + 1)] = try Self.signing.signer(for: site).certificate
        }
        return result
    }

    func refusal(_ replies: [ParticipantMessage]) -> String? {
        guard replies.count == 1, case .failed(_, let reason) = replies[0] else { return nil }
        return reason
    }

    @Test("An honest roster is accepted: the site advertises signed keys")
    func honestRoster() throws {
        let replies = try agent("rv-a").handle(task(index: 1, certificates: certificates(["rv-a", "rv-b", "rv-c"])))
        #expect(replies.count == 2, "\(replies)")
        guard case .secAgg(_, .advertiseKeys(let message)) = replies.last else {
            Issue.record("no AdvertiseKeys: \(replies)")
            return
        }
        #expect(message.keys.signature.count == 64)
    }

    @Test("A certificate of another federation is refused, naming the member")
    func otherFederation() throws {
        var roster = try certificates(["rv-a", "rv-b", "rv-c"])
        let stranger = try EphemeralFederationCA().issueSigningCredential(
            site: "rv-b", notValidBefore: Date() - 60, notValidAfter: Date() + 3600)
        roster[2] = stranger.certificateDER
        let reason = try #require(refusal(try agent("rv-a").handle(task(index: 1, certificates: roster))))
        #expect(reason.contains("roster member 2") && reason.contains("another CA"), "\(reason)")
    }

    @Test("A revoked peer is refused, naming the member")
    func revokedPeer() throws {
        let authority = try EphemeralFederationCA()
        let credentials = try ["rv-r1", "rv-r2", "rv-r3"].map {
            try authority.issueSigningCredential(site: $0, notValidBefore: Date() - 60, notValidAfter: Date() + 3600)
        }
        var roster: [UInt32: [UInt8]] = [:]
        for (offset, credential) in credentials.enumerated() { roster[UInt32(offset + 1)] = credential.certificateDER }
        let victim = ParticipantAgent(
            site: "rv-r1", data: ["risk": LocalData(train: try RoundFixtures.dataset(30, seed: 3))],
            signer: SiteSigner(
                key: try Ed25519PrivateKey(seed: credentials[0].ed25519Seed), certificate: credentials[0].certificateDER
            ),
            credentialVerifier: authority.signingValidator())
        try authority.revoke(serial: credentials[2].serial)
        let reason = try #require(refusal(victim.handle(try task(index: 1, certificates: roster))))
        #expect(reason.contains("roster member 3") && reason.contains("revoked"), "\(reason)")
    }

    @Test("One site in two places, or the site's own place given another certificate, is refused")
    func substitutedPlaces() throws {
        let twice = try certificates(["rv-a", "rv-b", "rv-b"])
        let reason = try #require(refusal(try agent("rv-a").handle(task(index: 1, certificates: twice))))
        #expect(reason.contains("two places"), "\(reason)")
        let notMine = try certificates(["rv-b", "rv-a", "rv-c"])
        let other = try #require(refusal(try agent("rv-a").handle(task(index: 1, certificates: notMine))))
        #expect(other.contains("not its own"), "\(other)")
    }

    @Test("A roster without certificates is refused in the active setting")
    func missingCertificates() throws {
        var roster = try certificates(["rv-a", "rv-b", "rv-c"])
        roster[3] = nil
        let message = try task(index: 1, certificates: roster)
        guard case .train(var instruction) = message else { return }
        instruction.secure?.rosterSize = 3
        let reason = try #require(refusal(try agent("rv-a").handle(.train(instruction))))
        #expect(reason.contains("2 signing certificates for 3 members"), "\(reason)")
    }
}
