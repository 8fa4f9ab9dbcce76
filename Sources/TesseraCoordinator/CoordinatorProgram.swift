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
    /// The federation CA directory (`ca.pem`, `revoked.json`).
    public var caDirectory: URL
    /// Where results go; the experiment's output directory when `nil`.
    public var resultsDirectory: URL?
    /// The transport and session limits (`tessera-coordinator`'s limit flags).
    public var limits: CoordinatorLimits

    public init(
        experiment: URL, listen: Endpoint, tlsDirectory: URL, caDirectory: URL, resultsDirectory: URL? = nil,
        limits: CoordinatorLimits = CoordinatorLimits()
    ) {
        self.experiment = experiment
        self.listen = listen
        self.tlsDirectory = tlsDirectory
        self.caDirectory = caDirectory
        self.resultsDirectory = resultsDirectory
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

    /// The parts of the configuration that come from the CA directory: the check of the signing
    /// certificates sites offer (the CA certificate and `revoked.json`, re-read on every check),
    /// and the CA-signed `revoked.signed`, relayed to every site that connects.
    static func trustConfiguration(caDirectory: URL) throws -> CoordinatorService.Configuration {
        let ca = try PEMFile.loadCertificate(from: caDirectory.appendingPathComponent(FederationCA.certificateFileName))
        let signedList = caDirectory.appendingPathComponent(FederationCA.signedRevocationListFileName)
        return CoordinatorService.Configuration(
            signingVerifier: SigningCertificateValidator(
                caCertificate: ca,
                revocation: .file(caDirectory.appendingPathComponent(FederationCA.revokedFileName))),
            signedRevocationList: { (try? [UInt8](Data(contentsOf: signedList))) ?? [] })
    }

    /// Runs to the end; `onListening` receives the bound port (useful with port 0).
    public func run(logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let started = Date()
        let config = try ExperimentConfig.load(from: experiment)
        try config.validateForRuntime()
        let architecture = try Self.architecture(of: config)
        var plan = config.federationPlan(datasetName: config.name, architecture: architecture)
        // A deployment draws each round's public randomness from the CSPRNG; the round records
        // keep it.
        plan.publicRandomness = .system
        let initial = try architecture.build(seed: config.seed).parameters
        let identity = try PeerCertificateIdentityResolver(caDirectory: caDirectory)
        try limits.validate()
        var configuration = try Self.trustConfiguration(caDirectory: caDirectory)
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
            caCertificate: caDirectory.appendingPathComponent("ca.pem"), logger: logger, onListening: onListening)
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
