import ArgumentParser
import Foundation
import Logging
import TesseraBenchmarks
import TesseraCoordinator
import TesseraData
import TesseraFederation
import TesseraSimulation
import TesseraTensor
import TesseraTesting
import TesseraTransport

@main
struct Tessera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Federated learning with secure aggregation.",
        version: TesseraVersion.current,
        subcommands: [
            Simulate.self, Validate.self, Submit.self, PKI.self, Models.self, Sites.self, Experiments.self, Demo.self,
            Bench.self, Datasets.self, Privacy.self,
        ])
}

enum TesseraVersion {
    static let current = "0.1.0"
}

/// A local training demo: one machine, no federation.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small MLP on the two-spirals task on this machine and print its accuracy.")

    @Option(help: "Training epochs.") var epochs = 200
    @Option(help: "Random seed; the same seed and thread count give identical results.") var seed: UInt64 = 7

    func run() throws {
        print("Tessera \(TesseraVersion.current) — local training demo (two spirals, MLP 2-64-64-2, Adam)")
        let result = try SpiralsDemo.run(epochs: epochs, seed: seed) { epoch in
            print(
                String(
                    format: "  epoch %4d   loss %.4f   train accuracy %5.1f%%", epoch.epoch, epoch.loss,
                    epoch.trainAccuracy * 100))
        }
        print(
            String(
                format: "Held-out accuracy: %.1f%% (%d parameters, %.2f s)", result.testAccuracy * 100,
                result.parameterCount, result.seconds))
    }
}

/// `tessera bench …`: the benchmark suites. Each prints readable figures and `BENCH key value`
/// lines, with the reference measured in the same run.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run benchmarks against references measured in the same run.")

    /// `soak` is not part of `all`: it runs for about half an hour (see `make soak`).
    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case all, tensor, crypto, secagg, runtime, state, privacy, observability, soak
    }

    @Argument(help: "Which suite: \(Suite.allCases.map(\.rawValue).joined(separator: ", ")) (all leaves out soak).")
    var suite: Suite = .all

    @Flag(help: "Smaller sizes, for a quick look (figures are not comparable with full runs).")
    var quick = false

    @Option(help: "Python interpreter with numpy, for the reference.")
    var python = "python3"

    @OptionGroup(title: "Soak (tessera bench soak)") var soak: SoakArguments

    func run() async throws {
        let reporter = BenchReporter()
        if suite == .soak {
            try await SoakBenchmark.run(reporter: reporter, options: soak.options)
            return
        }
        if suite == .all || suite == .tensor {
            try TensorBenchmark.run(reporter: reporter, python: python, quick: quick)
        }
        // `all` measures AES-CTR and X25519 once, inside the secure-aggregation suite (its
        // cost-model floor); `crypto` adds the detailed primitive figures.
        if suite == .crypto {
            try CryptoBenchmark.run(reporter: reporter)
        }
        if suite == .all || suite == .secagg {
            try SecAggBenchmark.run(reporter: reporter, quick: quick)
        }
        if suite == .all || suite == .runtime {
            try await RuntimeBenchmark.run(reporter: reporter, quick: quick)
        }
        if suite == .all || suite == .state {
            try await StateBenchmark.run(reporter: reporter, quick: quick)
        }
        if suite == .all || suite == .privacy {
            try PrivacyAccountantBenchmark.run(reporter: reporter, python: python, quick: quick)
            try PrivacyNoiseBenchmark.run(reporter: reporter, python: python, quick: quick)
            try await PrivacyRoundBenchmark.run(reporter: reporter, quick: quick)
        }
        if suite == .all || suite == .observability {
            try await ObservabilityBenchmark.run(reporter: reporter, quick: quick)
        }
    }
}

/// The soak's sizes and the coordinator it starts; `make soak` passes `SOAK_MINUTES` and
/// `SOAK_ROUNDS` here.
struct SoakArguments: ParsableArguments {
    enum Phase: String, ExpressibleByArgument, CaseIterable {
        case flood, sessions, rounds
    }

    @Option(help: "Run only these phases (repeatable): \(Phase.allCases.map(\.rawValue).joined(separator: ", ")).")
    var phase: [Phase] = []
    @Option(help: "Minutes the idle sessions heartbeat (sampled once a minute; the first is warm-up).")
    var minutes = 10
    @Option(help: "Concurrent idle site sessions, each with its own certificate and TLS connection.")
    var sessions = 500
    @Option(help: "Sessions that then fetch the model at once (0: no fetch flood).")
    var fetchSites = 100
    @Option(help: "Rounds of the no-attack phase.")
    var rounds = 10_000
    @Option(help: "Silent TCP connections held open while the real sites run rounds.")
    var floodConnections = 1_000
    @Option(help: "Rounds the real sites must complete under the flood.")
    var floodRounds = 20
    @Option(help: "The coordinator's soft file-descriptor limit (0: inherit this process's).")
    var coordinatorFileLimit = 1_024
    @Option(
        parsing: .unconditionalSingleValue,
        help: "An argument for every tessera-coordinator the soak starts (repeatable), e.g. a transport limit.")
    var coordinatorArg: [String] = []

    var options: SoakBenchmark.Options {
        SoakBenchmark.Options(
            phases: phase.isEmpty
                ? Set(SoakBenchmark.Options.Phase.allCases)
                : Set(phase.compactMap { SoakBenchmark.Options.Phase(rawValue: $0.rawValue) }),
            minutes: minutes, sessions: sessions, fetchSites: fetchSites, rounds: rounds,
            floodConnections: floodConnections, floodRounds: floodRounds, coordinatorFileLimit: coordinatorFileLimit,
            coordinatorArguments: coordinatorArg)
    }
}

/// `tessera datasets …`: the sample data shipped in `Datasets-sample/`.
struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate the sample datasets.", subcommands: [GenerateSamples.self])

    struct GenerateSamples: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate-samples",
            abstract: "Write the quick-start sites' clinical-risk CSV files (deterministic for a seed).")

        @Option(help: "Output folder (the clinical-risk/ folder is created inside it).")
        var out = "Datasets-sample"
        @Option(help: "Generator seed; the committed samples use 2017.")
        var seed: UInt64 = 2017

        func run() throws {
            let written = try SampleDatasets.writeQuickstartSites(to: URL(fileURLWithPath: out), seed: seed)
            for url in written { print("wrote \(url.path)") }
        }
    }
}

/// `tessera validate FILE`: checks an experiment file without running it.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check an experiment file: unknown keys, bad values and conflicts, with their YAML paths.")

    @Argument(help: "The experiment YAML file.") var file: String

    func run() throws {
        let config = try loadExperiment(file)
        for run in config.runs {
            print(
                "\(run.name): valid (config hash \(run.configHash), \(run.rounds) rounds, \(run.participants) participants, "
                    + "secure aggregation \(run.secureAggregation.enabled ? "on" : "off"))")
            if let budget = try run.privacyBudget() {
                let noise = run.privacy?.noiseMultiplier == nil ? "calibrated" : "given"
                var line =
                    "  differential privacy (\(budget.mode.rawValue)): noise multiplier \(format(budget.noiseMultiplier)) "
                    + "(\(noise)), sampling rate \(format(budget.samplingRate)); \(run.rounds) rounds spend "
                    + "ε = \(format(budget.plannedEpsilon)) at δ = \(budget.delta)"
                if let target = budget.targetEpsilon {
                    line +=
                        budget.affordableRounds < run.rounds
                        ? "; the budget ε = \(target) stops it after \(budget.affordableRounds) rounds"
                        : " (budget ε = \(target))"
                }
                print(line)
            }
        }
    }

    private func format(_ value: Double) -> String {
        value.formatted(.number.precision(.significantDigits(4)))
    }
}

/// `tessera simulate FILE`: the coordinator and every participant in one process.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment with the coordinator and all participants in this process.",
        discussion: """
            By default the coordinator service and one participant client per site talk gRPC over the \
            in-process transport: the same services, wire protocol and round state machine as a \
            deployment, without sockets. --transport loopback goes through real HTTP/2 and mutual \
            TLS on 127.0.0.1, with a throwaway federation CA issuing every certificate. \
            --transport memory hands messages over directly instead \
            (faster; the driver the tests use). Results (rounds.csv, results.json, report.html) and \
            the final model (model.safetensors) go to the experiment's output_directory (default \
            results/<name>). A file with variants runs each variant in turn. The final model is a \
            function of the experiment file and its seed: the same bytes, and SHA-256, whatever the \
            transport and the order the sites connect in.
            """)

    enum Transport: String, ExpressibleByArgument, CaseIterable {
        case inProcess = "in-process"
        case loopback
        case memory

        var simulation: SimulationTransport {
            switch self {
            case .inProcess: .inProcess
            case .loopback: .loopback
            case .memory: .memory
            }
        }
    }

    @Argument(help: "The experiment YAML file.") var file: String
    @Option(help: "Run only this variant (by name).") var variant: String?
    @Option(
        help:
            "How coordinator and participants talk: in-process (gRPC), loopback (HTTP/2 + mTLS on 127.0.0.1 with a throwaway PKI) or memory."
    )
    var transport: Transport = .inProcess
    @Flag(help: "Only print one line per round.") var quiet = false
    @Option(help: ArgumentHelp(RuntimeLogging.formatHelp, valueName: "text|json")) var logFormat = "text"

    func validate() throws {
        guard RuntimeLogging.format(named: logFormat) != nil else {
            throw ValidationError("--log-format must be text or json, got '\(logFormat)'.")
        }
    }

    func run() async throws {
        let config = try loadExperiment(file)
        var runs = config.runs
        if let variant {
            runs = config.variants.filter { $0.name == variant }.map(\.config)
            guard !runs.isEmpty else {
                throw ValidationError(
                    "no variant named '\(variant)'; the file has: \(config.variants.map(\.name).joined(separator: ", "))"
                )
            }
        }
        let quiet = self.quiet
        // JSON: the progress lines become log records on standard error, and standard output keeps
        // only the results (the per-run summary and the paths).
        let json =
            RuntimeLogging.format(named: logFormat) == .json
            ? RuntimeLogging.logger(label: "tessera.simulate", format: .json) : nil
        var arms: [ComparisonReport.Arm] = []
        for run in runs {
            // On a terminal, one live line shows where the round is; the round summaries stay.
            let live = json == nil && isatty(STDOUT_FILENO) == 1 ? LiveProgress(totalRounds: run.rounds) : nil
            let show: @Sendable (String) -> Void = { line in
                if let json {
                    if !quiet || Simulate.isRoundSummary(line) { json.info("\(line)") }
                } else if let live {
                    live.show(line, permanent: !quiet || Simulate.isRoundSummary(line))
                } else if !quiet || Simulate.isRoundSummary(line) {
                    print(line)
                }
            }
            let logger = json ?? Logger(label: "tessera.simulate") { _ in PlainLogHandler(show: show) }
            let started = Date()
            let report = try await ExperimentRunner.run(
                run, transport: transport.simulation, progress: show, logger: logger)
            // The central test set's accuracy when there is one; never a training figure.
            let final = RoundRecord.finalAccuracy(of: report.records)
            live?.end()
            print(
                String(
                    format: "%@: %d of %d rounds completed in %.1f s%@", run.name, report.completedRounds, run.rounds,
                    Date().timeIntervalSince(started),
                    final.map { String(format: ", final accuracy %.4f (%@)", $0.value, $0.source) }
                        ?? ", no accuracy measured for the final model (no site held rows out, and no central test set)"
                ))
            print("report: \(report.paths.html.path)")
            print("model:  \(report.modelPath.path) (sha256 \(report.modelSHA256))")
            let name = config.variants.first { $0.config.name == run.name }?.name ?? run.name
            arms.append(ComparisonReport.Arm(name: name, config: run, records: report.records))
        }
        // Every arm of a comparison ran: put them side by side.
        if variant == nil, config.variants.count > 1 {
            let directory = URL(fileURLWithPath: config.resolvedOutputDirectory)
            let paths = try ComparisonReport.write(title: config.name, arms: arms, to: directory)
            print("")
            for line in ComparisonReport.table(arms) { print(line) }
            print("comparison: \(paths.html.path)")
        }
    }

    /// The one line per round that `--quiet` keeps.
    static func isRoundSummary(_ line: String) -> Bool {
        line.hasPrefix("round ")
            && (line.contains(": completed") || line.contains(": failed") || line.contains(" failed:"))
    }
}

/// Prints the runtime's log messages as plain progress lines (info and above; participants'
/// per-round lines are debug-level chatter here, since every site is in this process).
struct PlainLogHandler: LogHandler {
    let show: @Sendable (String) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        // Participants' loggers carry their site; their routine lines would repeat the
        // coordinator's for every site, so only their warnings and errors are shown.
        if let site = metadata["site"] {
            if event.level >= .warning { show("\(site): \(event.message)") }
            return
        }
        show(event.message.description)
    }
}

/// Loads and validates an experiment file, turning a configuration error into a message that
/// names the file, line and YAML path (ArgumentParser prints it and exits non-zero).
func loadExperiment(_ path: String) throws -> ExperimentConfig {
    do {
        return try ExperimentConfig.load(from: URL(fileURLWithPath: path))
    } catch {
        throw CommandError(error.description)
    }
}

/// An error a command reports as one line, without the usage text that ArgumentParser adds
/// to `ValidationError` (the problem is in a file, not in the command line).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
