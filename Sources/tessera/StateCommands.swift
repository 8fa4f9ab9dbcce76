import ArgumentParser
import Foundation
import TesseraFederation
import TesseraState

/// `--state DIR`: the coordinator's state folder, read here without a running coordinator.
struct StateFolderOptions: ParsableArguments {
    @Option(help: "The coordinator's state folder (tessera-coordinator --state).")
    var state = "./tessera-state"

    /// Opens the folder; a folder without a database is an error, never created here.
    func open() throws -> CoordinatorState {
        try reportingStateErrors { try CoordinatorState.openExisting(directory: URL(fileURLWithPath: state)) }
    }
}

/// Who a change made from the CLI is recorded as.
struct ActorOptions: ParsableArguments {
    @Option(
        name: .customLong("as"),
        help: ArgumentHelp("Record the change as NAME (default local:$USER).", valueName: "name"))
    var actor: String?

    var name: String {
        actor ?? "local:\(ProcessInfo.processInfo.environment["USER"] ?? "unknown")"
    }
}

/// Turns the state's and the registry's errors into one line without usage text: the problem
/// is in the folder or the reference, not in the command line.
func reportingStateErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as StateError {
        throw CommandError(error.description)
    } catch let error as RegistryError {
        throw CommandError(error.description)
    }
}

/// `tessera models …`: the model registry in a state folder.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, inspect, promote, export and compare registered model versions.",
        discussion: """
            Every completed round registers a version NAME@MAJOR.MINOR.PATCH as a candidate. REF is \
            NAME@MAJOR.MINOR.PATCH, or a bare MAJOR.MINOR.PATCH when only one model has that version. \
            Stages: candidate → staging → production → archived; promoting a version to production \
            archives the one that held it.
            """,
        subcommands: [List.self, Show.self, Promote.self, Export.self, Diff.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List versions, newest first.")

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Option(help: "Only versions of this experiment (its id).") var experiment: Int64?
        @Option(help: "Only versions of this model name.") var name: String?
        @Option(help: "Only versions in this stage: candidate, staging, production or archived.") var stage: String?
        @Option(
            name: .customLong("where"),
            help: "A condition on a metric or field, e.g. \"accuracy>=0.9\" (repeatable; all must hold).")
        var conditions: [String] = []
        @Flag(help: "Print JSON model cards instead of a table.") var json = false

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
                guard !json else { throw ValidationError("--json reads a state folder (--state), not --coordinator") }
                let query = try reportingStateErrors {
                    ModelQuery(
                        name: name, experiment: experiment, stage: try stage.map { try ModelStage(parsing: $0) },
                        conditions: try conditions.map { try MetricCondition(parsing: $0) })
                }
                let models = try await RemoteCommands.models(query, coordinator: coordinator, identity: identity)
                print(StateReport.modelTable(models))
                return
            }
            let state = try folder.open()
            print(
                try reportingStateErrors {
                    try StateReport.listModels(
                        in: state, experiment: experiment, name: name, stage: stage, where: conditions, json: json)
                })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every field of a version, its lineage and its stage history.")

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "NAME@MAJOR.MINOR.PATCH, or a version alone when unambiguous.") var reference: String

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
                let parsed = try reportingStateErrors { try ModelReference(parsing: reference) }
                let (model, transitions) = try await RemoteCommands.model(
                    parsed, coordinator: coordinator, identity: identity)
                print(StateReport.showModel(model, transitions: transitions))
                return
            }
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.showModel(reference, in: state) })
        }
    }

    struct Promote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a version to another stage; the change is recorded with who, when and why.")

        @OptionGroup var folder: StateFolderOptions
        @Argument(help: "NAME@MAJOR.MINOR.PATCH, or a version alone when unambiguous.") var reference: String
        @Option(help: "The new stage: staging, production or archived.") var to: String
        @Option(help: "Why, for the audit trail.") var reason: String?
        @OptionGroup var actor: ActorOptions

        func run() throws {
            let state = try folder.open()
            print(
                try reportingStateErrors {
                    try StateReport.promoteModel(reference, to: to, reason: reason, actor: actor.name, in: state)
                })
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write NAME-VERSION.safetensors (checked against its digest) and NAME-VERSION.model-card.json.")

        @OptionGroup var folder: StateFolderOptions
        @Argument(help: "NAME@MAJOR.MINOR.PATCH, or a version alone when unambiguous.") var reference: String
        @Option(help: "The folder to write into (created if needed).") var out: String

        func run() throws {
            let state = try folder.open()
            print(
                try reportingStateErrors {
                    try StateReport.exportModel(reference, to: URL(fileURLWithPath: out), in: state)
                })
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the L2 distance between two versions, tensor by tensor and in total.")

        @OptionGroup var folder: StateFolderOptions
        @Argument(help: "The first version.") var from: String
        @Argument(help: "The second version.") var to: String

        func run() throws {
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.diffModels(from, to, in: state) })
        }
    }
}

/// `tessera sites …`: the participant registry in a state folder.
struct Sites: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the sites that ever connected, with their health and circuit breakers.",
        discussion: """
            Health: revoked (its certificate is revoked), unreachable (no open session), degraded \
            (benched, on probation, or failing more than half its recent rounds), healthy otherwise. \
            A site that fails 3 rounds in a row is benched for a cool-down, then selected again on \
            probation: one success closes its breaker, one failure benches it for twice as long.
            """,
        subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every site, by name.")

        @OptionGroup var folder: StateFolderOptions
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() throws {
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.listSites(in: state, now: Date(), json: json) })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a site: identity, datasets, health, breaker and recent round outcomes.")

        @OptionGroup var folder: StateFolderOptions
        @Argument(help: "The site's name.") var site: String

        func run() throws {
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.showSite(site, in: state, now: Date()) })
        }
    }
}

/// `tessera experiments …`: the experiments a coordinator queued and ran, read from its state
/// folder (`--state`) or asked of a running coordinator (`--coordinator`, `--identity`).
struct Experiments: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, inspect and cancel the coordinator's experiments, and read their logs.",
        subcommands: [List.self, Show.self, Logs.self, Cancel.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List experiments, oldest first.")

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Option(help: "Only experiments in this status: queued, running, completed, failed or cancelled.")
        var status: String?
        @Flag(help: "With --coordinator: only the experiments you submitted.") var mine = false

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
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
                    status: chosen, mine: mine, limit: nil, coordinator: coordinator, identity: identity)
                return
            }
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.listExperiments(in: state, status: status) })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an experiment: config hash, status, submitter, rounds and published versions.")

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The experiment's id (tessera experiments list).") var id: Int64
        @Flag(help: "Also print the configuration as it was submitted.") var config = false

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
                try await RemoteCommands.show(id: id, coordinator: coordinator, identity: identity)
                return
            }
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.showExperiment(id, in: state, configuration: config) })
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an experiment's log, oldest first.")

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The experiment's id.") var id: Int64
        @Option(help: "Only the last N lines (1 to 100000; at most 5000 with --coordinator).") var tail = 1000

        func validate() throws {
            guard (1...100_000).contains(tail) else { throw ValidationError("--tail must be from 1 to 100000") }
        }

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
                try await RemoteCommands.logs(id: id, limit: tail, coordinator: coordinator, identity: identity)
                return
            }
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.experimentLogs(id, in: state, tail: tail) })
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued or running experiment.",
            discussion: """
                Marks the experiment cancelled. A queued experiment never starts; a running coordinator \
                notices at its next round boundary and stops the experiment there (a round in flight is \
                abandoned, never half-applied). With --coordinator, a researcher may cancel only the \
                experiments it submitted; an operator any.
                """)

        @OptionGroup var folder: StateFolderOptions
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The experiment's id.") var id: Int64
        @OptionGroup var actor: ActorOptions

        func run() async throws {
            if let (coordinator, identity) = try remote.connection() {
                try await RemoteCommands.cancel(id: id, coordinator: coordinator, identity: identity)
                return
            }
            let state = try folder.open()
            print(try reportingStateErrors { try StateReport.cancelExperiment(id, in: state, actor: actor.name) })
        }
    }
}
