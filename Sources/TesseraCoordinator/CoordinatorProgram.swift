public import Foundation
public import Logging
import ServiceLifecycle
public import TesseraFederation
import TesseraPKI
import TesseraTensor
public import TesseraTransport

/// What `tessera-coordinator` does, reachable from tests: load the experiment, serve it over
/// mTLS until it finishes (or SIGTERM/SIGINT asks for a graceful stop), then write the results
/// and the final model.
///
/// The coordinator holds no data, so it cannot infer the model's shape from a dataset: the
/// experiment file must give `model.inputs` and `model.classes`. Participants offer the dataset
/// named after the experiment (`name:` in the file).
public struct CoordinatorProgram: Sendable {
    public var experiment: URL
    public var listen: Endpoint
    /// The coordinator's identity directory (`cert.pem`, `key.pem`).
    public var tlsDirectory: URL
    /// The federation's trust folder (``TrustFolder``: `ca.pem`, `revoked.signed`). A folder
    /// holding the CA's private key is refused.
    public var trustDirectory: URL
    /// Where results go; the experiment's output directory when `nil`.
    public var resultsDirectory: URL?
    /// How often `revoked.signed` is re-read; the sessions and model fetches of a revoked
    /// certificate end at the next read.
    public var revocationCheckInterval: Duration
    /// The transport and session limits (`tessera-coordinator`'s limit flags).
    public var limits: CoordinatorLimits

    public init(
        experiment: URL, listen: Endpoint, tlsDirectory: URL, trustDirectory: URL, resultsDirectory: URL? = nil,
        revocationCheckInterval: Duration = .seconds(10), limits: CoordinatorLimits = CoordinatorLimits()
    ) {
        self.experiment = experiment
        self.listen = listen
        self.tlsDirectory = tlsDirectory
        self.trustDirectory = trustDirectory
        self.resultsDirectory = resultsDirectory
        self.revocationCheckInterval = revocationCheckInterval
        self.limits = limits
    }

    /// The model a coordinator builds for `config`, without data.
    public static func architecture(of config: ExperimentConfig) throws -> ModelArchitecture {
        guard let inputs = config.model.inputs, let classes = config.model.classes else {
            throw ConfigError(
                .missingValue, path: "model",
                "the coordinator has no data to infer the model's shape from; set model.inputs and model.classes")
        }
        return try config.model.architecture(dataInputs: inputs, dataClasses: classes)
    }

    /// Opens the trust folder, refusing one that holds the CA's private key (with what to move
    /// where) or whose `revoked.signed` does not verify against its `ca.pem`.
    static func openTrust(_ directory: URL) throws(TesseraRuntimeError) -> TrustFolder {
        do {
            return try TrustFolder.open(directory)
        } catch let error as PKIError where error.code == .exposedCAKey {
            throw TesseraRuntimeError(.invalidConfiguration, "refusing to start: \(error.message)")
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot use \(directory.path) as the federation's trust folder", cause: error)
        }
    }

    /// The parts of the configuration that come from the trust folder, all read from its
    /// `revoked.signed` (CA signature checked on every read): the check of the signing
    /// certificates sites offer, the list relayed to every site that connects, and the serials
    /// whose sessions and fetches end at each revocation check.
    static func trustConfiguration(
        _ trust: TrustFolder, revocationCheckInterval: Duration = .seconds(10)
    ) -> CoordinatorService.Configuration {
        let signedList = trust.signedRevocationListURL
        return CoordinatorService.Configuration(
            signingVerifier: trust.signingValidator(),
            signedRevocationList: { (try? [UInt8](Data(contentsOf: signedList))) ?? [] },
            revokedSerials: { try trust.revokedSerials() },
            revocationCheckInterval: revocationCheckInterval)
    }

    /// Runs to the end; `onListening` receives the bound port (useful with port 0).
    public func run(logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let started = Date()
        // First: a coordinator given the CA's private key stops before it does anything else.
        let trust = try Self.openTrust(trustDirectory)
        let config = try ExperimentConfig.load(from: experiment)
        try config.validateForRuntime()
        let architecture = try Self.architecture(of: config)
        var plan = config.federationPlan(datasetName: config.name, architecture: architecture)
        // A deployment draws each round's public randomness from the CSPRNG; the round records
        // keep it.
        plan.publicRandomness = .system
        let initial = try architecture.build(seed: config.seed).parameters
        let identity = PeerCertificateIdentityResolver(validator: trust.peerValidator())
        try limits.validate()
        var configuration = Self.trustConfiguration(trust, revocationCheckInterval: revocationCheckInterval)
        configuration.limits = limits
        let coordinator = CoordinatorService(
            plan: plan, initialModel: initial, strategy: try config.makeStrategy(), identity: identity,
            configuration: configuration, clock: MonotonicClock(), logger: logger)
        let directory =
            resultsDirectory
            ?? (config.resolvedOutputDirectory.hasPrefix("/")
                ? URL(fileURLWithPath: config.resolvedOutputDirectory)
                : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                    config.resolvedOutputDirectory))
        let service = CoordinatorRunService(
            coordinator: coordinator, listen: listen, tlsDirectory: tlsDirectory,
            caCertificate: trust.caCertificateURL, logger: logger, onListening: onListening)
        logger.info(
            "trust: \(trust.directory.path); revocation list re-read every \(revocationCheckInterval)")
        logger.info(
            "experiment \(config.name): \(plan.rounds) rounds of \(architecture.summary); dataset \"\(config.name)\"")
        try await ProgramLifecycle.run(service, name: "coordinator", logger: logger)

        let outcome = await coordinator.outcome
        let participants = outcome.records.map(\.cohortSize).max() ?? 0
        let paths = try FederationArtifacts.write(
            outcome, config: config, architecture: architecture, participants: participants, startedAt: started,
            to: directory)
        logger.info(
            "\(outcome.completedRounds) of \(plan.rounds) rounds completed; results in \(paths.results.csv.deletingLastPathComponent().path), model \(paths.model.lastPathComponent)"
        )
        if let peak = ProcessMemory.peakResidentBytes() {
            logger.info("peak resident memory: \(String(format: "%.1f", Double(peak) / 1_048_576)) MiB")
        }
    }
}

/// The coordinator as a `Service`: a graceful shutdown cancels the run, which closes every
/// session and stops the server; completed rounds are kept.
struct CoordinatorRunService: Service {
    let coordinator: CoordinatorService
    let listen: Endpoint
    let tlsDirectory: URL
    let caCertificate: URL
    let logger: Logger
    let onListening: @Sendable (Int) -> Void

    func run() async throws {
        try await coordinator.withServer(
            listeningOn: listen, identityDirectory: tlsDirectory, caCertificate: caCertificate
        ) {
            port in
            logger.info("listening on \(Endpoint(host: listen.host, port: port)) (mTLS)")
            onListening(port)
            // A graceful shutdown ends the run rather than cancelling the server: sessions close
            // with UNAVAILABLE, then the server drains and stops.
            await withGracefulShutdownHandler {
                _ = await coordinator.run()
            } onGracefulShutdown: {
                logger.notice("stopping: graceful shutdown requested")
                coordinator.stop()
            }
        }
    }
}
