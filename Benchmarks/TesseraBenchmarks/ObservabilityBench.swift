import Foundation
import Logging
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraTensor
import TesseraTesting
import TesseraTransport

/// What observing a federation costs: the runtime benchmark's federation (10 sites over HTTP/2
/// + mTLS on 127.0.0.1, a 1M-parameter model, training stubbed to a fixed update) with
/// Prometheus metrics at the coordinator and every site, tracing into an in-memory exporter and
/// JSON logs at info level (written to /dev/null), against the same rounds with all of it off.
/// Plain and secure (active setting) rounds; federations alternate and each ratio is taken
/// within a pair, then the median.
public enum ObservabilityBenchmark {
    public static func run(reporter: BenchReporter, quick: Bool) async throws {
        reporter.section("Observability overhead (10 sites, HTTP/2 + mTLS on 127.0.0.1)")
        let sites = 10
        let inputs = quick ? 10_000 : 100_000
        let classes = 10
        let rounds = quick ? 3 : 7
        let architecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let initial = try architecture.build(seed: 1).parameters
        reporter.note(
            "model: \(initial.count) parameters; \(rounds) rounds per federation, rounds 2…\(rounds - 1) timed; "
                + "observed = metrics (coordinator and sites) + tracing (in-memory) + JSON logs (info, to /dev/null)")
        let pki = try ThrowawayPKI(purpose: "observability", sites: (1...sites).map { "site-\($0)" })
        defer { pki.remove() }
        let devNull = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/null"))
        let quiet = Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() }
        let json = Logger(label: "tessera.bench") { label in
            JSONLogHandler(label: label, sink: JSONLogHandler.Sink { devNull.write($0) })
        }

        func steadyRound(secure: Bool, observed: Bool) async throws -> Double {
            let mode: RuntimeBenchmark.Mode = secure ? .active : .plain
            let plan = FederationPlan(
                experimentID: "observability-bench", rounds: rounds, datasetName: "bench", architecture: architecture,
                selection: .init(fraction: 1, minimum: sites),
                training: TrainingTask(epochs: 1, batchSize: 2, optimizer: .sgd(learningRate: 0.001)),
                secureAggregation: secure
                    ? .init(
                        neighbourhood: .complete, threshold: .fraction(0.7), dropoutRate: 0.3, corruptionRate: 0.1,
                        clip: 1, activeAdversary: true)
                    : nil,
                evaluationEvery: 0, seed: 1)
            let participants = try RuntimeBenchmark.agents(
                sites: sites, inputs: inputs, classes: classes, datasetName: "bench",
                policy: RuntimeBenchmark.sitePolicy(mode, architecture: architecture), trust: pki.trust(of:))
            var configuration = CoordinatorService.Configuration(
                signingVerifier: try pki.coordinatorSigningValidator())
            var siteMetrics: [SiteID: ParticipantMetrics] = [:]
            var exports: [MetricsExport] = []
            if observed {
                let export = MetricsExport(program: "tessera-coordinator")
                configuration.metrics = CoordinatorMetrics(factory: export.factory)
                exports.append(export)
                for agent in participants {
                    let siteExport = MetricsExport(program: "tessera-participant")
                    siteMetrics[agent.site] = ParticipantMetrics(factory: siteExport.factory)
                    exports.append(siteExport)
                }
            }
            let counters = siteMetrics
            let outcome = try await LoopbackFederation.run(
                plan: plan, initialModel: initial, strategy: try FedAvg(), participants: participants,
                configuration: configuration, configure: { site, client in client.metrics = counters[site] },
                tracer: observed ? W3CInMemoryTracer() : nil, logger: observed ? json : quiet)
            guard outcome.completedRounds == rounds else {
                let reason = outcome.records.compactMap(\.failureReason).first.map { ": \($0)" } ?? ""
                throw BenchmarkError(
                    "the observability benchmark (\(secure ? "secure" : "plain"), observed: \(observed)) completed \(outcome.completedRounds) of \(rounds) rounds\(reason)"
                )
            }
            // A scrape per federation, as Prometheus would do during it: the cost is in the run.
            for export in exports { _ = export.exposition() }
            return BenchClock.median(outcome.records.dropFirst().dropLast().map(\.seconds)) * 1000
        }

        let cycles = quick ? 1 : 5
        for secure in [false, true] {
            var off: [Double] = []
            var on: [Double] = []
            for _ in 0..<cycles {
                off.append(try await steadyRound(secure: secure, observed: false))
                on.append(try await steadyRound(secure: secure, observed: true))
            }
            let name = secure ? "secure" : "plain"
            let ratio = BenchClock.median(zip(on, off).map { $0 / $1 })
            reporter.figure("round_\(name)_ms_unobserved", BenchClock.median(off), unit: "ms", label: "\(name) round")
            reporter.figure(
                "round_\(name)_observed_ms", BenchClock.median(on), unit: "ms",
                label: "\(name) round with metrics, tracing and JSON logs")
            reporter.figure(
                "round_\(name)_observed_vs_\(name)", ratio, unit: "×",
                label: "observed ÷ unobserved (goal ≤ 1.05; median of \(cycles) interleaved pairs)")
            reporter.note("  pairs: " + zip(on, off).map { String(format: "%.3f", $0 / $1) }.joined(separator: ", "))
        }
    }
}
