public import Foundation
public import Logging
import ServiceLifecycle
import Synchronization
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraSecAgg
public import TesseraTransport
public import TesseraWire
public import Tracing
import X509

/// What `tessera-participant` does: load and check the site's data, then keep a session with
/// the coordinator: as a service by default (``Mode/service``: it waits for experiment after
/// experiment and reconnects whenever the coordinator goes away, until SIGTERM/SIGINT), or until
/// the coordinator ends the first session cleanly (``Mode/once``).
///
/// For fault-injection tests only, the environment variable `TESSERA_PARTICIPANT_FAILPOINT`
/// makes the process kill itself at an exact point of the secure-aggregation protocol, as a
/// site that loses power would: `die-on-masked-input-request` or `die-on-unmasking-request`
/// (see ``ParticipantFailpoint``). Any other non-empty value is a startup error. Never set it on
/// a real site.
public struct ParticipantProgram: Sendable {
    /// How long the participant stays.
    public enum Mode: String, Sendable, CaseIterable {
        /// A long-running site (the default, and what the systemd unit runs): the session is
        /// reopened after the coordinator ends it, and reconnection after any failure goes on with
        /// jittered exponential backoff for as long as the process runs. Only a refusal a person
        /// must act on (a revoked or replaced identity, a protocol the coordinator does not speak)
        /// stops it.
        case service
        /// One experiment (`--once`): the process exits once the coordinator ends a session
        /// cleanly, as scripts and tests of one run want.
        case once
    }

    public var configFile: URL
    /// The fault to inject (`nil`, the default, for a real site).
    public var failpoint: ParticipantFailpoint?
    public var mode: Mode
    /// The process's metrics (`GET /metrics` on the HTTP port).
    public let metrics: MetricsExport
    /// What the site's client counts into ``metrics``.
    public let counters: ParticipantMetrics
    /// The tracer the executable set up (`--otlp-endpoint`); `nil`: no tracing.
    public var tracer: (any Tracer)?
    /// Where the HTTP port listens (`--http`): `/metrics`, `/healthz` and `/readyz` (ready while
    /// a session with the coordinator is established). `nil`: no HTTP port.
    public var httpListen: Endpoint?
    /// Receives the HTTP port's bound port (useful with port 0).
    public var onHTTPListening: @Sendable (Int) -> Void = { _ in }

    public init(
        configFile: URL, mode: Mode = .service, failpoint: ParticipantFailpoint? = nil,
        metrics: MetricsExport = MetricsExport(program: "tessera-participant")
    ) {
        self.metrics = metrics
        self.counters = ParticipantMetrics(factory: metrics.factory)
        self.configFile = configFile
        self.mode = mode
        self.failpoint = failpoint
    }

    /// The client configuration a site file and a mode give (the revocation hook aside).
    public static func clientConfiguration(
        for config: ParticipantSiteConfig, mode: Mode
    ) -> ParticipantClient.Configuration {
        var configuration = config.connection.applied(to: ParticipantClient.Configuration())
        configuration.reconnectAfterSessionEnds = mode == .service
        configuration.maximumAttempts = nil
        return configuration
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
        let ledger: PrivacyLedger
        if let url = config.privacyLedger {
            ledger = try PrivacyLedger(store: FilePrivacyLedgerStore(url: url))
            let spent = ledger.spent(delta: config.policy.privacyDelta).map { entry in
                "\(entry.experiment) ε \(entry.epsilon.formatted(.number.precision(.significantDigits(4)))) over \(entry.rounds) rounds"
            }
            logger.info(
                "privacy ledger \(url.path): \(spent.isEmpty ? "nothing spent yet" : spent.joined(separator: "; "))")
        } else {
            ledger = PrivacyLedger()
        }
        let agent = ParticipantAgent(
            site: config.site, data: data, softwareVersion: "tessera-participant", policy: config.policy,
            signer: trust.signer, credentialVerifier: trust.signingVerifier, privacyLedger: ledger)
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
        var configuration = Self.clientConfiguration(for: config, mode: mode)
        configuration.revocationListReceived = { trust.offer(signedRevocationList: $0) }
        configuration.metrics = counters
        configuration.tracer = tracer
        let session = SessionEstablished()
        configuration.sessionEstablished = { established in session.value.withLock { $0 = established } }
        let connection = config.connection
        logger.info(
            "\(mode == .service ? "service mode: waits for experiment after experiment and reconnects for as long as it runs" : "once: exits when the coordinator ends the experiment"); backoff \(connection.backoffBase) to \(connection.backoffCap), coordinator silent after \(connection.missedHeartbeats) heartbeats, keepalive \(connection.keepaliveInterval.map { "\($0)" } ?? "off")"
        )
        let client = ParticipantClient(
            agent: agent, configuration: configuration, interception: interception, clock: MonotonicClock(),
            logger: logger)
        let security = ClientSecurity.mutualTLS(
            certificate: config.certificate, privateKey: config.privateKey, caCertificate: config.caCertificate,
            checkCoordinator: trust.coordinatorCheck)
        let service = ParticipantRunService(client: client, endpoint: config.coordinator, security: security)
        logger.info("connecting to \(config.coordinator)")
        guard let httpListen else {
            return try await ProgramLifecycle.run(service, name: "participant", logger: logger)
        }
        let coordinator = config.coordinator
        let server = ObservabilityServer(
            endpoint: httpListen, metrics: metrics.exposition,
            readiness: {
                session.value.withLock { $0 } ? .ready : .notReady("no session with the coordinator at \(coordinator)")
            })
        try await server.run(logger: logger) { port in
            onHTTPListening(port)
            try await ProgramLifecycle.run(service, name: "participant", logger: logger)
        }
    }
}

extension ParticipantProgram {
    /// The exit status `tessera-participant` reports for `error`: ``exitStatusNeedsAttention``
    /// when restarting cannot help and a person must act (an unusable site file, identity or
    /// data; the coordinator refused this site), 1 otherwise. The systemd unit does not restart
    /// on the first.
    public static func exitStatus(for error: any Error) -> Int32 {
        switch error {
        case let error as TesseraRuntimeError
        where error.code == .invalidConfiguration || error.code == .sessionRefused:
            exitStatusNeedsAttention
        case is PKIError: exitStatusNeedsAttention
        default: 1
        }
    }

    /// `EX_CONFIG` of sysexits.h: the unit file's `RestartPreventExitStatus`.
    public static let exitStatusNeedsAttention: Int32 = 78

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

/// Whether a session with the coordinator is established (the participant's `/readyz`).
private final class SessionEstablished: Sendable {
    let value = Mutex(false)
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
