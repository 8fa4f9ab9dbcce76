import Foundation
import Logging
import Synchronization
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraTensor
import TesseraTransport
import TesseraWire

/// Load and abuse on loopback (`make soak`): the real `tessera-coordinator` in a process of its
/// own, watched through `/proc`, against what a long-running coordinator meets.
///
/// - **Flood**: silent TCP connections (no TLS handshake, no certificate) held open while real
///   sites run rounds; the sites must complete them.
/// - **Sessions**: hundreds of idle site sessions, each with its own certificate and TLS
///   connection, heartbeating for minutes while the coordinator's resident memory and open
///   descriptors are sampled every minute; then a fetch flood: many of those sites fetch the
///   model at once.
/// - **Rounds**: thousands of rounds of a small model with no attack, the coordinator's
///   resident memory sampled as they go; after warm-up it should not grow.
///
/// Every phase has a time limit and stops its coordinator (SIGTERM, then SIGKILL) when it ends.
public enum SoakBenchmark {
    public struct Options: Sendable {
        public enum Phase: String, CaseIterable, Sendable {
            case flood, sessions, rounds
        }

        public var phases: Set<Phase>
        /// How long the sessions heartbeat, sampled once a minute.
        public var minutes: Int
        public var sessions: Int
        /// Of the sessions, how many fetch the model at once afterwards (0: no fetch flood).
        public var fetchSites: Int
        /// The rounds of the no-attack phase.
        public var rounds: Int
        public var floodConnections: Int
        /// The rounds the real sites must complete under the flood.
        public var floodRounds: Int
        /// The coordinator's soft RLIMIT_NOFILE (0: inherit this process's).
        public var coordinatorFileLimit: Int
        /// Passed to every `tessera-coordinator` the soak starts (for example transport limits
        /// suited to hundreds of sessions from 127.0.0.1).
        public var coordinatorArguments: [String]

        public init(
            phases: Set<Phase> = Set(Phase.allCases), minutes: Int = 10, sessions: Int = 500, fetchSites: Int = 100,
            rounds: Int = 10_000, floodConnections: Int = 1_000, floodRounds: Int = 20,
            coordinatorFileLimit: Int = 1_024,
            coordinatorArguments: [String] = []
        ) {
            self.phases = phases
            self.minutes = minutes
            self.sessions = sessions
            self.fetchSites = fetchSites
            self.rounds = rounds
            self.floodConnections = floodConnections
            self.floodRounds = floodRounds
            self.coordinatorFileLimit = coordinatorFileLimit
            self.coordinatorArguments = coordinatorArguments
        }
    }

    /// The real sites of the flood and rounds phases.
    static let siteCount = 10

    public static func run(reporter: BenchReporter, options: Options) async throws {
        reporter.section("Soak: load and abuse on 127.0.0.1 (tessera-coordinator in its own process)")
        let started = ContinuousClock.now
        let limit =
            options.coordinatorFileLimit > 0
            ? "soft RLIMIT_NOFILE \(options.coordinatorFileLimit)" : "the inherited RLIMIT_NOFILE"
        let extra =
            options.coordinatorArguments.isEmpty
            ? "no extra flags" : "extra flags: \(options.coordinatorArguments.joined(separator: " "))"
        reporter.note("coordinator: \(limit), \(extra)")
        let interruptHandlers = SoakCoordinator.killOnInterrupt()
        defer { interruptHandlers.forEach { $0.cancel() } }
        let pki = try SoakPKI(sites: (1...siteCount).map { "site-\($0)" })
        defer { pki.remove() }

        var failures: [String] = []
        for phase in Options.Phase.allCases where options.phases.contains(phase) {
            do {
                switch phase {
                case .flood: try await floodPhase(options, pki: pki, reporter: reporter)
                case .sessions: try await sessionsPhase(options, pki: pki, reporter: reporter)
                case .rounds: try await roundsPhase(options, pki: pki, reporter: reporter)
                }
            } catch {
                reporter.note("the \(phase.rawValue) phase failed: \(error)")
                failures.append(phase.rawValue)
            }
        }
        reporter.note(String(format: "soak finished in %.1f min", (ContinuousClock.now - started).inSeconds / 60))
        guard failures.isEmpty else {
            throw BenchmarkError("the soak's \(failures.joined(separator: ", ")) phase(s) could not run to the end")
        }
    }

    // MARK: Flood

    /// Silent connections from 127.0.0.2, opened before the sites and reopened whenever the
    /// coordinator closes one, while 10 sites run `floodRounds` secure rounds.
    static func floodPhase(_ options: Options, pki: SoakPKI, reporter: BenchReporter) async throws {
        let name = "soak-flood"
        let (inputs, classes) = (20, 2)
        let rounds = options.floodRounds
        reporter.note(
            "flood: \(options.floodConnections) silent TCP connections from 127.0.0.2, held (reopened when closed) "
                + "while \(siteCount) sites run \(rounds) secure rounds of a \(inputs)×\(classes) logistic regression")
        let directory = try pki.phaseDirectory(name)
        let experiment = try writeExperiment(
            name: name, rounds: rounds, participants: siteCount, minimum: siteCount, inputs: inputs, classes: classes,
            secure: true, to: directory)
        try await withCoordinator(experiment: experiment, options, pki: pki, directory: directory) { coordinator in
            try await runFlood(
                coordinator, options, pki: pki, datasetName: name, inputs: inputs, classes: classes, reporter: reporter)
        }
    }

    private static func runFlood(
        _ coordinator: SoakCoordinator, _ options: Options, pki: SoakPKI, datasetName name: String, inputs: Int,
        classes: Int, reporter: BenchReporter
    ) async throws {
        let rounds = options.floodRounds
        let flood = try SilentConnectionFlood(port: coordinator.port, connections: options.floodConnections)
        defer { flood.close() }
        try await flood.open()
        // The sites start once the coordinator has taken in what it will of the flood: its open
        // descriptors have not moved for two seconds (at most 30 s).
        var baseline = coordinator.sample()
        var steadySince = ContinuousClock.now
        let settleDeadline = steadySince + .seconds(30)
        while ContinuousClock.now - steadySince < .seconds(2), ContinuousClock.now < settleDeadline {
            try await Task.sleep(for: .milliseconds(250))
            flood.maintain()
            let sample = coordinator.sample()
            if sample?.openFiles != baseline?.openFiles { steadySince = ContinuousClock.now }
            baseline = sample
        }

        let clients = try participants(
            pki: pki, datasetName: name, inputs: inputs, classes: classes, onTrain: nil)
        let sitesDone = Signal()
        let limit = Duration.seconds(180)
        let deadline = ContinuousClock.now + limit
        var peakFiles = baseline?.openFiles ?? 0
        // Read before the sites are cancelled: cancelled, they return as if they had finished.
        var finished = false
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await runSites(clients, port: coordinator.port)
                sitesDone.open()
            }
            while !sitesDone.isOpen, coordinator.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                flood.maintain()
                if let sample = coordinator.sample() { peakFiles = max(peakFiles, sample.openFiles) }
            }
            finished = sitesDone.isOpen
            group.cancelAll()
        }
        let stillOpen = flood.openConnections
        // Closed first: a coordinator at its descriptor limit could not even write its results.
        flood.close()
        // Before the coordinator is stopped: did it end by itself, and how?
        let ended = coordinator.ending
        if !(await coordinator.waitForExit(within: .seconds(30))) { await coordinator.stop() }
        let completed = coordinator.completedRounds()

        reporter.figure(
            "preauth_flood_rounds_completed", Double(completed), unit: "rounds",
            label: "rounds completed under the flood (of \(rounds))")
        reporter.note(
            "  sites \(finished ? "finished the experiment" : "did not finish within \(Int(limit.inSeconds)) s"); "
                + "the coordinator closed \(flood.closedByCoordinator) flood connections (reopened), "
                + "\(flood.openFailures) could not be opened here, \(stillOpen) were open at the end")
        if let ended, ended != "exit status 0" {
            reporter.note("  the coordinator ended by itself during the phase: \(ended)")
        }
        if let baseline {
            reporter.note(
                "  coordinator with the flood: \(baseline.openFiles) open descriptors before the sites started, peak \(peakFiles); "
                    + String(format: "RSS %.1f MiB", Double(baseline.residentKB) / 1024))
        }
        if completed < rounds {
            reporter.note("  coordinator log (last lines):\n" + indent(coordinator.logTail(lines: 12)))
        }
    }

    // MARK: Sessions and fetch flood

    /// `sessions` light sessions heartbeating for `minutes`, sampled every minute; then the first
    /// `fetchSites` of them fetch a 4 MB model at once. The experiment waits for more sites than
    /// connect, so no round starts: the sessions stay idle.
    static func sessionsPhase(_ options: Options, pki: SoakPKI, reporter: BenchReporter) async throws {
        let name = "soak-sessions"
        let (inputs, classes) = (100_000, 10)
        let count = max(1, options.sessions)
        let minutes = max(1, options.minutes)
        reporter.note(
            "sessions: \(count) idle site sessions (own certificate and TLS connection each) heartbeating for "
                + "\(minutes) min; the coordinator sampled every minute, the first minute is warm-up")
        let directory = try pki.phaseDirectory(name)
        let issued = ContinuousClock.now
        let identities = try (1...count).map { try pki.issue(site: "session-\($0)") }
        reporter.note(
            String(format: "  %d site certificates issued in %.1f s", count, (ContinuousClock.now - issued).inSeconds))
        // Never enough sites for a round: every session stays idle until the phase ends.
        let participants = count + 1
        let experiment = try writeExperiment(
            name: name, rounds: 1, participants: participants, minimum: participants, inputs: inputs, classes: classes,
            secure: false, selectionDeadline: 86_400, to: directory)
        try SilentConnectionFlood.raiseFileLimit(toAtLeast: count + 1024)
        // The sessions stand for as many sites on as many hosts, but all come from 127.0.0.1: the
        // per-address limits, made for one host, are raised to fit them (the totals stay). Flags
        // given with --coordinator-arg come later and win.
        var sessionOptions = options
        sessionOptions.coordinatorArguments =
            [
                "--max-connections-per-address", "\(count + 64)", "--max-pending-handshakes-per-address",
                "\(count + 64)", "--max-pending-handshakes", "\(count + 64)",
            ] + options.coordinatorArguments
        try await withCoordinator(experiment: experiment, sessionOptions, pki: pki, directory: directory) {
            coordinator in
            try await runSessions(
                coordinator, identities: identities, options, datasetName: name, inputs: inputs, classes: classes,
                reporter: reporter)
        }
    }

    private static func runSessions(
        _ coordinator: SoakCoordinator, identities: [URL], _ options: Options, datasetName name: String, inputs: Int,
        classes: Int, reporter: BenchReporter
    ) async throws {
        let count = identities.count
        let minutes = max(1, options.minutes)

        let architecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let model = try architecture.build(seed: 1).parameters
        let fetch = HeartbeatSessions.Fetch(
            digest: ModelDigest(parameters: model), parameterCount: model.count,
            count: min(count, max(0, options.fetchSites)))
        let sessions = HeartbeatSessions()
        var samples: [(minute: Int, sample: SoakCoordinator.Sample, open: Int)] = []
        var fetchSeconds = 0.0
        var fetchPeak: SoakCoordinator.Sample?
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, identity) in identities.enumerated() {
                group.addTask {
                    // Connections ramp up over a few seconds, as sites come online.
                    try await Task.sleep(for: .milliseconds(10 * index))
                    await sessions.runSession(
                        index: index, identity: identity, port: coordinator.port, datasets: [name: 2], fetch: fetch)
                }
            }
            let connectDeadline = ContinuousClock.now + .seconds(120)
            while sessions.tally.welcomed + sessions.tally.lost < count, ContinuousClock.now < connectDeadline {
                try await Task.sleep(for: .milliseconds(250))
            }
            let start = ContinuousClock.now
            for minute in 0...minutes {
                try await Task.sleep(until: start + .seconds(60 * minute))
                guard let sample = coordinator.sample() else {
                    throw BenchmarkError(
                        "the coordinator ended (\(coordinator.ending ?? "?")) during the sessions phase:\n\(coordinator.logTail())"
                    )
                }
                let open = sessions.tally.open
                samples.append((minute, sample, open))
                reporter.note(
                    String(
                        format:
                            "  minute %2d: RSS %7.1f MiB, %4d open descriptors, %d sessions open, %d heartbeats sent",
                        minute, Double(sample.residentKB) / 1024, sample.openFiles, open, sessions.tally.heartbeatsSent)
                )
            }
            if fetch.count > 0 {
                let signalled = ContinuousClock.now
                sessions.fetchSignal.open()
                let fetchDeadline = signalled + .seconds(120)
                while sessions.tally.fetchesCompleted + sessions.tally.fetchesFailed < fetch.count,
                    ContinuousClock.now < fetchDeadline
                {
                    try await Task.sleep(for: .milliseconds(100))
                }
                fetchSeconds = (ContinuousClock.now - signalled).inSeconds
                fetchPeak = coordinator.sample()
            }
            group.cancelAll()
        }
        await coordinator.stop()

        let tally = sessions.tally
        // Growth after warm-up: from the end of the first minute to the last sample.
        let first = samples.count > 2 ? samples[1] : samples[0]
        let last = samples[samples.count - 1]
        reporter.figure(
            "soak_sessions", Double(last.open), unit: "sessions",
            label: "sessions still open after \(minutes) min (of \(count); \(tally.welcomed) welcomed)")
        reporter.figure(
            "soak_rss_growth_mb", Double(last.sample.residentKB - first.sample.residentKB) / 1024, unit: "MiB",
            label: "coordinator RSS growth, minute \(first.minute) → \(last.minute)")
        reporter.figure(
            "soak_fd_growth", Double(last.sample.openFiles - first.sample.openFiles), unit: "fds",
            label: "coordinator open descriptors growth, minute \(first.minute) → \(last.minute)")
        if fetch.count > 0 {
            reporter.figure(
                "fetch_flood_completed", Double(tally.fetchesCompleted), unit: "fetches",
                label: "fetch flood: \(fetch.count) sites fetch a \(model.count * 4 / 1_000_000) MB model at once")
            reporter.figure(
                "fetch_flood_seconds", fetchSeconds, unit: "s", label: "  until every fetch ended (limit 120 s)")
            if let fetchPeak {
                reporter.figure(
                    "fetch_flood_peak_rss_mb", Double(fetchPeak.peakResidentKB) / 1024, unit: "MiB",
                    label: "  coordinator peak RSS by then")
            }
        }
        for failure in tally.failures { reporter.note("  failure: \(failure)") }
    }

    // MARK: Rounds

    /// `rounds` secure rounds of a small model with 10 sites and no attack; the coordinator's
    /// RSS is sampled every 5 % of the rounds (as site-1 starts training), and its growth after
    /// the first 10 % is fitted by least squares.
    static func roundsPhase(_ options: Options, pki: SoakPKI, reporter: BenchReporter) async throws {
        let name = "soak-rounds"
        let (inputs, classes) = (100, 10)
        let rounds = max(20, options.rounds)
        let step = max(1, rounds / 20)
        // Ten minutes, or 0.3 s a round: several times what a round takes here.
        let limit = Duration.seconds(max(600, rounds * 3 / 10))
        reporter.note(
            "rounds: \(rounds) secure rounds (active setting), \(siteCount) sites, a \(inputs)×\(classes) logistic "
                + "regression, no attack; coordinator RSS every \(step) rounds (limit \(Int(limit.inSeconds / 60)) min)"
        )
        let directory = try pki.phaseDirectory(name)
        let experiment = try writeExperiment(
            name: name, rounds: rounds, participants: siteCount, minimum: siteCount, inputs: inputs, classes: classes,
            secure: true, to: directory)
        try await withCoordinator(experiment: experiment, options, pki: pki, directory: directory) { coordinator in
            try await runRounds(
                coordinator, total: rounds, step: step, limit: limit, pki: pki, datasetName: name, inputs: inputs,
                classes: classes, reporter: reporter)
        }
    }

    private static func runRounds(
        _ coordinator: SoakCoordinator, total rounds: Int, step: Int, limit: Duration, pki: SoakPKI,
        datasetName name: String, inputs: Int, classes: Int, reporter: BenchReporter
    ) async throws {
        let probe = RoundProbe(coordinator: coordinator, every: step)
        let clients = try participants(
            pki: pki, datasetName: name, inputs: inputs, classes: classes, onTrain: { probe.trained() })
        let sitesDone = Signal()
        let started = ContinuousClock.now
        let deadline = started + limit
        var reported = 0
        func reportSamples() {
            let samples = probe.samples
            for sample in samples.dropFirst(reported) where sample.round % max(step, rounds / 10) == 0 {
                reporter.note(
                    String(
                        format: "  round %6d: RSS %7.1f MiB, %3d open descriptors (%.0f s)", sample.round,
                        Double(sample.residentKB) / 1024, sample.openFiles, sample.seconds))
            }
            reported = samples.count
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await runSites(clients, port: coordinator.port)
                sitesDone.open()
            }
            while !sitesDone.isOpen, ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(2))
                reportSamples()
            }
            group.cancelAll()
        }
        reportSamples()
        let elapsed = (ContinuousClock.now - started).inSeconds
        let exited = await coordinator.waitForExit(within: .seconds(120))
        if exited, let ended = coordinator.ending, ended != "exit status 0" {
            reporter.note("  the coordinator ended with \(ended)")
        }
        if !exited { await coordinator.stop() }
        let completed = coordinator.completedRounds()

        reporter.figure(
            "soak_rounds_completed", Double(completed), unit: "rounds",
            label: String(format: "rounds completed (of %d, in %.1f min)", rounds, elapsed / 60))
        let warm = probe.samples.filter { $0.round > rounds / 10 }
        let slope = leastSquaresSlope(warm.map { (Double($0.round), Double($0.residentKB)) })
        reporter.figure(
            "idle_rss_kb_per_1000_rounds", slope * 1000, unit: "KiB",
            label: "coordinator RSS growth per 1,000 rounds after round \(rounds / 10)")
        if let first = warm.first, let last = warm.last {
            reporter.note(
                String(
                    format: "  RSS %.1f MiB at round %d, %.1f MiB at round %d; open descriptors %d → %d",
                    Double(first.residentKB) / 1024, first.round, Double(last.residentKB) / 1024, last.round,
                    first.openFiles, last.openFiles))
        }
        if completed < rounds {
            reporter.note("  coordinator log (last lines):\n" + indent(coordinator.logTail(lines: 12)))
        }
    }

    /// The coordinator's RSS as the rounds go: site-1 reports each training task, and every
    /// `every`-th round the coordinator is read from `/proc`.
    final class RoundProbe: Sendable {
        struct Sample: Sendable {
            var round: Int
            var residentKB: Int
            var openFiles: Int
            var seconds: Double
        }

        private let coordinator: SoakCoordinator
        private let every: Int
        private let started = ContinuousClock.now
        private let state = Mutex<(trained: Int, samples: [Sample])>((0, []))

        init(coordinator: SoakCoordinator, every: Int) {
            self.coordinator = coordinator
            self.every = every
        }

        var samples: [Sample] { state.withLock { $0.samples } }

        /// Site-1 starts training a round: rounds before it are complete.
        func trained() {
            let round = state.withLock {
                $0.trained += 1
                return $0.trained
            }
            guard (round - 1) % every == 0, let sample = coordinator.sample() else { return }
            let entry = Sample(
                round: round - 1, residentKB: sample.residentKB, openFiles: sample.openFiles,
                seconds: (ContinuousClock.now - started).inSeconds)
            state.withLock { $0.samples.append(entry) }
        }
    }

    // MARK: Sites

    /// The 10 real sites: `ParticipantClient`s with training stubbed to a fixed update (the
    /// coordinator's cost is what is measured), each signing with its own certificate.
    /// `onTrain` is called as site-1 starts each training task.
    static func participants(
        pki: SoakPKI, datasetName: String, inputs: Int, classes: Int, onTrain: (@Sendable () -> Void)?
    ) throws -> [(ParticipantClient, URL)] {
        let architecture = ModelArchitecture.logisticRegression(inputs: inputs, classes: classes)
        let policy = RuntimeBenchmark.sitePolicy(.active, architecture: architecture)
        // The logistic regression's parameters: the weights, then one bias per class.
        let update = (0..<(inputs * classes + classes)).map { Float(sin(Double($0) * 0.37)) * 1e-3 }
        let logger = Logger(label: "tessera.soak") { _ in SwiftLogNoOpLogHandler() }
        return try (1...siteCount).map { index in
            let site = "site-\(index)"
            let identity = try pki.identity(of: site)
            let report = index == 1 ? onTrain : nil
            let fixedUpdate: ParticipantAgent.TrainingOverride = { global, _ in
                report?()
                guard global.count == update.count else {
                    throw BenchmarkError(
                        "the soak's fixed update has \(update.count) values; the model has \(global.count)")
                }
                return TrainingOutcome(delta: update, sampleCount: 2, loss: 1, steps: 1)
            }
            var rng = TesseraRandom(seed: UInt64(index))
            let data = try Dataset(
                features: Tensor.randomNormal([2, inputs], standardDeviation: 0.01, using: &rng),
                labels: Tensor([Float(index % classes), Float((index + 1) % classes)]), classCount: classes)
            let trust = try ThrowawayPKI.trust(identityDirectory: identity)
            let agent = ParticipantAgent(
                site: site, data: [datasetName: LocalData(train: data)], policy: policy, signer: trust.signer,
                credentialVerifier: trust.signingVerifier, trainingOverride: fixedUpdate)
            let client = ParticipantClient(
                agent: agent,
                configuration: .init(backoffBase: .milliseconds(200), backoffCap: .seconds(5)),
                clock: MonotonicClock(), logger: logger)
            return (client, identity)
        }
    }

    /// Runs the sites until the coordinator ends their sessions (the experiment finished) or the
    /// task is cancelled.
    static func runSites(_ clients: [(ParticipantClient, URL)], port: Int) async throws {
        let endpoint = Endpoint(host: "127.0.0.1", port: port)
        // The sites run concurrently here: one OpenBLAS thread each.
        try await TensorRuntime.withThreadCount(1) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (client, identity) in clients {
                    group.addTask {
                        try await client.run(connectingTo: endpoint, security: .identityDirectory(identity))
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    // MARK: Helpers

    /// Starts a coordinator for `experiment`, runs `body` with it, and stops it whatever happens.
    static func withCoordinator(
        experiment: URL, _ options: Options, pki: SoakPKI, directory: URL,
        _ body: (SoakCoordinator) async throws -> Void
    ) async throws {
        let coordinator = try await SoakCoordinator(
            experiment: experiment, pki: pki, fileLimit: options.coordinatorFileLimit,
            extraArguments: options.coordinatorArguments, directory: directory)
        do {
            try await body(coordinator)
        } catch {
            await coordinator.stop()
            throw error
        }
        await coordinator.stop()
    }

    /// An experiment file for `tessera-coordinator` (it loads no data: the dataset section only
    /// has to be valid).
    static func writeExperiment(
        name: String, rounds: Int, participants: Int, minimum: Int, inputs: Int, classes: Int, secure: Bool,
        selectionDeadline: Int? = nil, to directory: URL
    ) throws -> URL {
        let url = directory.appendingPathComponent("experiment.yaml")
        var yaml = """
            name: \(name)
            seed: 1
            rounds: \(rounds)
            participants: \(participants)
            model: {preset: logistic_regression, inputs: \(inputs), classes: \(classes)}
            dataset: {kind: csv, paths: [sites.csv], label_column: label}
            partitioning: {scheme: iid}
            cohort: {fraction: 1.0, minimum: \(minimum)}
            strategy: {name: fedavg}
            local_training: {epochs: 1, batch_size: 2, optimizer: sgd, learning_rate: 0.001}
            secure_aggregation: {enabled: \(secure)}
            evaluation: {every: \(rounds)}
            on_round_failure: continue

            """
        if let selectionDeadline { yaml += "deadlines: {selection: \(selectionDeadline)}\n" }
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func leastSquaresSlope(_ points: [(x: Double, y: Double)]) -> Double {
        guard points.count >= 2 else { return .nan }
        let n = Double(points.count)
        let meanX = points.map(\.x).reduce(0, +) / n
        let meanY = points.map(\.y).reduce(0, +) / n
        let covariance = points.map { ($0.x - meanX) * ($0.y - meanY) }.reduce(0, +)
        let variance = points.map { ($0.x - meanX) * ($0.x - meanX) }.reduce(0, +)
        return variance > 0 ? covariance / variance : .nan
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n").map { "     \($0)" }.joined(separator: "\n")
    }
}

/// The soak's federation PKI in a temporary directory: a CA, the coordinator's identity, and a
/// CA directory for the coordinator that holds only `ca.pem` and the revocation lists (never the
/// CA key), and site identities issued on demand. ``remove()`` deletes it all.
struct SoakPKI: Sendable {
    let root: URL
    let ca: FederationCA
    let caDirectory: URL
    /// `ca.pem`, `revoked.json` and `revoked.signed`, copied from the CA directory.
    let coordinatorCADirectory: URL
    let coordinatorIdentity: URL

    init(sites: [String]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-soak-\(UUID().uuidString)")
        caDirectory = root.appendingPathComponent("ca")
        coordinatorCADirectory = root.appendingPathComponent("coordinator-ca")
        coordinatorIdentity = root.appendingPathComponent("coordinator")
        do {
            ca = try FederationCA.initialize(at: caDirectory, name: "Tessera soak CA (throwaway)", validityDays: 2)
            _ = try ca.issueCoordinator(hosts: ["127.0.0.1"], to: coordinatorIdentity, validityDays: 1)
            try FileManager.default.createDirectory(at: coordinatorCADirectory, withIntermediateDirectories: true)
            for file in [
                FederationCA.certificateFileName, FederationCA.revokedFileName,
                FederationCA.signedRevocationListFileName,
            ] {
                try FileManager.default.copyItem(
                    at: caDirectory.appendingPathComponent(file),
                    to: coordinatorCADirectory.appendingPathComponent(file))
            }
            for site in sites { _ = try issue(site: site) }
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    /// Issues the identity of `site` (TLS and signing certificates) and returns its directory.
    func issue(site: String) throws -> URL {
        let directory = root.appendingPathComponent("sites").appendingPathComponent(site)
        _ = try ca.issue(site: site, to: directory, validityDays: 1)
        return directory
    }

    /// The identity directory of a site issued earlier.
    func identity(of site: String) throws -> URL {
        let directory = root.appendingPathComponent("sites").appendingPathComponent(site)
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw BenchmarkError("the soak PKI issued no identity for \(site)")
        }
        return directory
    }

    /// A fresh directory for one phase's experiment, log and results.
    func phaseDirectory(_ name: String) throws -> URL {
        let directory = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}
