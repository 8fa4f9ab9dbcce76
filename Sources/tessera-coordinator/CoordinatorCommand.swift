import ArgumentParser
import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraTransport

@main
enum CoordinatorMain {
    static func main() async {
        // Before any other thread allocates.
        ProcessMemory.useOneAllocatorArena()
        await CoordinatorCommand.main()
    }
}

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera-coordinator",
        abstract:
            "Run federated experiments: serve their rounds to the sites over mTLS, keeping every round in the state folder.",
        discussion: """
            The experiment file must set model.inputs and model.classes (the coordinator holds no data). \
            Sites offer the dataset named after the experiment. Every completed round is committed to the state \
            folder (--state) before the next round starts: after a crash or a kill, start the coordinator again \
            with the same arguments and it resumes every unfinished experiment at its last completed round. \
            SIGTERM or SIGINT stops gracefully. Results are written from the state when an experiment ends or stops.
            """)

    @Option(
        help: ArgumentHelp(
            "The experiment file (YAML) to queue on start.",
            discussion:
                "Skipped when the state already holds an unfinished experiment with the same configuration: it is resumed instead. Without --experiment, the experiments already queued in the state run."
        ))
    var experiment: String?

    @Flag(
        name: .customLong("again"),
        help: "Run --experiment once more even if the state holds a finished experiment with the same configuration.")
    var runAgain = false

    @Option(
        help: ArgumentHelp(
            "Serve the researcher API (tessera submit, tessera experiments --coordinator) on HOST:PORT, with mTLS.",
            discussion:
                "With it the coordinator stays up when its queue is empty and runs what researchers submit, until SIGTERM or SIGINT. Only researcher and operator certificates are served."
        ))
    var apiListen: String?

    @Option(
        help: ArgumentHelp(
            "Serve /metrics, /healthz, /readyz and the dashboard on HOST:PORT (plain HTTP; for example 127.0.0.1:9464).",
            discussion:
                "Off unless given. Keep it on loopback or a private network: the dashboard shows experiment, site and model names."
        ))
    var http: String?

    @Option(
        help: ArgumentHelp(
            "A file holding the operator token that allows the dashboard's actions (promote a model, cancel an experiment).",
            discussion:
                "The file must be readable by its owner only (chmod 600). Without it the dashboard is read-only.")
    )
    var dashboardTokenFile: String?

    @Option(name: .customLong("state"), help: "The state folder (state.sqlite and the model blobs).")
    var stateDirectory = "tessera-state"

    @Option(help: "Failed rounds in a row after which a site is benched (its circuit breaker opens).")
    var breakerFailures = 3

    @Option(help: "Seconds a benched site sits out before it is let back on probation (doubling on each new bench).")
    var breakerCoolDown: Double = 600

    @Option(help: "Where to listen, HOST:PORT (port 0 picks a free port; the log shows it).")
    var listen: String

    @Option(
        name: .customLong("tls-dir"),
        help: "The coordinator's identity directory (cert.pem, key.pem), from `tessera pki`.")
    var tlsDirectory: String

    @Option(
        name: [.customLong("trust"), .customLong("ca")],
        help: ArgumentHelp(
            "The federation's trust folder (ca.pem, revoked.signed), DIR/trust of `tessera pki init --out DIR`.",
            discussion: "A folder holding the CA's private key (ca-key.pem) is refused. --ca is the old spelling."))
    var trustDirectory: String

    @Option(help: "Seconds between two reads of the revocation list; a revoked site's sessions end at the next read.")
    var revocationCheckInterval: Double = 10

    @Option(help: "Results directory (default: the experiment's output directory).")
    var results: String?

    @Flag(help: "Log debug detail.")
    var verbose = false

    @Option(help: ArgumentHelp(RuntimeLogging.formatHelp, valueName: "text|json"))
    var logFormat = "text"

    @Option(help: ArgumentHelp(OTLPTracing.endpointHelp, valueName: "url"))
    var otlpEndpoint: String?

    func validate() throws {
        guard RuntimeLogging.format(named: logFormat) != nil else {
            throw ValidationError("--log-format must be text or json, got '\(logFormat)'.")
        }
        if let http {
            do { _ = try Endpoint(parsing: http) } catch { throw ValidationError("--http: \(error.message)") }
        }
        if dashboardTokenFile != nil && http == nil {
            throw ValidationError("--dashboard-token-file needs --http: the dashboard is served on that port.")
        }
        guard revocationCheckInterval.isFinite, revocationCheckInterval >= 0.1, revocationCheckInterval <= 86_400 else {
            throw ValidationError("--revocation-check-interval must be between 0.1 and 86400 seconds.")
        }
        guard (1...1000).contains(breakerFailures) else {
            throw ValidationError("--breaker-failures must be between 1 and 1000.")
        }
        guard breakerCoolDown.isFinite, breakerCoolDown >= 0, breakerCoolDown <= 7 * 86_400 else {
            throw ValidationError("--breaker-cool-down must be between 0 and 604800 seconds.")
        }
    }

    @OptionGroup(title: "Transport limits")
    var limits: LimitOptions

    func run() async throws {
        var program = CoordinatorProgram(
            experiment: experiment.map { URL(fileURLWithPath: $0) },
            stateDirectory: URL(fileURLWithPath: stateDirectory), listen: try Endpoint(parsing: listen),
            tlsDirectory: URL(fileURLWithPath: tlsDirectory), trustDirectory: URL(fileURLWithPath: trustDirectory),
            resultsDirectory: results.map { URL(fileURLWithPath: $0) },
            revocationCheckInterval: .seconds(revocationCheckInterval), limits: limits.limits,
            circuitBreaker: CircuitBreakerPolicy(failureThreshold: breakerFailures, coolDown: breakerCoolDown))
        program.runAgain = runAgain
        program.apiListen = try apiListen.map { try Endpoint(parsing: $0) }
        program.httpListen = try http.map { try Endpoint(parsing: $0) }
        program.dashboardTokenFile = dashboardTokenFile.map { URL(fileURLWithPath: $0) }
        program.onHTTPListening = { port in
            FileHandle.standardOutput.write(Data("HTTP listening on port \(port)\n".utf8))
        }
        program.onAPIListening = { port in
            FileHandle.standardOutput.write(Data("researcher API listening on port \(port)\n".utf8))
        }
        do {
            let logger = RuntimeLogging.logger(
                label: "tessera.coordinator", verbose: verbose, format: RuntimeLogging.format(named: logFormat) ?? .text
            )
            try await OTLPTracing.withTracer(
                endpointFlag: otlpEndpoint, serviceName: "tessera-coordinator", logger: logger
            ) { [program] tracer in
                var program = program
                program.tracer = tracer
                try await program.run(logger: logger) { port in
                    FileHandle.standardOutput.write(Data("listening on port \(port)\n".utf8))
                }
            }
            // Machine-readable, like the port line (the runtime benchmark reads it).
            if let peak = ProcessMemory.peakResidentBytes() {
                FileHandle.standardOutput.write(Data("peak resident bytes \(peak)\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("tessera-coordinator: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
