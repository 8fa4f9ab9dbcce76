public import Foundation
public import GRPCCore
public import GRPCNIOTransportHTTP2
public import TesseraFederation
public import TesseraState
public import TesseraTransport
public import TesseraWire

/// The client over HTTP/2 with mTLS: what `tessera submit` and `tessera experiments` use.
public typealias RemoteExperimentsClient = ExperimentsAPIClient<HTTP2ClientTransport.Posix>

/// A researcher's (or an operator's) client of a running coordinator's experiments API
/// (`tessera submit`, `tessera experiments …`): requests go out with the caller's certificate,
/// and answers come back as the state's own records, every field checked.
public struct ExperimentsAPIClient<Transport: ClientTransport>: Sendable {
    private let service: Tessera_V1_ExperimentsService.Client<Transport>
    private let metadata: Metadata

    /// `metadata` goes with every request (in-process tests identify the caller with it; over
    /// mTLS the certificate does).
    public init(wrapping client: GRPCClient<Transport>, metadata: Metadata = [:]) {
        self.service = Tessera_V1_ExperimentsService.Client(wrapping: client)
        self.metadata = metadata
    }

    /// Queues the experiment whose file text is `yaml`; `source` (the file's path) names it in
    /// validation errors. Refused before sending if over the coordinator's bound.
    public func submit(yaml: String, source: String) async throws -> ExperimentRecord {
        try ExperimentsAPILimits.check(
            yaml, maximumBytes: ExperimentsAPILimits.maximumConfigBytes, field: "the experiment file \(source)")
        var request = Tessera_V1_SubmitExperimentRequest()
        request.configYaml = yaml
        request.source = String(decoding: source.utf8.prefix(ExperimentsAPILimits.maximumSourceBytes), as: UTF8.self)
        let response = try await service.submit(request, metadata: metadata)
        return try ExperimentRecord(response.experiment)
    }

    /// The latest `limit` experiments (oldest first) with `status`, only the caller's when
    /// `mine`, and how many matched in all.
    public func experiments(
        status: ExperimentStatus? = nil, mine: Bool = false, limit: Int? = nil
    ) async throws -> (experiments: [ExperimentRecord], total: Int) {
        var request = Tessera_V1_ListExperimentsRequest()
        if let status { request.status = Tessera_V1_ExperimentStatus(status) }
        request.mine = mine
        if let limit { request.limit = UInt32(clamping: max(1, limit)) }
        let response = try await service.list(request, metadata: metadata)
        let records = try response.experiments.map { try ExperimentRecord($0) }
        return (records, Int(clamping: response.total))
    }

    /// One experiment, with the configuration it was submitted with.
    public func experiment(_ id: Int64) async throws -> ExperimentRecord {
        var request = Tessera_V1_ShowExperimentRequest()
        request.id = UInt64(clamping: id)
        return try ExperimentRecord(try await service.show(request, metadata: metadata).experiment)
    }

    /// Cancels experiment `id`; returns it as cancelled.
    public func cancel(_ id: Int64) async throws -> ExperimentRecord {
        var request = Tessera_V1_CancelExperimentRequest()
        request.id = UInt64(clamping: id)
        return try ExperimentRecord(try await service.cancel(request, metadata: metadata).experiment)
    }

    /// The latest `limit` lines of experiment `id`'s log, oldest first.
    public func logs(of id: Int64, limit: Int? = nil) async throws -> [(at: Date, line: String)] {
        var request = Tessera_V1_ExperimentLogsRequest()
        request.id = UInt64(clamping: id)
        if let limit { request.limit = UInt32(clamping: max(1, limit)) }
        let response = try await service.logs(request, metadata: metadata)
        return response.lines.map { (Date(timeIntervalSince1970: $0.at.isFinite ? $0.at : 0), $0.line) }
    }

    /// Registered versions matching `query`, newest first.
    public func models(matching query: ModelQuery) async throws -> [RegisteredModel] {
        let response = try await service.listModels(try Tessera_V1_ListModelsRequest(query), metadata: metadata)
        return try response.models.map { try RegisteredModel($0) }
    }

    /// One version and its recorded stage changes, oldest first.
    public func model(
        _ reference: ModelReference
    ) async throws -> (
        model: RegisteredModel, transitions: [StageTransition]
    ) {
        var request = Tessera_V1_ShowModelRequest()
        request.reference = reference.description
        let response = try await service.showModel(request, metadata: metadata)
        guard response.hasModel else {
            throw WireError(
                code: .missingField, message: "the answer names no model.", field: "tessera.v1.ShowModelResponse.model")
        }
        let model = try RegisteredModel(response.model)
        return (model, try response.transitions.map { try StageTransition($0, of: model.reference) })
    }
}

extension ExperimentsAPIClient where Transport == HTTP2ClientTransport.Posix {
    /// Connects to the coordinator at `endpoint` over HTTP/2 with mTLS, presenting the identity
    /// in `identityDirectory` (`cert.pem`, `key.pem`, `ca.pem`: what `tessera pki issue
    /// --researcher NAME` writes), runs `body`, and closes the connection. The coordinator's
    /// certificate must chain to that `ca.pem` and name the host dialled.
    public static func withConnection<Result: Sendable>(
        to endpoint: TesseraTransport.Endpoint, identityDirectory: URL,
        _ body: (ExperimentsAPIClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        for file in ["cert.pem", "key.pem", "ca.pem"] {
            let url = identityDirectory.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw TesseraRuntimeError(
                    .invalidConfiguration,
                    "\(url.path) is missing: --identity names a folder with cert.pem, key.pem and ca.pem (tessera pki issue --researcher NAME --out DIR)"
                )
            }
        }
        if endpoint.isIPv6Literal {
            return try await withConnection(
                to: .ipv6(address: endpoint.host, port: endpoint.port), endpoint, identityDirectory, body)
        } else if endpoint.isIPv4Literal {
            return try await withConnection(
                to: .ipv4(address: endpoint.host, port: endpoint.port), endpoint, identityDirectory, body)
        }
        return try await withConnection(
            to: .dns(host: endpoint.host, port: endpoint.port), endpoint, identityDirectory, body)
    }

    private static func withConnection<Result: Sendable>(
        to target: some ResolvableTarget, _ endpoint: TesseraTransport.Endpoint, _ identityDirectory: URL,
        _ body: (ExperimentsAPIClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: FederationTLS.client(identityDirectory: identityDirectory),
                config: .defaults)
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot set up the TLS connection to \(endpoint)", cause: error)
        }
        return try await withGRPCClient(transport: transport) { client in
            try await body(ExperimentsAPIClient(wrapping: client))
        }
    }
}
