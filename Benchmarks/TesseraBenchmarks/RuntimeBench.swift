import Foundation
import Logging
import TesseraCoordinator
import TesseraData
import TesseraFederation
import TesseraParticipant
import TesseraTensor
import TesseraTesting
import TesseraTransport
import TesseraWire

/// The networked runtime's benchmark: one federation of 10 sites over HTTP/2 + mTLS on
/// 127.0.0.1 (throwaway CA), with a 1M-parameter model and training stubbed to a fixed
/// update, so the round time is the runtime's own cost — model broadcast by digest,
/// secure-aggregation stages, chunked masked inputs, aggregation — not the sites' training.
///
/// Then the coordinator's peak RSS for n = 10 and n = 100 sites, with the coordinator in a
/// process of its own (``CoordinatorMemoryBenchmark``).
///
/// References in the same run: the same federation over gRPC's in-process transport; and a plain
/// round's bytes moved by the TLS stack alone (``TLSTransferBound``) and by gRPC's HTTP/2
/// transport alone (``GRPCTransferBound``).
public enum RuntimeBenchmark {
    public static func run(reporter: BenchReporter, quick: Bool) async throws {
        reporter.section("Networked runtime (10 sites, HTTP/2 + mTLS on 127.0.0.1)")
        let sites = 10
        let inputs = quick ? 10_000 : 100_000
        let classes = 10
        // Rounds 2…8 are timed: a median of seven steadies the figure on a shared 2-core machine.
        let rounds = quick ? 3 : 9
        let architecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let initial = try architecture.build(seed: 1).parameters
        reporter.note(
            "model: \(initial.count) parameters (\(String(format: "%.1f", Double(initial.count * 4) / 1e6)) MB as float32); \(rounds) rounds; "
                + "training stubbed to a fixed update")

        func plan(secure: Bool) -> FederationPlan {
            FederationPlan(
                experimentID: "runtime-bench", rounds: rounds, datasetName: "bench", architecture: architecture,
                selection: .init(fraction: 1, minimum: sites),
                training: TrainingTask(epochs: 1, batchSize: 2, optimizer: .sgd(learningRate: 0.001)),
                secureAggregation: secure
                    ? .init(
                        neighbourhood: .complete, threshold: .fraction(0.7), dropoutRate: 0.3, corruptionRate: 0.1,
                        clip: 1)
                    : nil,
                evaluationEvery: 0, seed: 1)
        }
        let logger = Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() }

        enum Transport { case loopback, inProcess }
        /// The rounds between the first (it pays connection set-up) and the last (it also evaluates).
        func steadyRounds(over transport: Transport, secure: Bool) async throws -> [RoundRecord] {
            let participants = try agents(sites: sites, inputs: inputs, classes: classes, datasetName: "bench")
            let outcome =
                switch transport {
                case .loopback:
                    try await LoopbackFederation.run(
                        plan: plan(secure: secure), initialModel: initial, strategy: try FedAvg(),
                        participants: participants,
                        logger: logger)
                case .inProcess:
                    try await InProcessFederation.run(
                        plan: plan(secure: secure), initialModel: initial, strategy: try FedAvg(),
                        participants: participants,
                        logger: logger)
                }
            guard outcome.completedRounds == rounds else {
                throw BenchmarkError(
                    "the \(secure ? "secure" : "plain") runtime benchmark (\(transport)) completed \(outcome.completedRounds) of \(rounds) rounds"
                )
            }
            return Array(outcome.records.dropFirst().dropLast())
        }

        var medians: [String: Double] = [:]
        for secure in [false, true] {
            let steady = try await steadyRounds(over: .loopback, secure: secure)
            let round = median(steady.map(\.seconds)) * 1000
            let key = secure ? "round_secure_ms" : "round_plain_ms"
            reporter.figure(
                key, round, unit: "ms",
                label:
                    "\(secure ? "secure" : "plain") round, median of rounds 2…\(rounds - 1) (target ≤ \(secure ? 300 : 100))"
            )
            medians[key] = round
            if secure {
                let stages = Set(steady.flatMap { $0.stageSeconds.keys }).sorted()
                for stage in stages {
                    let ms = median(steady.compactMap { $0.stageSeconds[stage] }) * 1000
                    reporter.figure("round_secure_stage_\(stage)_ms", ms, unit: "ms", label: "  stage \(stage)")
                }
            }
        }
        if let plain = medians["round_plain_ms"], let secure = medians["round_secure_ms"] {
            reporter.note(String(format: "secure aggregation costs %.2f× the plain round", secure / plain))
        }

        // Reference, same run: the same federation over gRPC's in-process transport (the same
        // services and messages, no TLS, no HTTP/2, no sockets). The difference is what the
        // network stack costs; all sites and the coordinator share these 2 cores either way.
        for secure in [false, true] {
            let round = median(try await steadyRounds(over: .inProcess, secure: secure).map(\.seconds)) * 1000
            let key = secure ? "round_secure_inprocess_ms" : "round_plain_inprocess_ms"
            reporter.figure(
                key, round, unit: "ms", label: "reference: \(secure ? "secure" : "plain") round, in-process transport")
            if let network = medians[secure ? "round_secure_ms" : "round_plain_ms"] {
                reporter.figure(
                    key.replacingOccurrences(of: "_ms", with: "_network_share"), 1 - round / network, unit: "",
                    label: "  share of the loopback round spent in TLS + HTTP/2 + sockets")
            }
        }

        // Physical references, same run: the TLS stack under gRPC (NIOSSL, mTLS, the same event
        // loops) moving one plain round's bytes — the model to every site and an update back from
        // each — with nothing above it; then gRPC's HTTP/2 transport on top of it, still with
        // nothing of ours. Between them they split the plain round's time into the transport's
        // share and the runtime's own (protobuf, chunk checks, reassembly, digests, the round).
        let modelBytes = initial.count * MemoryLayout<Float>.size
        let roundBytes = 2 * sites * modelBytes
        let bound = median(try await TLSTransferBound.run(sites: sites, bytes: modelBytes, rounds: rounds)) * 1000
        reporter.figure(
            "round_tls_bound_ms", bound, unit: "ms",
            label:
                "reference: mTLS alone moving a plain round's \(String(format: "%.0f", Double(roundBytes) / 1e6)) MB over 127.0.0.1"
        )
        if let plain = medians["round_plain_ms"] {
            reporter.figure("round_plain_vs_tls_bound", plain / bound, unit: "×", label: "  plain round / that bound")
        }

        let grpcBound =
            median(
                try await GRPCTransferBound.run(
                    sites: sites, bytes: modelBytes, chunkBytes: WireProtocol.defaultChunkBytes, rounds: rounds)) * 1000
        reporter.figure(
            "round_grpc_bound_ms", grpcBound, unit: "ms",
            label: "reference: gRPC over HTTP/2 + mTLS alone moving the same bytes in chunk-sized messages")
        if let plain = medians["round_plain_ms"] {
            reporter.figure(
                "round_plain_vs_grpc_bound", plain / grpcBound, unit: "×", label: "  plain round / that bound")
        }

        let memoryRounds = 3
        // A coordinator's peak RSS moves from run to run with what malloc happens to keep, so
        // each size runs three times, alternating, and the median is the figure.
        let memoryRuns = quick ? 1 : 3
        reporter.note(
            "coordinator peak RSS: tessera-coordinator in its own process, secure aggregation, the same model, "
                + "\(memoryRounds) rounds; the sites run in this process; median of \(memoryRuns) runs per size")
        var runs: [Int: [(megabytes: Double, seconds: Double)]] = [:]
        for _ in 0..<memoryRuns {
            for n in [10, 100] {
                let run = try await CoordinatorMemoryBenchmark.run(
                    sites: n, inputs: inputs, classes: classes, rounds: memoryRounds)
                runs[n, default: []].append((Double(run.peakBytes) / 1_048_576, run.seconds))
            }
        }
        var peaks: [Int: Double] = [:]
        for n in [10, 100] {
            let measured = runs[n] ?? []
            let megabytes = median(measured.map(\.megabytes))
            peaks[n] = megabytes
            let each = measured.map { String(format: "%.1f MiB in %.1f s", $0.megabytes, $0.seconds) }
            reporter.figure(
                "coordinator_rss_mb_n\(n)", megabytes, unit: "MiB",
                label: "coordinator peak RSS, n = \(n) (\(each.joined(separator: "; ")))")
        }
        if let small = peaks[10], let large = peaks[100] {
            reporter.figure(
                "coordinator_rss_ratio", large / small, unit: "×", label: "peak RSS n = 100 / n = 10 (target ≤ 1.3)")
            // The ratio also moves with what does not depend on n (binary, model copies, malloc's
            // arenas); the slope is the cost of one more site alone.
            reporter.figure(
                "coordinator_rss_kb_per_site", (large - small) * 1024 / 90, unit: "KiB",
                label: "  peak RSS per site added, (n = 100 − n = 10) / 90")
        }
    }

    /// The benchmark's sites: each offers two samples of an `inputs`-feature dataset named
    /// `datasetName`, and training is stubbed to a fixed update (the same small, varied vector
    /// every round), so a round's cost is the runtime's own (Benchmarks/RESULTS.md has what the
    /// stub saves against one SGD step).
    static func agents(sites: Int, inputs: Int, classes: Int, datasetName: String) throws -> [ParticipantAgent] {
        // The logistic regression's parameters: the weights, then one bias per class.
        let update = (0..<(inputs * classes + classes)).map { Float(sin(Double($0) * 0.37)) * 1e-3 }
        let fixedUpdate: ParticipantAgent.TrainingOverride = { global, _ in
            guard global.count == update.count else {
                throw BenchmarkError(
                    "the benchmark's fixed update has \(update.count) values; the model has \(global.count)")
            }
            return TrainingOutcome(delta: update, sampleCount: 2, loss: 1, steps: 1)
        }
        return try (0..<sites).map { index in
            var rng = TesseraRandom(seed: UInt64(index + 1))
            let data = try Dataset(
                features: Tensor.randomNormal([2, inputs], standardDeviation: 0.01, using: &rng),
                labels: Tensor([Float(index % classes), Float((index + 1) % classes)]), classCount: classes)
            // No simulation seed: stochastic rounding draws from the system CSPRNG, as in
            // `tessera-participant`.
            return ParticipantAgent(
                site: "site-\(index + 1)", data: [datasetName: LocalData(train: data)], trainingOverride: fixedUpdate)
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// A benchmark could not produce its figure.
public struct BenchmarkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
