import Foundation
import GRPCCore
import TesseraCoordinator
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraSimulation
import TesseraTesting
import TesseraTransport
import Testing

/// The federation over HTTP/2 with mTLS on 127.0.0.1 (port 0, read back), with a throwaway PKI.
@Suite struct MutualTLSTests {
    struct PKI {
        let root: URL
        let ca: FederationCA
        var caDirectory: URL { root.appendingPathComponent("ca") }
        var caPEM: URL { caDirectory.appendingPathComponent(FederationCA.certificateFileName) }
        var coordinator: URL { root.appendingPathComponent("coordinator") }
        func site(_ name: String) -> URL { root.appendingPathComponent(name) }

        init(sites: [String]) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-mtls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            _ = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
            for site in sites { _ = try ca.issue(site: site, to: root.appendingPathComponent(site)) }
        }
    }

    /// Runs `body` against a listening coordinator; returns the bound port to it.
    func withCoordinator<Result: Sendable>(
        _ experiment: PreparedExperiment, pki: PKI,
        _ body: @Sendable (CoordinatorService, Int) async throws -> Result
    ) async throws -> Result {
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: try PeerCertificateIdentityResolver(caDirectory: pki.caDirectory),
            configuration: CoordinatorService.Configuration().withTestFederation, clock: MonotonicClock(),
            logger: testLogger())
        return try await coordinator.withServer(
            listeningOn: Endpoint(host: "127.0.0.1", port: 0), identityDirectory: pki.coordinator,
            caCertificate: pki.caPEM
        ) { port in
            #expect(port > 0)
            return try await body(coordinator, port)
        }
    }

    func participant(_ agent: ParticipantAgent, attempts: Int? = nil) -> ParticipantClient {
        ParticipantClient(
            agent: agent,
            configuration: .init(
                backoffBase: .milliseconds(50), backoffCap: .milliseconds(200), maximumAttempts: attempts),
            clock: MonotonicClock(),
            logger: testLogger())
    }

    @Test func threeSitesCompleteAnExperimentOverMutualTLS() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "mtls", participants: 3, rounds: 3, secure: true, evaluateEvery: 3))
        let pki = try PKI(sites: experiment.data.sites.map(\.name))
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let agents = (try experiment.agents())
        let clients = agents.map { participant($0) }
        let outcome = try await withCoordinator(experiment, pki: pki) { coordinator, port in
            try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
                for client in clients {
                    let identity = pki.site(client.site)
                    group.addTask {
                        try await client.run(
                            connectingTo: Endpoint(host: "127.0.0.1", port: port),
                            security: .identityDirectory(identity))
                        return nil
                    }
                }
                group.addTask { await coordinator.run() }
                var outcome: CoordinatorService.Outcome?
                for try await result in group where result != nil { outcome = result }
                return outcome!
            }
        }
        #expect(outcome.completedRounds == 3)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
        #expect(outcome.rejections.isEmpty)
    }

    @Test func aClientWithoutACertificateIsRefused() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "mtls-nocert", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let pki = try PKI(sites: [])
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let client = participant((try experiment.agents())[0], attempts: 1)
        try await withCoordinator(experiment, pki: pki) { coordinator, port in
            await #expect(throws: TesseraRuntimeError.self) {
                try await client.run(
                    connectingTo: Endpoint(host: "127.0.0.1", port: port),
                    security: .serverAuthenticatedTLS(caCertificate: pki.caPEM))
            }
            #expect(await coordinator.connectedSites.isEmpty)
        }
    }

    @Test func aCertificateFromAnotherCAIsRefused() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "mtls-foreign", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let pki = try PKI(sites: [])
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let foreign = try FederationCA.initialize(
            at: pki.root.appendingPathComponent("other-ca"), name: "Some Other CA")
        let impostor = pki.root.appendingPathComponent("impostor")
        _ = try foreign.issue(site: "site-1", to: impostor)
        let client = participant((try experiment.agents())[0], attempts: 1)
        try await withCoordinator(experiment, pki: pki) { coordinator, port in
            let security = ClientSecurity.mutualTLS(
                certificate: impostor.appendingPathComponent("cert.pem"),
                privateKey: impostor.appendingPathComponent("key.pem"),
                caCertificate: pki.caPEM)
            await #expect(throws: TesseraRuntimeError.self) {
                try await client.run(connectingTo: Endpoint(host: "127.0.0.1", port: port), security: security)
            }
            #expect(await coordinator.connectedSites.isEmpty)
        }
    }

    @Test func aRevokedSiteIsRefusedOnItsNextConnection() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "mtls-revoked", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let site = experiment.data.sites[0].name
        let pki = try PKI(sites: [site])
        defer { try? FileManager.default.removeItem(at: pki.root) }
        _ = try pki.ca.revoke(site: site)
        let client = participant((try experiment.agents())[0], attempts: 1)
        try await withCoordinator(experiment, pki: pki) { coordinator, port in
            // The coordinator was started before the revocation was read: the list is checked
            // per connection, so no restart is needed.
            await #expect(throws: TesseraRuntimeError.self) {
                try await client.run(
                    connectingTo: Endpoint(host: "127.0.0.1", port: port), security: .identityDirectory(pki.site(site)))
            }
            #expect(await coordinator.connectedSites.isEmpty)
            #expect(await coordinator.joins.isEmpty)
        }
    }
}
