import Foundation
public import Logging
public import TesseraCoordinator
public import TesseraFederation
import TesseraPKI
public import TesseraParticipant
public import TesseraTransport
public import Tracing

/// A whole federation on this machine over real HTTP/2 with mutual TLS on 127.0.0.1: a
/// throwaway federation CA issues the coordinator's and every site's certificate, the
/// coordinator listens on a free port, and every participant connects to it as a deployed
/// site would. This is `tessera simulate --transport loopback`: the full network path,
/// handshakes and identity checks included, without leaving the machine. The experiment starts
/// once every site is connected, so the outcome does not depend on the order they connect in.
public enum LoopbackFederation {
    /// Runs the experiment to the end and returns the coordinator's outcome. The throwaway PKI
    /// lives in a temporary directory that is removed afterwards. `tracer` traces the coordinator
    /// and every site (unless `configuration` names a tracer of its own for the coordinator).
    public static func run(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, participants: [ParticipantAgent],
        configuration: CoordinatorService.Configuration = .init(),
        configure: @Sendable (SiteID, inout ParticipantClient.Configuration) -> Void = { _, _ in },
        clock: any ServiceClock = MonotonicClock(), tracer: (any Tracer)? = nil, logger: Logger
    ) async throws -> CoordinatorService.Outcome {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-loopback-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let caDirectory = root.appendingPathComponent("ca")
        let ca = try FederationCA.initialize(at: caDirectory, name: "Tessera loopback CA (throwaway)", validityDays: 2)
        let coordinatorIdentity = root.appendingPathComponent("coordinator")
        _ = try ca.issueCoordinator(hosts: ["127.0.0.1", "localhost"], to: coordinatorIdentity, validityDays: 1)
        var sites: [(ParticipantClient, ClientSecurity)] = []
        let arrivals = SiteArrivals(expecting: participants.map(\.site))
        for agent in participants {
            let identity = root.appendingPathComponent("site-\(sites.count + 1)")
            _ = try ca.issue(site: agent.site, to: identity, validityDays: 1)
            // Each site checks the coordinator's certificate itself (role, host, its revocation
            // list), as `tessera-participant` does.
            let files = IssuedIdentity.Files(directory: identity)
            let trust = try SiteTrust(identityDirectory: identity, caCertificate: files.caCertificate, logger: logger)
            var clientConfiguration = ParticipantClient.Configuration(
                backoffBase: .milliseconds(50), backoffCap: .seconds(1),
                revocationListReceived: { trust.offer(signedRevocationList: $0) })
            clientConfiguration.tracer = tracer
            configure(agent.site, &clientConfiguration)
            let client = ParticipantClient.tapped(
                agent: agent, configuration: clientConfiguration,
                tap: SiteTap(inspectInbound: arrivals.observer(for: agent.site)), clock: clock, logger: logger)
            let security = ClientSecurity.mutualTLS(
                certificate: files.certificate, privateKey: files.privateKey, caCertificate: files.caCertificate,
                checkCoordinator: trust.coordinatorCheck)
            sites.append((client, security))
        }
        var configuration = configuration.withTestFederation
        configuration.tracer = configuration.tracer ?? tracer
        if configuration.signedRevocationList == nil {
            let list = ca.signedRevocationListURL
            configuration.signedRevocationList = { (try? [UInt8](Data(contentsOf: list))) ?? [] }
        }
        let coordinator = CoordinatorService(
            plan: plan, initialModel: initialModel, strategy: strategy,
            identity: try PeerCertificateIdentityResolver(caDirectory: caDirectory),
            configuration: configuration,
            clock: clock, logger: logger)
        let caCertificate = caDirectory.appendingPathComponent(FederationCA.certificateFileName)
        return try await coordinator.withServer(
            listeningOn: Endpoint(host: "127.0.0.1", port: 0), identityDirectory: coordinatorIdentity,
            caCertificate: caCertificate
        ) { port in
            logger.info("coordinator listening on 127.0.0.1:\(port) (mTLS, throwaway CA)")
            let endpoint = Endpoint(host: "127.0.0.1", port: port)
            return try await coordinator.run(
                alongside: sites.map { client, security in
                    { try await client.run(connectingTo: endpoint, security: security) }
                }, startingWhenAllOf: arrivals)
        }
    }
}
