import ArgumentParser
import Foundation
import TesseraBenchmarks
import TesseraData
import TesseraFederation
import TesseraSimulation
import TesseraTensor

@main
struct Tessera: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Federated learning with secure aggregation.",
        version: TesseraVersion.current,
        subcommands: [Simulate.self, Validate.self, PKI.self, Demo.self, Bench.self, Datasets.self])
}

enum TesseraVersion {
    static let current = "0.1.0"
}

/// The quick-start demo until the federation runtime lands.
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
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run benchmarks against references measured in the same run.")

    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case all, tensor, crypto, secagg
    }

    @Argument(help: "Which suite: \(Suite.allCases.map(\.rawValue).joined(separator: ", ")).")
    var suite: Suite = .all

    @Flag(help: "Smaller sizes, for a quick look (figures are not comparable with full runs).")
    var quick = false

    @Option(help: "Python interpreter with numpy, for the reference.")
    var python = "python3"

    func run() throws {
        let reporter = BenchReporter()
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
            print("\(run.name): valid (config hash \(run.configHash), \(run.rounds) rounds, \(run.participants) participants, "
                + "secure aggregation \(run.secureAggregation.enabled ? "on" : "off"))")
        }
    }
}

/// `tessera simulate FILE`: the coordinator and every participant in one process.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment with the coordinator and all participants in this process.",
        discussion: """
            The coordinator's round state machine and the participants' training and secure-aggregation \
            code are the same as in a deployment; messages are handed over in memory. Results (rounds.csv, \
            results.json, report.html) and the final model (model.safetensors) go to the experiment's \
            output_directory (default results/<name>). A file with variants runs each variant in turn.
            """)

    @Argument(help: "The experiment YAML file.") var file: String
    @Option(help: "Run only this variant (by name).") var variant: String?
    @Flag(help: "Only print one line per round.") var quiet = false

    func run() throws {
        let config = try loadExperiment(file)
        var runs = config.runs
        if let variant {
            runs = config.variants.filter { $0.name == variant }.map(\.config)
            guard !runs.isEmpty else {
                throw ValidationError(
                    "no variant named '\(variant)'; the file has: \(config.variants.map(\.name).joined(separator: ", "))")
            }
        }
        let quiet = self.quiet
        for run in runs {
            let report = try ExperimentRunner.run(run) { line in
                if !quiet || line.hasPrefix("round ") && !line.contains(": selected") && !line.contains(": aggregated")
                    && !line.contains(" with ")
                {
                    print(line)
                }
            }
            let completed = report.outcome.completedRounds
            let last = report.outcome.records.last { $0.status == .completed }
            print(String(
                format: "%@: %d of %d rounds completed in %.1f s%@", run.name, completed, run.rounds, report.seconds,
                last?.evalAccuracy.map { String(format: ", final accuracy %.4f", $0) } ?? ""))
            print("report: \(report.paths.html.path)")
            print("model:  \(report.modelPath.path)")
        }
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
