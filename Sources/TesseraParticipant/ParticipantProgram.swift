public import Foundation
public import Logging
import ServiceLifecycle
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraSecAgg
public import TesseraTransport
public import TesseraWire
import X509

/// What `tessera-participant` does: load and check the site's data, then keep a session with
/// the coordinator until it ends the experiment (or SIGTERM/SIGINT).
///
/// For fault-injection tests only, the environment variable `TESSERA_PARTICIPANT_FAILPOINT`
/// makes the process kill itself at an exact point of the secure-aggregation protocol, as a
/// site that loses power would: `die-on-masked-input-request` or `die-on-unmasking-request`
/// (see ``ParticipantFailpoint``). Any other non-empty value is a startup error. Never set it on
/// a real site.
public struct ParticipantProgram: Sendable {
    public var configFile: URL
    /// The fault to inject (`nil`, the default, for a real site).
    public var failpoint: ParticipantFailpoint?

    public init(configFile: URL, failpoint: ParticipantFailpoint? = nil) {
        self.configFile = configFile
        self.failpoint = failpoint
    }

    public func run(logger: Logger) async throws {
        let config = try ParticipantSiteConfig.load(from: configFile)
        let changed = config.policy.settings.filter { !$0.isDefault }.map { "\($0.key.rawValue) \($0.value)" }
        logger.info(
            "site policy: \(changed.isEmpty ? "the defaults" : "the defaults except " + changed.joined(separator: ", "))"
        )
        let data = try config.loadData()
        for (name, local) in data.sorted(by: { $0.key < $1.key }) {
            logger.info(
                "dataset \(name): \(local.train.count) training and \(local.test?.count ?? 0) held-out samples, \(local.train.featuresPerSample) features"
            )
        }
        let trust = try SiteTrust(
            identityDirectory: config.certificate.deletingLastPathComponent(), caCertificate: config.caCertificate,
            logger: logger)
        let signing = trust.signer == nil ? "no signing certificate" : "signing certificate loaded"
        logger.info(
            "trust: federation CA \(trust.caCertificate.subject); revocation list #\(trust.revocationSequence); \(signing)"
        )
        let agent = ParticipantAgent(
            site: config.site, data: data, softwareVersion: "tessera-participant", policy: config.policy,
            signer: trust.signer, credentialVerifier: trust.signingVerifier)
        var interception = SessionInterception()
        if let failpoint {
            logger.warning(
                "failpoint \(failpoint.rawValue) is set (\(ParticipantFailpoint.environmentVariable)): this process will kill itself"
            )
            interception.inspectInbound = { inbound in
                guard failpoint.fires(on: inbound) else { return }
                logger.warning("failpoint \(failpoint.rawValue): exiting now")
                failpoint.die()
            }
        }
        let client = ParticipantClient(
            agent: agent,
            configuration: ParticipantClient.Configuration(revocationListReceived: {
                trust.offer(signedRevocationList: $0)
            }),
            interception: interception, clock: MonotonicClock(), logger: logger)
        let security = ClientSecurity.mutualTLS(
            certificate: config.certificate, privateKey: config.privateKey, caCertificate: config.caCertificate,
            checkCoordinator: trust.coordinatorCheck)
        let service = ParticipantRunService(client: client, endpoint: config.coordinator, security: security)
        logger.info("connecting to \(config.coordinator)")
        try await ProgramLifecycle.run(service, name: "participant", logger: logger)
    }
}

extension ParticipantProgram {
    /// What `tessera-participant --print-policy` prints: the effective policy of `configFile`
    /// (the defaults when `nil`) as a `policy:` section a site file can take, each key marked
    /// as the default or not. Nothing is connected to and no data is read.
    public static func policyReport(configFile: URL?) throws(TesseraRuntimeError) -> String {
        let policy = try configFile.map { url throws(TesseraRuntimeError) in
            try ParticipantSiteConfig.loadPolicy(from: url)
        }
        let source = configFile.map { "the site policy of \($0.path) (keys it does not write take their defaults)" }
        var lines = ["# \(source ?? "the default site policy (no --config given)")", "policy:"]
        let settings = (policy ?? SitePolicy()).settings
        let width = settings.map { $0.key.rawValue.count + $0.value.count }.max() ?? 0
        let defaults = SitePolicy()
        for setting in settings {
            let entry = "\(setting.key.rawValue): \(setting.value)"
            let padding = String(repeating: " ", count: width - setting.key.rawValue.count - setting.value.count)
            let note = setting.isDefault ? "default" : "set; default \(defaults.value(of: setting.key))"
            lines.append("  \(entry)\(padding)  # \(note)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A fault `tessera-participant` injects into itself for multi-process tests, named by
/// ``environmentVariable``: the process dies at an exact point of the secure-aggregation
/// protocol. A test that killed the process when a log line appeared could not choose that
/// point: by then the participant may have sent its next message.
///
/// Dying means `_exit(137)` (the status of a SIGKILLed process): no graceful shutdown, no
/// goodbye on the stream, no flushing; the kernel closes the socket, so the coordinator sees the
/// connection drop as it would after a crash or a power loss.
public enum ParticipantFailpoint: String, Sendable, CaseIterable {
    /// Dies on receiving the coordinator's request for its masked input. That request goes only
    /// to the survivors of ShareKeys, so this site's encrypted shares were delivered, and its
    /// masked input was never sent: the coordinator must remove its pairwise masks from the
    /// others' inputs with the shares of its mask key ("killed after ShareKeys").
    case dieOnMaskedInputRequest = "die-on-masked-input-request"
    /// Dies on receiving the Unmasking request. That request goes only to the sites whose masked
    /// input arrived, so this site's input is in the sum; only its unmasking shares are missing,
    /// and the other holders must reconstruct its self mask ("killed after sending its masked input").
    case dieOnUnmaskingRequest = "die-on-unmasking-request"

    public static let environmentVariable = "TESSERA_PARTICIPANT_FAILPOINT"

    /// The failpoint `environment` asks for: `nil` when the variable is unset or empty, an error
    /// naming the accepted values when it is anything else.
    public static func from(environment: [String: String]) throws(TesseraRuntimeError) -> ParticipantFailpoint? {
        guard let value = environment[environmentVariable], !value.isEmpty else { return nil }
        guard let failpoint = ParticipantFailpoint(rawValue: value) else {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "\(environmentVariable)=\(value) is not a failpoint; expected one of "
                    + "\(allCases.map(\.rawValue).joined(separator: ", ")), or leave it unset (it is for fault-injection tests only)"
            )
        }
        return failpoint
    }

    /// Whether the process dies on receiving `inbound`.
    public func fires(on inbound: CoordinatorInbound) -> Bool {
        guard case .secAgg(_, let request) = inbound else { return false }
        switch (self, request) {
        case (.dieOnMaskedInputRequest, .maskedInputRequest), (.dieOnUnmaskingRequest, .unmaskingRequest): return true
        default: return false
        }
    }

    func die() -> Never {
        _exit(137)
    }
}

struct ParticipantRunService: Service {
    let client: ParticipantClient
    let endpoint: Endpoint
    let security: ClientSecurity

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await client.run(connectingTo: endpoint, security: security)
            }
        } catch  where Task.isShuttingDownGracefully {
            // Stopping on SIGTERM/SIGINT is a normal exit; the coordinator counts this site out.
        }
    }
}
