public import Foundation
public import Logging
import OTel
import ServiceLifecycle
public import Tracing

/// OTLP export of traces for `tessera-coordinator` and `tessera-participant`, through swift-otel
/// over gRPC.
///
/// Export is on when `--otlp-endpoint URL` is given or `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and off otherwise: then no exporter runs and the
/// program gets no tracer, so tracing costs nothing. swift-otel reads the other standard
/// variables itself (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, …),
/// and they win over the flag. Only traces are set up: logs and metrics stay with
/// ``RuntimeLogging`` and Prometheus. The tracer is handed to the program, never bootstrapped
/// process-wide.
public enum OTLPTracing {
    /// The help of both executables' `--otlp-endpoint`.
    public static let endpointHelp =
        "Export traces over OTLP/gRPC to this collector (http://HOST:4317 or https://…). Also on when OTEL_EXPORTER_OTLP_ENDPOINT is set; off otherwise."

    /// The endpoint export goes to, or `nil` when export is off: the flag, else the environment's
    /// endpoint; off when `OTEL_SDK_DISABLED` is `true` or `OTEL_TRACES_EXPORTER` is `none`.
    public static func endpoint(flag: String?, environment: [String: String]) throws(TesseraRuntimeError) -> String? {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true"
            || environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none"
        {
            return nil
        }
        let candidates = [
            ("--otlp-endpoint", flag),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", environment["OTEL_EXPORTER_OTLP_ENDPOINT"]),
        ]
        guard let (source, value) = candidates.first(where: { !($0.1 ?? "").isEmpty }), let value else { return nil }
        guard value.hasPrefix("http://") || value.hasPrefix("https://"), value.utf8.count <= 2_048,
            URL(string: value)?.host?.isEmpty == false
        else {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "\(source) must be an http:// or https:// URL with a host (for example http://127.0.0.1:4317), got \"\(value.prefix(100))\"."
            )
        }
        return value
    }

    /// Runs `body` with the tracer to use: `nil` when export is off. When it is on, the exporter
    /// runs beside `body` and is shut down gracefully once `body` returns, so the last spans are
    /// flushed. An exporter that fails is logged; it never ends the program.
    public static func withTracer<Result: Sendable>(
        endpointFlag: String?, serviceName: String,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger,
        _ body: @Sendable ((any Tracer)?) async throws -> Result
    ) async throws -> Result {
        guard let endpoint = try endpoint(flag: endpointFlag, environment: environment) else {
            return try await body(nil)
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.otlpExporter.protocol = .grpc
        if endpointFlag != nil { configuration.traces.otlpExporter.endpoint = endpoint }
        let backend: (tracer: any Tracer, service: any Service)
        do {
            let made = try OTel.makeTracingBackend(configuration: configuration)
            backend = (made.factory, made.service)
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot set up OTLP trace export to \(endpoint): \(error)", cause: error)
        }
        // No signal handlers here: the program's own lifecycle handles SIGTERM, and the exporter
        // stops after it, so the spans of the last round still leave.
        let exporter = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: backend.service)], gracefulShutdownSignals: [], logger: logger))
        logger.info("exporting traces over OTLP/gRPC to \(endpoint)")
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await exporter.run()
                } catch {
                    logger.warning("the OTLP trace exporter stopped: \(error)")
                }
            }
            let result: Result
            do {
                result = try await body(backend.tracer)
            } catch {
                await exporter.triggerGracefulShutdown()
                throw error
            }
            await exporter.triggerGracefulShutdown()
            try await group.waitForAll()
            return result
        }
    }
}
