public import Foundation
public import Logging
import ServiceLifecycle
import Synchronization
public import TesseraFederation
import TesseraPKI
public import TesseraState
import TesseraTensor
public import TesseraTransport
public import Tracing

/// What `tessera-coordinator` does, reachable from tests: open the state folder, queue the
/// experiment it was given (unless that experiment is already there, unfinished), and run the
/// unfinished experiments one after another over mTLS, each resumed from its last committed
/// round. SIGTERM/SIGINT asks for a graceful stop; a kill loses at most the round in progress.
///
/// The coordinator holds no data, so it cannot infer the model's shape from a dataset: the
/// experiment file must give `model.inputs` and `model.classes`. Participants offer the dataset
/// named after the experiment (`name:` in the file).
public struct CoordinatorProgram: Sendable {
    /// The round records a durable coordinator keeps in memory (the state has them all).
    static let recordsKeptInMemory = 16

    /// The experiment to queue on start (`--experiment`); `nil` runs what the state has queued.
    public var experiment: URL?
    /// The state folder (`--state`): `state.sqlite` and the model blobs.
    public var stateDirectory: URL
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
    /// When a failing site is benched (`--breaker-failures`, `--breaker-cool-down`).
    public var circuitBreaker: CircuitBreakerPolicy
    /// Queue ``experiment`` even if an experiment with the same configuration already finished
    /// (`--again`).
    public var runAgain = false
    /// Where the researcher API listens (`--api-listen`); with it the coordinator stays up when
    /// its queue is empty and runs what researchers submit. `nil`: no API, and the coordinator
    /// exits once the queue is empty.
    public var apiListen: Endpoint?
    /// The process's metrics (`GET /metrics` on the HTTP port), kept across experiments.
    public let metrics: MetricsExport
    /// What every experiment's ``CoordinatorService`` counts into ``metrics``.
    let counters: CoordinatorMetrics
    /// The tracer the executable set up (`--otlp-endpoint`); `nil`: no tracing.
    public var tracer: (any Tracer)?
    /// Where the HTTP port listens (`--http`): `/metrics`, `/healthz`, `/readyz` and the
    /// dashboard, open across experiments. `nil`: no HTTP port.
    public var httpListen: Endpoint?
    /// The operator token file of the dashboard's actions (`--dashboard-token-file`); without
    /// it the dashboard is read-only.
    public var dashboardTokenFile: URL?
    /// Receives the HTTP port's bound port (useful with port 0).
    public var onHTTPListening: @Sendable (Int) -> Void = { _ in }
    /// The live status the running experiment publishes and the dashboard shows.
    public let liveBoard = LiveRoundBoard()
    /// What `/readyz` answers.
    public let readiness = CoordinatorReadiness()

    public init(
        experiment: URL?, stateDirectory: URL = URL(fileURLWithPath: "tessera-state"), listen: Endpoint,
        tlsDirectory: URL, trustDirectory: URL, resultsDirectory: URL? = nil,
        revocationCheckInterval: Duration = .seconds(10), limits: CoordinatorLimits = CoordinatorLimits(),
        circuitBreaker: CircuitBreakerPolicy = CircuitBreakerPolicy(),
        metrics: MetricsExport = MetricsExport(program: "tessera-coordinator")
    ) {
        self.metrics = metrics
        self.counters = CoordinatorMetrics(factory: metrics.factory)
        self.experiment = experiment
        self.stateDirectory = stateDirectory
        self.listen = listen
        self.tlsDirectory = tlsDirectory
        self.trustDirectory = trustDirectory
        self.resultsDirectory = resultsDirectory
        self.revocationCheckInterval = revocationCheckInterval
        self.limits = limits
        self.circuitBreaker = circuitBreaker
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

    /// Runs every unfinished experiment to its end (or until a graceful stop); `onListening`
    /// receives the bound port of each experiment's server (useful with port 0).
    public func run(logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        // First: a coordinator given the CA's private key stops before it does anything else.
        let trust = try Self.openTrust(trustDirectory)
        try limits.validate()
        let token = try loadDashboardToken()
        let state = try CoordinatorState(directory: stateDirectory)
        try state.markAllDisconnected()
        // No commit is in flight yet: blobs a crash left without a row can go.
        let removed = try state.collectGarbage()
        let cleaned = removed > 0 ? " (removed \(removed) unreferenced files)" : ""
        logger.info("state: \(stateDirectory.path)\(cleaned)")
        metrics.onScrape { [counters] in
            guard let sites = try? state.sites() else { return }
            let now = Date()
            counters.sites(byHealth: Dictionary(grouping: sites) { $0.health(at: now) }.mapValues(\.count))
        }
        if let experiment {
            let record = try Self.queue(experiment, in: state, again: runAgain, logger: logger)
            if record.status.isFinished {
                // Already run (a coordinator restarted after the end, or killed while it wrote
                // the results): write the results again from the state, run nothing.
                let config = try ExperimentConfig.load(from: experiment)
                let paths = try writeResults(
                    of: record, config: config, architecture: try Self.architecture(of: config), state: state,
                    startedAt: Date())
                logger.notice(
                    "experiment \(record.id) (\(record.name)) with this configuration is already \(record.status); results written again to \(paths.results.csv.deletingLastPathComponent().path). Pass --again to run it once more."
                )
            }
        }
        try await withHTTP(state: state, token: token, logger: logger) {
            try await serve(state: state, trust: trust, logger: logger, onListening: onListening)
        }
    }

    /// Runs the queue, and with the researcher API keeps waiting for submissions.
    private func serve(
        state: CoordinatorState, trust: TrustFolder, logger: Logger, onListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        guard let apiListen else {
            try await runQueue(state: state, trust: trust, logger: logger, onListening: onListening)
            logger.info("no experiment left to run")
            return
        }
        let (submissions, submitted) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await ResearcherAPIServer.with(
            listeningOn: apiListen, identityDirectory: tlsDirectory, trust: trust, state: state, logger: logger,
            onChange: { _ in submitted.yield() }
        ) { port in
            logger.info("researcher API listening on \(Endpoint(host: apiListen.host, port: port)) (mTLS)")
            readiness.researchersListening(true)
            onAPIListening(port)
            while true {
                if try await runQueue(state: state, trust: trust, logger: logger, onListening: onListening) { return }
                logger.info("queue empty: waiting for experiments (tessera submit)")
                let idle = IdleUntilSubmission(next: {
                    for await _ in submissions { return true }
                    return false
                })
                try await ProgramLifecycle.run(idle, name: "coordinator", logger: logger)
                if !idle.woken.withLock({ $0 }) { return }
            }
        }
    }

    /// Receives the researcher API's bound port (useful with port 0).
    public var onAPIListening: @Sendable (Int) -> Void = { _ in }

    /// Runs the unfinished experiments in order until none is left; returns whether the
    /// coordinator was asked to stop.
    private func runQueue(
        state: CoordinatorState, trust: TrustFolder, logger: Logger, onListening: @escaping @Sendable (Int) -> Void
    ) async throws -> Bool {
        var finished: Set<Int64> = []
        while let next = try state.unfinishedExperiments().first(where: { !finished.contains($0.id) }) {
            finished.insert(next.id)
            let stopped = try await runExperiment(
                next, state: state, trust: trust, logger: logger, onListening: onListening)
            if stopped { return true }
        }
        return false
    }

    /// Queues the experiment in `file`, unless the state already has an experiment with the
    /// same configuration: a coordinator restarted with the same `--experiment` resumes it if it
    /// is unfinished, and does not run it again if it finished (unless `again`).
    @discardableResult
    static func queue(
        _ file: URL, in state: CoordinatorState, again: Bool = false, logger: Logger
    ) throws -> ExperimentRecord {
        let config = try ExperimentConfig.load(from: file)
        try config.validateForRuntime()
        let architecture = try Self.architecture(of: config)
        let same = try state.experiments().filter { $0.configHash == config.configHash }
        if let existing = same.first(where: { !$0.status.isFinished }) {
            logger.info("experiment \(existing.id) (\(existing.name)) is unfinished in the state: resuming it")
            return existing
        }
        if !again, let existing = same.last {
            return existing
        }
        let yaml = try String(contentsOf: file, encoding: .utf8)
        let user = ProcessInfo.processInfo.environment["USER"] ?? "operator"
        let record = try state.submit(
            ExperimentSubmission(
                name: config.name, configYAML: yaml, configHash: config.configHash,
                source: file.standardizedFileURL.path,
                architecture: architecture.summary, rounds: config.rounds, submittedBy: "local:\(user)"))
        logger.info(
            "queued experiment \(record.id) (\(record.name)), model versions \(record.versionMajor).\(record.versionMinor).x"
        )
        return record
    }

    /// Runs (or resumes) one experiment; returns whether the coordinator was asked to stop.
    private func runExperiment(
        _ record: ExperimentRecord, state: CoordinatorState, trust: TrustFolder, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void
    ) async throws -> Bool {
        let started = Date()
        let config: ExperimentConfig
        let architecture: ModelArchitecture
        do {
            config = try ExperimentConfig.parse(
                yaml: record.configYAML, source: record.source ?? "experiment \(record.id)",
                baseDirectory: record.source.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path })
            try config.validateForRuntime()
            architecture = try Self.architecture(of: config)
        } catch {
            // What was queued no longer loads (a newer Tessera validates more): the experiment
            // fails with the reason, and the queue goes on.
            logger.error("experiment \(record.id) (\(record.name)) cannot run: \(error)")
            try state.finish(record.id, as: .failed, message: "its configuration does not load: \(error)")
            return false
        }
        var plan = config.federationPlan(datasetName: config.name, architecture: architecture)
        plan.versionMajor = record.versionMajor
        plan.versionMinor = record.versionMinor
        plan.circuitBreaker = circuitBreaker
        plan.centralEvaluator = try config.makeCentralEvaluator(architecture: architecture)
        // A deployment draws each round's public randomness from the CSPRNG; the round records
        // keep it.
        plan.publicRandomness = .system

        let clock = MonotonicClock()
        let (machine, recorder) = try Self.resume(
            record, config: config, architecture: architecture, plan: plan, state: state, now: clock.now.inSeconds,
            logger: logger)
        let run = recorder.run

        let identity = PeerCertificateIdentityResolver(validator: trust.peerValidator())
        var configuration = Self.trustConfiguration(trust, revocationCheckInterval: revocationCheckInterval)
        configuration.limits = limits
        configuration.metrics = counters
        configuration.tracer = tracer
        // Published only for the dashboard: without --http the coordinator pays nothing for it.
        configuration.liveStatus = httpListen == nil ? nil : liveBoard
        liveBoard.begin(experiment: record.id, name: record.name)
        let readiness = readiness
        defer {
            readiness.participantsListening(false)
            liveBoard.endExperiment()
        }
        let coordinator = CoordinatorService(
            machine: machine, identity: identity, configuration: configuration, persistence: recorder, clock: clock,
            logger: logger)
        let service = CoordinatorRunService(
            coordinator: coordinator, listen: listen, tlsDirectory: tlsDirectory,
            caCertificate: trust.caCertificateURL, logger: logger,
            onListening: { port in
                readiness.participantsListening(true)
                onListening(port)
            })
        logger.info(
            "trust: \(trust.directory.path); revocation list re-read every \(revocationCheckInterval)")
        logger.info(
            "experiment \(record.id) \(config.name): \(plan.rounds) rounds of \(architecture.summary); dataset \"\(config.name)\"; versions \(plan.versionMajor).\(plan.versionMinor).x"
        )
        try await ProgramLifecycle.run(service, name: "coordinator", logger: logger)

        if let cancelled = await coordinator.failure as? ExperimentCancelled {
            logger.notice("\(cancelled); going on with the queue")
            let paths = try writeResults(
                of: record, config: config, architecture: architecture, state: state, startedAt: started)
            logger.info("results of the rounds it completed in \(paths.results.csv.deletingLastPathComponent().path)")
            return false
        }
        if let failure = await coordinator.failure {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "stopped: the state in \(stateDirectory.path) could not be committed; the last committed round is intact, and a restart resumes from it",
                cause: failure)
        }
        let finished = await coordinator.isFinished
        let outcome = await coordinator.outcome
        if finished {
            let status: ExperimentStatus =
                outcome.completedRounds == 0 && plan.rounds > 0 ? .failed : .completed
            try state.finish(
                record.id, as: status, message: "\(outcome.completedRounds) of \(plan.rounds) rounds completed")
        } else {
            try state.appendLog(record.id, ["run \(run) stopped by the operator; a restart resumes the experiment"])
        }
        let paths = try writeResults(
            of: record, config: config, architecture: architecture, state: state, startedAt: started)
        logger.info(
            "\(outcome.completedRounds) of \(plan.rounds) rounds completed; results in \(paths.results.csv.deletingLastPathComponent().path), model \(paths.model.lastPathComponent)"
        )
        if let peak = ProcessMemory.peakResidentBytes() {
            logger.info("peak resident memory: \(String(format: "%.1f", Double(peak) / 1_048_576)) MiB")
        }
        return !finished
    }

    /// Starts a run of `record` and rebuilds its machine from the state: the finished rounds,
    /// the latest model and strategy state, the attempt of the next round and the sites'
    /// breakers (moved onto the clock whose current instant is `now`).
    public static func resume(
        _ record: ExperimentRecord, config: ExperimentConfig, architecture: ModelArchitecture, plan: FederationPlan,
        state: CoordinatorState, now: Double, logger: Logger
    ) throws -> (CoordinatorStateMachine, ExperimentRecorder) {
        let run = try state.beginRun(of: record.id)
        let checkpoint = try state.checkpoint(of: record.id)
        var strategy = try config.makeStrategy()
        var model = try architecture.build(seed: config.seed).parameters
        if let latest = checkpoint.latestModel {
            model = try Self.parameters(of: latest, in: state, architecture: architecture)
            if let saved = checkpoint.strategyState { try strategy.restore(saved) }
            logger.info(
                "resuming experiment \(record.id) (\(record.name)) after round \(checkpoint.records.last?.round ?? 0) from model \(latest.version)"
            )
        } else if !checkpoint.records.isEmpty || checkpoint.nextAttempt > 0 {
            logger.info("resuming experiment \(record.id) (\(record.name)) from its initial model")
        }
        var machine = CoordinatorStateMachine(
            plan: plan, model: model, strategy: strategy,
            resume: .init(records: checkpoint.records, nextAttempt: checkpoint.nextAttempt))
        // The state holds every record; the machine keeps a few for the live status.
        machine.recordLimit = Self.recordsKeptInMemory
        let recorder = try ExperimentRecorder(state: state, experiment: record, run: run, architecture: architecture)
        machine.breakers = try recorder.breakers(now: now)
        return (machine, recorder)
    }

    /// The parameters of a registered version, read from its blob.
    static func parameters(
        of model: RegisteredModel, in state: CoordinatorState, architecture: ModelArchitecture
    ) throws -> [Float] {
        let file = try Safetensors.decode(try state.artifact(of: model))
        let built = try architecture.build(seed: 0)
        try built.loadNamedParameters(file.tensors)
        return built.parameters
    }

    /// Writes `rounds.csv`, `results.json`, `report.html` and `model.safetensors` from the
    /// state, so they always match what it committed.
    func writeResults(
        of record: ExperimentRecord, config: ExperimentConfig, architecture: ModelArchitecture,
        state: CoordinatorState, startedAt: Date
    ) throws -> FederationArtifacts.Paths {
        let directory =
            resultsDirectory
            ?? (config.resolvedOutputDirectory.hasPrefix("/")
                ? URL(fileURLWithPath: config.resolvedOutputDirectory)
                : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                    config.resolvedOutputDirectory))
        let checkpoint = try state.checkpoint(of: record.id)
        var model = try architecture.build(seed: config.seed).parameters
        var version = ModelVersion(major: record.versionMajor, minor: record.versionMinor, patch: 0)
        if let latest = checkpoint.latestModel {
            model = try Self.parameters(of: latest, in: state, architecture: architecture)
            version = latest.version
        }
        return try ExperimentArtifacts.write(
            records: checkpoint.records, finalModel: model, finalVersion: version, config: config,
            architecture: architecture, participants: checkpoint.records.map(\.cohortSize).max() ?? 0,
            transport: "gRPC", startedAt: record.startedAt ?? startedAt, to: directory)
    }
}

/// The coordinator between experiments: it ends when an experiment is submitted (``woken``)
/// or when SIGTERM/SIGINT asks the coordinator to stop.
final class IdleUntilSubmission: Service {
    let next: @Sendable () async -> Bool
    let woken = Mutex(false)

    init(next: @escaping @Sendable () async -> Bool) {
        self.next = next
    }

    func run() async throws {
        let next = next
        let submitted = try? await cancelWhenGracefulShutdown { await next() }
        woken.withLock { $0 = submitted == true }
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
