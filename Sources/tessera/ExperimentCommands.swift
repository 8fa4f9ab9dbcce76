import ArgumentParser
import Foundation
import TesseraState

/// The options every command against a running coordinator takes.
struct CoordinatorConnectionOptions: ParsableArguments {
    @Option(help: "The running coordinator's researcher API, HOST:PORT (its certificate must name HOST).")
    var coordinator: String

    @Option(
        help:
            "Your identity folder: cert.pem, key.pem and ca.pem, as `tessera pki issue --researcher NAME --out DIR` writes it."
    )
    var identity: String
}

/// `tessera submit FILE --coordinator HOST:PORT --identity DIR`.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send an experiment to a running coordinator, which queues it and runs it after those before it.",
        discussion: """
            The coordinator validates the file as `tessera validate` does and refuses it with the same \
            message. It runs one configuration per experiment: a file with variants is refused. Relative \
            dataset paths are not sent with the file; the sites' data is named by the experiment's name \
            in each site's configuration.
            """)

    @Argument(help: "The experiment YAML file (at most 1 MiB).") var file: String
    @OptionGroup var connection: CoordinatorConnectionOptions
    @Flag(
        help:
            "Stay until the experiment finishes: one live line per round (stage, cohort, dropouts, elapsed, ETA) on a terminal, its log lines otherwise."
    )
    var follow = false

    func run() async throws {
        try await RemoteCommands.submit(
            file: file, coordinator: connection.coordinator, identity: connection.identity, follow: follow)
    }
}

/// `tessera experiments …` against a running coordinator instead of a state folder.
struct RemoteOptions: ParsableArguments {
    @Option(
        help:
            "Ask a running coordinator's researcher API, HOST:PORT, instead of reading --state (needs --identity)."
    )
    var coordinator: String?

    @Option(help: "With --coordinator: your identity folder (cert.pem, key.pem, ca.pem).")
    var identity: String?

    /// The coordinator and identity to use, or `nil` to read the state folder.
    func connection() throws -> (coordinator: String, identity: String)? {
        guard let coordinator else {
            if identity != nil { throw ValidationError("--identity goes with --coordinator") }
            return nil
        }
        guard let identity else { throw ValidationError("--coordinator needs --identity DIR (your certificate)") }
        return (coordinator, identity)
    }
}
