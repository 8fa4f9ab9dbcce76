import ArgumentParser
import Foundation
import TesseraState

/// The options every command against a running coordinator takes.
struct CoordinatorConnectionOptions: ParsableArguments {
    @Option(help: "The running coordinator, HOST:PORT (its certificate must name HOST).")
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

    func run() async throws {
        try await RemoteCommands.submit(file: file, coordinator: connection.coordinator, identity: connection.identity)
    }
}

/// `tessera experiments list|show|cancel|logs`.
struct Experiments: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show, cancel experiments and read their logs on a running coordinator.",
        subcommands: [List.self, Show.self, Cancel.self, Logs.self])
}

extension Experiments {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the coordinator's experiments, every submitter's, oldest first.")

        @Option(
            help:
                "Only experiments in this status: \(ExperimentStatus.allCases.map(\.rawValue).joined(separator: ", "))."
        )
        var status: String?
        @Flag(help: "Only the experiments you submitted.") var mine = false
        @Option(help: "Show the latest N (at most 1000).") var limit: Int?
        @OptionGroup var connection: CoordinatorConnectionOptions

        func run() async throws {
            var chosen: ExperimentStatus?
            if let status {
                guard let known = ExperimentStatus(rawValue: status) else {
                    throw ValidationError(
                        "--status \(status): use one of \(ExperimentStatus.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                chosen = known
            }
            try await RemoteCommands.list(
                status: chosen, mine: mine, limit: limit, coordinator: connection.coordinator,
                identity: connection.identity)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an experiment: its status, submitter, model versions and configuration.")

        @Argument(help: "The experiment's id (tessera experiments list).") var id: Int64
        @OptionGroup var connection: CoordinatorConnectionOptions

        func run() async throws {
            try await RemoteCommands.show(id: id, coordinator: connection.coordinator, identity: connection.identity)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued or running experiment (a researcher only its own; an operator any).")

        @Argument(help: "The experiment's id.") var id: Int64
        @OptionGroup var connection: CoordinatorConnectionOptions

        func run() async throws {
            try await RemoteCommands.cancel(id: id, coordinator: connection.coordinator, identity: connection.identity)
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the latest lines of an experiment's log.")

        @Argument(help: "The experiment's id.") var id: Int64
        @Option(help: "How many of the latest lines (at most 5000; default 1000).") var limit: Int?
        @OptionGroup var connection: CoordinatorConnectionOptions

        func run() async throws {
            try await RemoteCommands.logs(
                id: id, limit: limit, coordinator: connection.coordinator, identity: connection.identity)
        }
    }
}
