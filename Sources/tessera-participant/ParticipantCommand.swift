import ArgumentParser
import Foundation
import TesseraParticipant
import TesseraTransport
import Tracing

@main
struct ParticipantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera-participant",
        abstract: "Join a federation: train on this site's data and send only masked updates to the coordinator.",
        discussion: """
            The site file names the coordinator (HOST:PORT), this site's certificate, key and CA, and its \
            datasets (name → CSV path and label column), and optionally its policy (what it accepts whatever the \
            coordinator asks) and its connection settings. Data never leaves the site; the connection is outbound \
            only.

            It runs as a service: it stays connected, takes part in each experiment that names one of its datasets, \
            and reconnects with jittered exponential backoff whenever the coordinator goes away, until SIGTERM. \
            --once exits when the coordinator ends the first experiment instead.

            Exit status: 0 after SIGTERM/SIGINT (or, with --once, after the experiment); 78 when a person must act \
            (an unusable site file or data, or the coordinator refused this site: revoked, replaced by another \
            instance, another protocol version), which the systemd unit does not restart; 1 otherwise.
            """)

    @Option(help: "The site file (YAML).")
    var config: String?

    @Flag(
        help: """
            Print the effective site policy (of --config's file, or the defaults without it), each key marked as \
            default or set, and exit without connecting.
            """)
    var printPolicy = false

    @Flag(help: "Leave once the coordinator ends the first experiment, instead of serving experiment after experiment.")
    var once = false

    @Option(
        help: ArgumentHelp(
            "Serve /metrics, /healthz and /readyz on HOST:PORT (plain HTTP; for example 127.0.0.1:9465).",
            discussion: "Off unless given. /readyz answers 200 while a session with the coordinator is established."))
    var http: String?

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
        if config == nil && !printPolicy {
            throw ValidationError("Missing expected argument '--config <config>'")
        }
    }

    func run() async throws {
        do {
            if printPolicy {
                print(
                    try ParticipantProgram.policyReport(configFile: config.map { URL(fileURLWithPath: $0) }),
                    terminator: "")
                return
            }
            guard let config else { throw ValidationError("Missing expected argument '--config <config>'") }
            let failpoint = try ParticipantFailpoint.from(environment: ProcessInfo.processInfo.environment)
            var program = ParticipantProgram(
                configFile: URL(fileURLWithPath: config), mode: once ? .once : .service, failpoint: failpoint)
            program.httpListen = try http.map { try Endpoint(parsing: $0) }
            program.onHTTPListening = { port in
                FileHandle.standardOutput.write(Data("HTTP listening on port \(port)\n".utf8))
            }
            let logger = RuntimeLogging.logger(
                label: "tessera.participant", verbose: verbose, format: RuntimeLogging.format(named: logFormat) ?? .text
            )
            try await OTLPTracing.withTracer(
                endpointFlag: otlpEndpoint, serviceName: "tessera-participant", logger: logger
            ) { [program] tracer in
                var program = program
                program.tracer = tracer
                try await program.run(logger: logger)
            }
        } catch {
            FileHandle.standardError.write(Data("tessera-participant: \(error)\n".utf8))
            throw ExitCode(ParticipantProgram.exitStatus(for: error))
        }
    }
}
