import ArgumentParser
import Foundation
import TesseraParticipant
import TesseraTransport

@main
struct ParticipantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera-participant",
        abstract: "Join a federation: train on this site's data and send only masked updates to the coordinator.",
        discussion: """
            The site file names the coordinator (HOST:PORT), this site's certificate, key and CA, and its \
            datasets (name → CSV path and label column). Data never leaves the site; the connection is outbound only.
            """)

    @Option(help: "The site file (YAML).")
    var config: String

    @Flag(help: "Log debug detail.")
    var verbose = false

    func run() async throws {
        do {
            let failpoint = try ParticipantFailpoint.from(environment: ProcessInfo.processInfo.environment)
            let program = ParticipantProgram(configFile: URL(fileURLWithPath: config), failpoint: failpoint)
            try await program.run(logger: RuntimeLogging.logger(label: "tessera.participant", verbose: verbose))
        } catch {
            FileHandle.standardError.write(Data("tessera-participant: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
