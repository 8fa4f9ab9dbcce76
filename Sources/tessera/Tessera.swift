import ArgumentParser
import Foundation
import TesseraBenchmarks
import TesseraTensor

@main
struct Tessera: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Federated learning with secure aggregation.",
        version: TesseraVersion.current,
        subcommands: [Demo.self, Bench.self])
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
            // TENSOR-WIRING
        }
        // CRYPTO-SECAGG-WIRING
    }
}
