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
        abstract: "Run one federated experiment: serve its rounds to the sites over mTLS, then write the results.",
        discussion: """
            The experiment file must set model.inputs and model.classes (the coordinator holds no data). \
            Sites offer the dataset named after the experiment. SIGTERM or SIGINT stops gracefully: completed \
            rounds and the model reached so far are written.
            """)

    @Option(help: "The experiment file (YAML).")
    var experiment: String

    @Option(help: "Where to listen, HOST:PORT (port 0 picks a free port; the log shows it).")
    var listen: String

    @Option(
        name: .customLong("tls-dir"),
        help: "The coordinator's identity directory (cert.pem, key.pem), from `tessera pki`.")
    var tlsDirectory: String

    @Option(name: .customLong("ca"), help: "The federation CA directory (ca.pem, revoked.json).")
    var caDirectory: String

    @Option(help: "Results directory (default: the experiment's output directory).")
    var results: String?

    @Flag(help: "Log debug detail.")
    var verbose = false

    @OptionGroup(title: "Transport limits")
    var limits: LimitOptions

    func run() async throws {
        let program = CoordinatorProgram(
            experiment: URL(fileURLWithPath: experiment), listen: try Endpoint(parsing: listen),
            tlsDirectory: URL(fileURLWithPath: tlsDirectory), caDirectory: URL(fileURLWithPath: caDirectory),
            resultsDirectory: results.map { URL(fileURLWithPath: $0) }, limits: limits.limits)
        do {
            try await program.run(logger: RuntimeLogging.logger(label: "tessera.coordinator", verbose: verbose)) {
                port in
                FileHandle.standardOutput.write(Data("listening on port \(port)\n".utf8))
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
