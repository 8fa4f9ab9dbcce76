import Foundation
import Logging
import TesseraCoordinator
import TesseraFederation
import TesseraTensor
import TesseraTesting

/// What distributed differential privacy costs a secure round: the runtime benchmark's
/// federation (10 sites, a 1M-parameter model, training stubbed to a fixed update, gRPC's
/// in-process transport) running secure rounds against a semi-honest server, with and without
/// distributed Skellam noise (each site clips, rotates, rounds and noises its update; the
/// coordinator rotates the sum back). Federations alternate, and the ratio is taken within each
/// pair, then the median: the machine's speed swings more between runs than the noise costs.
public enum PrivacyRoundBenchmark {
    public static func run(reporter: BenchReporter, quick: Bool) async throws {
        reporter.section("Secure rounds with distributed differential privacy (10 sites, in-process gRPC)")
        let sites = 10
        let inputs = quick ? 10_000 : 100_000
        let classes = 10
        let rounds = quick ? 3 : 6
        let architecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let initial = try architecture.build(seed: 1).parameters
        reporter.note(
            "model: \(initial.count) parameters; \(rounds) rounds per federation, rounds 2…\(rounds - 1) timed; "
                + "noise multiplier 1, clip norm 1, every site sampled (q = 1)")
        func plan(private: Bool) -> FederationPlan {
            var plan = FederationPlan(
                experimentID: "dp-bench", rounds: rounds, datasetName: "bench", architecture: architecture,
                selection: .init(fraction: 1, minimum: sites),
                training: TrainingTask(epochs: 1, batchSize: 2, optimizer: .sgd(learningRate: 0.001)),
                secureAggregation: .init(
                    neighbourhood: .complete, threshold: .fraction(0.7), dropoutRate: 0.3, corruptionRate: 0.1,
                    clip: 1, activeAdversary: false),
                evaluationEvery: 0, seed: 1)
            if `private` {
                plan.privacy = FederationPlan.Privacy(
                    mode: .distributed, noiseMultiplier: 1, samplingRate: 1, initialClipNorm: 1)
            }
            return plan
        }
        let logger = Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() }
        let pki = try ThrowawayPKI(purpose: "dp-round", sites: (1...sites).map { "site-\($0)" })
        defer { pki.remove() }
        let configuration = CoordinatorService.Configuration(signingVerifier: try pki.coordinatorSigningValidator())
        func steadyRound(private: Bool) async throws -> Double {
            let participants = try RuntimeBenchmark.agents(
                sites: sites, inputs: inputs, classes: classes, datasetName: "bench",
                policy: RuntimeBenchmark.sitePolicy(.semiHonest, architecture: architecture), trust: pki.trust(of:))
            let outcome = try await InProcessFederation.run(
                plan: plan(private: `private`), initialModel: initial, strategy: try FedAvg(),
                participants: participants, configuration: configuration, logger: logger)
            guard outcome.completedRounds == rounds else {
                let reason = outcome.records.compactMap(\.failureReason).first.map { ": \($0)" } ?? ""
                throw BenchmarkError(
                    "the \(`private` ? "private" : "secure") round benchmark completed \(outcome.completedRounds) of \(rounds) rounds\(reason)"
                )
            }
            return BenchClock.median(outcome.records.dropFirst().dropLast().map(\.seconds)) * 1000
        }
        let cycles = quick ? 1 : 5
        var secure: [Double] = []
        var noised: [Double] = []
        for _ in 0..<cycles {
            secure.append(try await steadyRound(private: false))
            noised.append(try await steadyRound(private: true))
        }
        let ratio = BenchClock.median(zip(noised, secure).map { $0 / $1 })
        reporter.figure(
            "round_secure_ms_dp_reference", BenchClock.median(secure), unit: "ms", label: "secure round, semi-honest")
        reporter.figure(
            "round_secure_dp_ms", BenchClock.median(noised), unit: "ms", label: "secure round with distributed DP")
        reporter.figure(
            "round_secure_dp_vs_secure", ratio, unit: "×",
            label: "secure round with distributed DP ÷ without (goal ≤ 1.2; median of \(cycles) interleaved pairs)")
    }
}
