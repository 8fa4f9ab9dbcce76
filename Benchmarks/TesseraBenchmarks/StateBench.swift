import Foundation
import Logging
import TesseraCoordinator
import TesseraFederation
import TesseraState
import TesseraTensor
import TesseraTesting

/// The durable state's costs, each against a reference measured in the same run:
///
/// - a round commit (the model's safetensors blob, written durably, then one SQLite
///   transaction of its rows) against writing and `fsync`ing the same bytes to a new file in
///   the same folder: the physical bound of making those bytes durable;
/// - a plain round of an in-process federation with the durable state against the same round
///   with the state in memory;
/// - a restart on a database of 1,000 completed rounds, to the first message of the resumed
///   round.
///
/// Ratios are medians of interleaved pairs: the machine's speed swings between runs.
public enum StateBenchmark {
    public static func run(reporter: BenchReporter, quick: Bool) async throws {
        reporter.section("Durable state (SQLite in WAL mode, synchronous = FULL, content-addressed blobs)")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-state-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try commitAgainstWriteBound(reporter: reporter, root: root, quick: quick)
        try await durableRoundAgainstMemory(reporter: reporter, root: root, quick: quick)
        try resume(reporter: reporter, root: root, quick: quick)
    }

    static let logger = Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() }

    /// A model of 1,000,010 parameters (a logistic regression over 100,000 inputs and 10 classes).
    static let architecture = ModelArchitecture.logisticRegression(inputs: 100_000, classes: 10)

    static func experiment(in state: CoordinatorState, name: String, rounds: Int) throws -> ExperimentRecord {
        try state.submit(
            ExperimentSubmission(
                name: name, configYAML: "name: \(name)\n", configHash: name, architecture: architecture.summary,
                rounds: rounds, submittedBy: "local:bench"))
    }

    /// The actions of a completed round as the machine emits them.
    static func roundActions(round: Int, parameters: [Float], experiment: String) -> [CoordinatorAction] {
        let version = ModelVersion(major: 1, minor: 0, patch: round)
        let record = RoundRecord(
            round: round, modelVersion: version.description, cohortSize: 10, contributors: 10, dropouts: 0,
            trainLoss: 0.5, stageSeconds: ["train": 1], seconds: 1, publicSeed: "00")
        let published = PublishedModel(
            experimentID: experiment, version: version, parent: ModelVersion(major: 1, minor: 0, patch: round - 1),
            round: round, parameters: parameters, contributors: 10, trainLoss: 0.5,
            strategyState: StrategyState(strategy: "fedavg", rounds: round))
        let outcomes = Dictionary(uniqueKeysWithValues: (1...10).map { ("site-\($0)", SiteRoundOutcome.contributed) })
        return [
            .publish(published), .siteOutcomes(round: round, outcomes: outcomes, breakers: [:]),
            .roundFinished(record),
        ]
    }

    static func commitAgainstWriteBound(reporter: BenchReporter, root: URL, quick: Bool) throws {
        let folder = root.appendingPathComponent("commit")
        let state = try CoordinatorState(directory: folder)
        let record = try experiment(in: state, name: "commit", rounds: 1_000)
        let run = try state.beginRun(of: record.id)
        let recorder = try ExperimentRecorder(state: state, experiment: record, run: run, architecture: architecture)
        var parameters = try architecture.build(seed: 1).parameters
        // The rows alone go to an experiment of their own, so they never meet the pairs' rows.
        let rowsRecord = try experiment(in: state, name: "rows", rounds: 1_000)
        let rowsRun = try state.beginRun(of: rowsRecord.id)
        let pairs = quick ? 5 : 15
        var commits: [Double] = []
        var bounds: [Double] = []
        var ratios: [Double] = []
        var encodes: [Double] = []
        var blobs: [Double] = []
        var rows: [Double] = []
        for round in 1...pairs {
            // Every round's model differs, as a real round's does: no blob is deduplicated.
            parameters[round] += 1
            let actions = roundActions(round: round, parameters: parameters, experiment: "commit")
            var bytes: [UInt8] = []
            encodes.append(
                try BenchClock.seconds {
                    bytes = try recorder.artifact(parameters, version: ModelVersion(major: 1, minor: 0, patch: round))
                })
            let commit = try BenchClock.seconds { try recorder.persist(actions, now: 0) }
            let bound = try BenchClock.seconds {
                try writeAndSync(bytes, to: folder.appendingPathComponent("bound-\(round)"))
            }
            try? FileManager.default.removeItem(at: folder.appendingPathComponent("bound-\(round)"))
            // The blob alone, of bytes no round wrote (after the pair, so the pair runs as before).
            var other = bytes
            other[other.count - 1] ^= 0xFF
            blobs.append(try BenchClock.seconds { try state.blobs.put(other) })
            guard case .roundFinished(let record) = actions.last else { throw BenchmarkError("no round record") }
            rows.append(
                try BenchClock.seconds {
                    try state.commitRound(
                        RoundCommit(
                            experiment: rowsRecord.id, run: rowsRun, attempt: 0, record: record,
                            siteOutcomes: Dictionary(
                                uniqueKeysWithValues: (1...10).map { ("site-\($0)", SiteRoundOutcome.contributed) })))
                })
            commits.append(commit)
            bounds.append(bound)
            ratios.append(commit / bound)
        }
        reporter.note(
            "model: \(parameters.count) parameters (\(String(format: "%.1f", Double(parameters.count * 4) / 1e6)) MB); \(pairs) interleaved pairs"
        )
        reporter.note(
            String(
                format:
                    "  of which: encode %.2f ms, blob (write, fsync ∥ SHA-256, rename, folder fsync) %.2f ms, rows (one flushed transaction) %.2f ms",
                BenchClock.median(encodes) * 1000, BenchClock.median(blobs) * 1000, BenchClock.median(rows) * 1000))
        reporter.figure(
            "state_commit_ms_per_round", BenchClock.median(commits) * 1000, unit: "ms",
            label: "round commit (encode, blob, rows)")
        reporter.figure(
            "state_write_bound_ms", BenchClock.median(bounds) * 1000, unit: "ms",
            label: "reference: write + fsync of the same bytes")
        reporter.figure(
            "state_commit_vs_write_bound", BenchClock.median(ratios), unit: "×",
            label: "commit / write bound (goal ≤ 1.5)")
    }

    /// Writes `bytes` to a new file and `fsync`s it: what any durable write of them costs at least.
    static func writeAndSync(_ bytes: [UInt8], to url: URL) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw BenchmarkError("cannot create \(url.path)") }
        defer { close(descriptor) }
        var written = 0
        try bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                guard count > 0 else { throw BenchmarkError("cannot write \(url.path)") }
                written += count
            }
        }
        guard fsync(descriptor) == 0 else { throw BenchmarkError("cannot fsync \(url.path)") }
    }

    static func durableRoundAgainstMemory(reporter: BenchReporter, root: URL, quick: Bool) async throws {
        let sites = 10
        let inputs = quick ? 10_000 : 100_000
        let classes = 10
        let rounds = quick ? 4 : 7
        let roundArchitecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let initial = try roundArchitecture.build(seed: 1).parameters
        let plan = FederationPlan(
            experimentID: "durable-bench", rounds: rounds, datasetName: "bench", architecture: roundArchitecture,
            selection: .init(fraction: 1, minimum: sites),
            training: TrainingTask(epochs: 1, batchSize: 2, optimizer: .sgd(learningRate: 0.001)),
            secureAggregation: nil, evaluationEvery: 0, seed: 1)
        let pki = try ThrowawayPKI(purpose: "state", sites: (1...sites).map { "site-\($0)" })
        defer { pki.remove() }

        /// The steady rounds' median (the first pays connection set-up, the last the end).
        func roundMilliseconds(durable: Bool, cycle: Int) async throws -> Double {
            let participants = try RuntimeBenchmark.agents(
                sites: sites, inputs: inputs, classes: classes, datasetName: "bench",
                policy: RuntimeBenchmark.sitePolicy(.plain, architecture: roundArchitecture), trust: pki.trust(of:))
            var persistence: ExperimentRecorder?
            if durable {
                let state = try CoordinatorState(directory: root.appendingPathComponent("durable-\(cycle)"))
                let record = try state.submit(
                    ExperimentSubmission(
                        name: "durable-bench", configYAML: "", configHash: "bench",
                        architecture: roundArchitecture.summary, rounds: rounds, submittedBy: "local:bench"))
                persistence = try ExperimentRecorder(
                    state: state, experiment: record, run: try state.beginRun(of: record.id),
                    architecture: roundArchitecture)
            }
            let outcome = try await InProcessFederation.run(
                plan: plan, initialModel: initial, strategy: try FedAvg(), participants: participants,
                persistence: persistence, logger: logger)
            guard outcome.completedRounds == rounds else {
                throw BenchmarkError(
                    "the durable-state benchmark completed \(outcome.completedRounds) of \(rounds) rounds")
            }
            return BenchClock.median(outcome.records.dropFirst().dropLast().map(\.seconds)) * 1000
        }

        let cycles = quick ? 1 : 9
        var memory: [Double] = []
        var durable: [Double] = []
        var ratios: [Double] = []
        for cycle in 0..<cycles {
            let inMemory = try await roundMilliseconds(durable: false, cycle: cycle)
            let onDisk = try await roundMilliseconds(durable: true, cycle: cycle)
            memory.append(inMemory)
            durable.append(onDisk)
            ratios.append(onDisk / inMemory)
        }
        reporter.note(
            "plain rounds of \(sites) in-process sites, \(initial.count) parameters, training stubbed; median of \(cycles) interleaved pairs"
        )
        reporter.figure(
            "round_plain_memory_ms", BenchClock.median(memory), unit: "ms", label: "plain round, state in memory")
        reporter.figure(
            "round_plain_durable_ms", BenchClock.median(durable), unit: "ms", label: "plain round, durable state")
        reporter.figure(
            "round_plain_durable_vs_memory", BenchClock.median(ratios), unit: "×",
            label: "durable / memory (goal ≤ 1.1)")
    }

    static func resume(reporter: BenchReporter, root: URL, quick: Bool) throws {
        let folder = root.appendingPathComponent("resume")
        let rounds = quick ? 100 : 1_000
        let state = try CoordinatorState(directory: folder)
        let yaml = """
            name: resume
            rounds: \(rounds + 10)
            participants: 10
            model: {preset: logistic_regression, inputs: 100000, classes: 10}
            dataset: {kind: csv, paths: [site.csv], label_column: label}
            cohort: {fraction: 1.0, minimum: 10}
            secure_aggregation: {enabled: false}
            """
        let config = try ExperimentConfig.parse(yaml: yaml, source: "resume bench")
        let record = try state.submit(
            ExperimentSubmission(
                name: "resume", configYAML: yaml, configHash: config.configHash, architecture: architecture.summary,
                rounds: config.rounds, submittedBy: "local:bench"))
        let run = try state.beginRun(of: record.id)
        let recorder = try ExperimentRecorder(state: state, experiment: record, run: run, architecture: architecture)
        let parameters = try architecture.build(seed: 1).parameters
        let fill = try BenchClock.seconds {
            for round in 1...rounds {
                try recorder.persist(roundActions(round: round, parameters: parameters, experiment: "resume"), now: 0)
            }
        }
        reporter.note(
            "\(rounds) completed rounds committed in \(String(format: "%.1f", fill)) s (one model blob, deduplicated)")
        var plan = config.federationPlan(
            datasetName: config.name,
            architecture: try CoordinatorProgram.architecture(of: config))
        plan.publicRandomness = .system
        let descriptors = (1...10).map { ParticipantDescriptor(site: "site-\($0)", datasets: ["resume": 10]) }
        var times: [Double] = []
        for _ in 0..<(quick ? 3 : 7) {
            var first: CoordinatorAction?
            let seconds = try BenchClock.seconds {
                let reopened = try CoordinatorState(directory: folder)
                let (machine, persistence) = try CoordinatorProgram.resume(
                    record, config: config, architecture: try CoordinatorProgram.architecture(of: config), plan: plan,
                    state: reopened, now: 0, logger: logger)
                var resumed = machine
                for descriptor in descriptors {
                    _ = resumed.handle(.participantAvailable(descriptor), now: 0)
                }
                let actions = resumed.handle(.start, now: 0)
                try persistence.persist(actions, now: 0)
                first = actions.first { if case .send = $0 { true } else { false } }
            }
            guard case .send(_, .train(let instruction)) = first, instruction.round == rounds + 1 else {
                throw BenchmarkError("the resumed coordinator did not start round \(rounds + 1)")
            }
            times.append(seconds)
        }
        reporter.figure(
            "resume_ms", BenchClock.median(times) * 1000, unit: "ms",
            label: "restart → first message of round \(rounds + 1) (goal ≤ 1000)")
    }
}
