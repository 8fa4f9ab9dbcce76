import Foundation
public import GRPCCore
public import Logging
import TesseraFederation
public import TesseraState
import TesseraTransport
public import TesseraWire

/// What a caller of the experiments API may do, decided from its certificate: a researcher
/// submits, lists, shows, reads logs and models, and cancels what it submitted; an operator may
/// also cancel anyone's experiment. Sites have no role here.
public enum ExperimentsRole: Sendable, Hashable, CustomStringConvertible {
    case researcher(String)
    case `operator`(String)

    /// Who the state records as the submitter or canceller: `researcher:NAME`, `operator:NAME`.
    public var actor: String {
        switch self {
        case .researcher(let name): "researcher:\(name)"
        case .operator(let name): "operator:\(name)"
        }
    }

    /// An operator cancels any experiment; a researcher only those it submitted (recorded as
    /// its ``actor``).
    public func mayCancel(experimentSubmittedBy submitter: String) -> Bool {
        switch self {
        case .operator: true
        case .researcher: submitter == actor
        }
    }

    public var description: String { actor }
}

/// Decides a caller's role from the identity its certificate proved; `nil` refuses it.
public typealias ExperimentsAuthorization = @Sendable (PeerIdentity) -> ExperimentsRole?

/// `tessera.v1.ExperimentsService` over the coordinator's state: experiments submitted to a
/// running coordinator, and a read-only view of its model registry.
///
/// The caller is who its certificate says (``IdentityResolver``), and what it may do comes from
/// ``ExperimentsAuthorization``; nothing in a message names the caller. A submission is
/// validated exactly as `tessera validate` validates a file, and a refusal carries the same text.
/// Every researcher sees every experiment (`list`, `show`, `logs`): the queue is shared, and a
/// researcher needs to see what runs before its own; `mine` narrows a list to the caller's.
///
/// Relative dataset paths in a submitted file are not resolved against the researcher's file:
/// the coordinator records no source path for a submission, so they resolve against the
/// coordinator's working directory. Only a central evaluation set is read on the coordinator;
/// the sites' data is named by the experiment's name in each site's own configuration.
public struct ExperimentsAPIService: Tessera_V1_ExperimentsService.ServiceProtocol {
    public let state: CoordinatorState
    private let identity: any IdentityResolver
    private let authorize: ExperimentsAuthorization
    private let logger: Logger
    private let onChange: @Sendable (ExperimentRecord) -> Void

    /// `onChange` receives an experiment once it is committed as queued or cancelled: the
    /// coordinator's queue wakes on it, and stops a running experiment that was cancelled.
    public init(
        state: CoordinatorState, identity: any IdentityResolver, authorize: @escaping ExperimentsAuthorization,
        logger: Logger, onChange: @escaping @Sendable (ExperimentRecord) -> Void = { _ in }
    ) {
        self.state = state
        self.identity = identity
        self.authorize = authorize
        self.logger = logger
        self.onChange = onChange
    }

    // MARK: Experiments

    public func submit(
        request: ServerRequest<Tessera_V1_SubmitExperimentRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_SubmitExperimentResponse> {
        let role = try await caller(request.metadata, context, doing: "submitting an experiment")
        let message = request.message
        // Measured before anything reads the text: an oversized file is never parsed.
        try checked {
            try ExperimentsAPILimits.check(
                message.configYaml, maximumBytes: ExperimentsAPILimits.maximumConfigBytes,
                field: "tessera.v1.SubmitExperimentRequest.config_yaml")
            try ExperimentsAPILimits.check(
                message.source, maximumBytes: ExperimentsAPILimits.maximumSourceBytes,
                field: "tessera.v1.SubmitExperimentRequest.source")
        }
        let source = message.source.isEmpty ? "<submitted experiment>" : message.source
        let (config, architecture) = try Self.validate(yaml: message.configYaml, source: source)
        let record = try stateCall("queue the experiment") { () throws -> ExperimentRecord in
            if let running = try state.experiments().first(where: {
                !$0.status.isFinished && $0.configHash == config.configHash
            }) {
                throw RPCError(
                    code: .alreadyExists,
                    message:
                        "experiment \(running.id) (\(running.name)) with this configuration (hash \(config.configHash)) is already \(running.status), submitted by \(running.submittedBy)"
                )
            }
            return try state.submit(
                ExperimentSubmission(
                    name: config.name, configYAML: message.configYaml, configHash: config.configHash, source: nil,
                    architecture: architecture.summary, rounds: config.rounds, submittedBy: role.actor))
        }
        onChange(record)
        logger.info(
            "\(role) queued experiment \(record.id) (\(record.name)), model versions \(record.versionMajor).\(record.versionMinor).x"
        )
        var response = Tessera_V1_SubmitExperimentResponse()
        response.experiment = try Tessera_V1_Experiment(record, includingConfig: false)
        return ServerResponse(message: response)
    }

    /// The checks of `tessera validate`, plus the coordinator's own: a model whose shape the file
    /// gives (``CoordinatorProgram/architecture(of:)``) and a single configuration. The error is
    /// the ``ConfigError``'s text, which names `source`, the line and the YAML path.
    static func validate(yaml: String, source: String) throws -> (ExperimentConfig, ModelArchitecture) {
        do {
            let config = try ExperimentConfig.parse(yaml: yaml, source: source)
            try config.validateForRuntime()
            guard config.variants.isEmpty else {
                throw ConfigError(
                    .conflict, path: "variants",
                    "the coordinator queues one configuration per experiment; submit each variant as a file of its own",
                    file: source)
            }
            return (config, try CoordinatorProgram.architecture(of: config))
        } catch var error as ConfigError {
            if error.file == nil { error.file = source }
            throw RPCError(code: .invalidArgument, message: error.description)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(source): \(error)")
        }
    }

    public func list(
        request: ServerRequest<Tessera_V1_ListExperimentsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_ListExperimentsResponse> {
        let role = try await caller(request.metadata, context, doing: "listing experiments")
        let message = request.message
        let status = try checked {
            try ExperimentStatus(message.status, field: "tessera.v1.ListExperimentsRequest.status")
        }
        let limit = try checked {
            try ExperimentsAPILimits.limit(
                message.limit, default: ExperimentsAPILimits.defaultListLimit,
                maximum: ExperimentsAPILimits.maximumListLimit, field: "tessera.v1.ListExperimentsRequest.limit")
        }
        var records = try stateCall("list the experiments") { try state.experiments(status: status) }
        if message.mine { records.removeAll { $0.submittedBy != role.actor } }
        var response = Tessera_V1_ListExperimentsResponse()
        response.total = UInt64(records.count)
        response.experiments = try records.suffix(limit).map { try Tessera_V1_Experiment($0, includingConfig: false) }
        return ServerResponse(message: response)
    }

    public func show(
        request: ServerRequest<Tessera_V1_ShowExperimentRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_ShowExperimentResponse> {
        _ = try await caller(request.metadata, context, doing: "showing an experiment")
        let record = try experiment(request.message.id, field: "tessera.v1.ShowExperimentRequest.id")
        var response = Tessera_V1_ShowExperimentResponse()
        response.experiment = try Tessera_V1_Experiment(record, includingConfig: true)
        return ServerResponse(message: response)
    }

    public func cancel(
        request: ServerRequest<Tessera_V1_CancelExperimentRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_CancelExperimentResponse> {
        let role = try await caller(request.metadata, context, doing: "cancelling an experiment")
        let record = try experiment(request.message.id, field: "tessera.v1.CancelExperimentRequest.id")
        guard role.mayCancel(experimentSubmittedBy: record.submittedBy) else {
            throw RPCError(
                code: .permissionDenied,
                message:
                    "experiment \(record.id) (\(record.name)) was submitted by \(record.submittedBy); a researcher cancels only its own experiments, an operator any (you are \(role))"
            )
        }
        let cancelled = try stateCall("cancel experiment \(record.id)") { try state.cancel(record.id, by: role.actor) }
        onChange(cancelled)
        logger.notice("\(role) cancelled experiment \(record.id) (\(record.name))")
        var response = Tessera_V1_CancelExperimentResponse()
        response.experiment = try Tessera_V1_Experiment(cancelled, includingConfig: false)
        return ServerResponse(message: response)
    }

    public func logs(
        request: ServerRequest<Tessera_V1_ExperimentLogsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_ExperimentLogsResponse> {
        _ = try await caller(request.metadata, context, doing: "reading an experiment's log")
        let message = request.message
        let limit = try checked {
            try ExperimentsAPILimits.limit(
                message.limit, default: ExperimentsAPILimits.defaultLogLines,
                maximum: ExperimentsAPILimits.maximumLogLines, field: "tessera.v1.ExperimentLogsRequest.limit")
        }
        let record = try experiment(message.id, field: "tessera.v1.ExperimentLogsRequest.id")
        let lines = try stateCall("read the log of experiment \(record.id)") {
            try state.logs(of: record.id, limit: limit)
        }
        var response = Tessera_V1_ExperimentLogsResponse()
        response.lines = lines.map { entry in
            var line = Tessera_V1_LogLine()
            line.at = entry.at.timeIntervalSince1970
            line.line = entry.line
            return line
        }
        return ServerResponse(message: response)
    }

    // MARK: Models (read-only)

    public func listModels(
        request: ServerRequest<Tessera_V1_ListModelsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_ListModelsResponse> {
        _ = try await caller(request.metadata, context, doing: "listing models")
        let message = request.message
        let query = try checked { try ModelQuery(message) }
        let models = try stateCall("list the models") { try state.models(matching: query) }
        var response = Tessera_V1_ListModelsResponse()
        response.models = try checked {
            var wire: [Tessera_V1_RegisteredModel] = []
            for model in models { wire.append(try Tessera_V1_RegisteredModel(model)) }
            return wire
        }
        return ServerResponse(message: response)
    }

    public func showModel(
        request: ServerRequest<Tessera_V1_ShowModelRequest>, context: ServerContext
    ) async throws -> ServerResponse<Tessera_V1_ShowModelResponse> {
        _ = try await caller(request.metadata, context, doing: "showing a model")
        let text = request.message.reference
        try checked {
            try ExperimentsAPILimits.check(
                text, maximumBytes: ExperimentsAPILimits.maximumReferenceBytes,
                field: "tessera.v1.ShowModelRequest.reference")
        }
        let (model, transitions) = try stateCall("show model \(text)") {
            let model = try state.model(try ModelReference(parsing: text))
            return (model, try state.transitions(of: model.reference))
        }
        var response = Tessera_V1_ShowModelResponse()
        response.model = try checked { try Tessera_V1_RegisteredModel(model) }
        response.transitions = transitions.map { Tessera_V1_StageTransition($0) }
        return ServerResponse(message: response)
    }

    // MARK: Callers, errors

    /// The caller's role, or the refusal: UNAUTHENTICATED without a valid certificate,
    /// PERMISSION_DENIED for a certificate of no role here (a site's), naming the role needed.
    private func caller(
        _ metadata: Metadata, _ context: ServerContext, doing what: String
    ) async throws(RPCError) -> ExperimentsRole {
        let peer: PeerIdentity
        do {
            peer = try await identity.peer(metadata: metadata, context: context)
        } catch {
            throw RPCError(code: .unauthenticated, message: error.message)
        }
        guard let role = authorize(peer) else {
            logger.warning("refused \(what) to \(peer.site): not a researcher or an operator")
            throw RPCError(
                code: .permissionDenied,
                message:
                    "\(what) needs a researcher's or an operator's certificate (tessera pki issue --researcher NAME); \"\(peer.site)\" is neither"
            )
        }
        return role
    }

    /// The experiment `id` names, NOT_FOUND if there is none.
    private func experiment(_ id: UInt64, field: String) throws -> ExperimentRecord {
        guard id > 0, let id = Int64(exactly: id) else {
            throw RPCError(code: .invalidArgument, message: "\(field): an experiment id is at least 1, got \(id)")
        }
        return try stateCall("read experiment \(id)") { try state.experiment(id) }
    }

    /// Runs a request check, refusing the request with INVALID_ARGUMENT when it fails.
    private func checked<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as WireError {
            throw RPCError(code: .invalidArgument, message: "\(error.field ?? "request"): \(error.message)")
        }
    }

    /// Runs a state call, turning its errors into the status a client can act on.
    private func stateCall<T>(_ what: String, _ body: () throws -> T) throws(RPCError) -> T {
        do {
            return try body()
        } catch let error as RPCError {
            throw error
        } catch let error as StateError {
            let code: RPCError.Code =
                switch error.code {
                case .notFound: .notFound
                case .conflict: .failedPrecondition
                case .diskFull, .readOnly: .resourceExhausted
                default: .internalError
                }
            if code == .internalError { logger.error("cannot \(what): \(error)") }
            throw RPCError(code: code, message: error.message)
        } catch let error as RegistryError {
            let code: RPCError.Code =
                switch error.code {
                case .notFound: .notFound
                case .invalidReference, .invalidQuery, .ambiguous: .invalidArgument
                default: .internalError
                }
            throw RPCError(code: code, message: error.message)
        } catch {
            logger.error("cannot \(what): \(error)")
            throw RPCError(code: .internalError, message: "the coordinator could not \(what)")
        }
    }
}

// MARK: - Wire conversions of experiments

// Here rather than in TesseraWire: experiments are records of the coordinator's state
// (TesseraState), which the wire module does not depend on.

extension Tessera_V1_ExperimentStatus {
    public init(_ status: ExperimentStatus) {
        switch status {
        case .queued: self = .queued
        case .running: self = .running
        case .completed: self = .completed
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        }
    }
}

extension ExperimentStatus {
    /// `nil` for UNSPECIFIED (no status given); an unknown value throws.
    public init?(_ wire: Tessera_V1_ExperimentStatus, field: String) throws(WireError) {
        switch wire {
        case .unspecified: return nil
        case .queued: self = .queued
        case .running: self = .running
        case .completed: self = .completed
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        case .UNRECOGNIZED(let value):
            throw WireError(code: .unknownEnumValue, message: "unknown experiment status \(value).", field: field)
        }
    }
}

extension Tessera_V1_Experiment {
    /// The record on the wire; its configuration only when `includingConfig` (a list stays small).
    public init(_ record: ExperimentRecord, includingConfig: Bool) throws(WireError) {
        self.init()
        guard let id = UInt64(exactly: record.id), let major = UInt64(exactly: record.versionMajor),
            let minor = UInt64(exactly: record.versionMinor), let rounds = UInt64(exactly: record.roundsPlanned)
        else {
            throw WireError(
                code: .valueOutOfRange, message: "experiment \(record.id) has a negative id, version or round count.",
                field: "tessera.v1.Experiment")
        }
        self.id = id
        name = record.name
        status = Tessera_V1_ExperimentStatus(record.status)
        submittedBy = record.submittedBy
        submittedAt = record.submittedAt.timeIntervalSince1970
        if let startedAt = record.startedAt { self.startedAt = startedAt.timeIntervalSince1970 }
        if let finishedAt = record.finishedAt { self.finishedAt = finishedAt.timeIntervalSince1970 }
        versionMajor = major
        versionMinor = minor
        architecture = record.architecture
        roundsPlanned = rounds
        configHash = record.configHash
        if let message = record.message { self.message = message }
        if includingConfig { configYaml = record.configYAML }
    }
}

extension ExperimentRecord {
    /// A record as the coordinator sent it (`configYAML` is empty unless it came from Show).
    public init(_ wire: Tessera_V1_Experiment) throws(WireError) {
        func field(_ name: String) -> String { "tessera.v1.Experiment.\(name)" }
        func int(_ value: UInt64, _ name: String) throws(WireError) -> Int {
            guard let int = Int(exactly: value) else {
                throw WireError(code: .valueOutOfRange, message: "\(value) is out of range.", field: field(name))
            }
            return int
        }
        func date(_ seconds: Double, _ name: String) throws(WireError) -> Date {
            guard seconds.isFinite else {
                throw WireError(code: .valueOutOfRange, message: "\(seconds) is not a time.", field: field(name))
            }
            return Date(timeIntervalSince1970: seconds)
        }
        guard wire.id > 0, let id = Int64(exactly: wire.id) else {
            throw WireError(code: .valueOutOfRange, message: "\(wire.id) is not an experiment id.", field: field("id"))
        }
        guard let status = try ExperimentStatus(wire.status, field: field("status")) else {
            throw WireError(code: .missingField, message: "the experiment's status is missing.", field: field("status"))
        }
        let startedAt: Date? = try wire.hasStartedAt ? date(wire.startedAt, "started_at") : nil
        let finishedAt: Date? = try wire.hasFinishedAt ? date(wire.finishedAt, "finished_at") : nil
        self.init(
            id: id, name: wire.name, configYAML: wire.configYaml, configHash: wire.configHash, source: nil,
            status: status, submittedBy: wire.submittedBy, submittedAt: try date(wire.submittedAt, "submitted_at"),
            startedAt: startedAt, finishedAt: finishedAt,
            versionMajor: try int(wire.versionMajor, "version_major"),
            versionMinor: try int(wire.versionMinor, "version_minor"), architecture: wire.architecture,
            roundsPlanned: try int(wire.roundsPlanned, "rounds_planned"), message: wire.hasMessage ? wire.message : nil)
    }
}
