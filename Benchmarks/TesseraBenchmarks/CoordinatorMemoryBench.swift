import Foundation
import Logging
import TesseraCoordinator
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraTensor
import TesseraTesting
import TesseraTransport

/// The coordinator's peak memory with n sites: the real `tessera-coordinator` binary in a
/// process of its own (so its peak RSS is its own), serving a secure-aggregation experiment (the
/// default, active-adversary setting) over mTLS on 127.0.0.1 to n participants that run in this
/// process.
///
/// Secure aggregation keeps one running sum and at most a few partial uploads, so the peak should
/// hardly move between n = 10 and n = 100; the ratio is the figure that matters.
enum CoordinatorMemoryBenchmark {
    struct Run {
        var peakBytes: Int
        var seconds: Double
    }

    /// Runs one experiment of `rounds` rounds with `sites` sites and a logistic-regression model of
    /// `inputs` × `classes`; returns the coordinator's peak RSS.
    static func run(sites: Int, inputs: Int, classes: Int, rounds: Int) async throws -> Run {
        guard
            let binary = Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent(
                "tessera-coordinator"),
            FileManager.default.isExecutableFile(atPath: binary.path)
        else {
            throw BenchmarkError("tessera-coordinator is not built next to this binary (make bench builds it)")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-rss-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }

        let caDirectory = root.appendingPathComponent("ca")
        let ca = try FederationCA.initialize(at: caDirectory, name: "Tessera benchmark CA (throwaway)", validityDays: 2)
        // The coordinator is given the CA's public half only (it refuses a folder with the key).
        let trustDirectory = root.appendingPathComponent("trust")
        try ca.publishTrust(to: trustDirectory)
        let coordinatorIdentity = root.appendingPathComponent("coordinator")
        _ = try ca.issueCoordinator(hosts: ["127.0.0.1"], to: coordinatorIdentity, validityDays: 1)
        let name = "rss-bench"
        let experiment = root.appendingPathComponent("experiment.yaml")
        // The coordinator loads no data: the dataset section only has to be valid.
        try """
        name: \(name)
        seed: 1
        rounds: \(rounds)
        participants: \(sites)
        model: {preset: logistic_regression, inputs: \(inputs), classes: \(classes)}
        dataset: {kind: csv, paths: [sites.csv], label_column: label}
        partitioning: {scheme: iid}
        cohort: {fraction: 1.0, minimum: \(sites)}
        strategy: {name: fedavg}
        local_training: {epochs: 1, batch_size: 2, optimizer: sgd, learning_rate: 0.001}
        secure_aggregation: {enabled: true}
        evaluation: {every: \(rounds)}
        """.write(to: experiment, atomically: true, encoding: .utf8)

        // Each site's identity directory holds its TLS and its signing certificate: the experiment
        // runs the default active-adversary setting.
        var clients: [(ParticipantClient, URL)] = []
        let policy = RuntimeBenchmark.sitePolicy(
            .active, architecture: .logisticRegression(inputs: inputs, classes: classes))
        let agents = try RuntimeBenchmark.agents(
            sites: sites, inputs: inputs, classes: classes, datasetName: name, policy: policy
        ) { site in
            let identity = root.appendingPathComponent(site)
            _ = try ca.issue(site: site, to: identity, validityDays: 1)
            return try ThrowawayPKI.trust(identityDirectory: identity)
        }
        for agent in agents {
            let identity = root.appendingPathComponent(agent.site)
            let client = ParticipantClient(
                agent: agent,
                configuration: .init(backoffBase: .milliseconds(50), backoffCap: .seconds(1), maximumAttempts: 40),
                clock: MonotonicClock(), logger: Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() })
            clients.append((client, identity))
        }

        let process = Process()
        process.executableURL = binary
        // To see where the memory goes: TESSERA_BENCH_COORDINATOR_WRAPPER=/usr/bin/heaptrack.
        if let wrapper = ProcessInfo.processInfo.environment["TESSERA_BENCH_COORDINATOR_WRAPPER"] {
            process.executableURL = URL(fileURLWithPath: wrapper)
            process.arguments = [binary.path]
        }
        process.arguments =
            (process.arguments ?? []) + [
                "--experiment", experiment.path, "--listen", "127.0.0.1:0", "--tls-dir", coordinatorIdentity.path,
                "--trust", trustDirectory.path, "--results", root.appendingPathComponent("results").path,
                "--state", root.appendingPathComponent("state").path,
            ]
        let output = Pipe()
        process.standardOutput = output
        let log = root.appendingPathComponent("coordinator.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func coordinatorLog() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        var stdout = ""
        var port: Int?
        while port == nil {
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else { break }
            stdout += String(decoding: data, as: UTF8.self)
            port = stdout.split(separator: "\n").first { $0.hasPrefix("listening on port ") }
                .flatMap { Int($0.dropFirst("listening on port ".count)) }
        }
        guard let port else { throw BenchmarkError("the coordinator did not start:\n\(coordinatorLog())") }

        let started = ContinuousClock.now
        try await SoakBenchmark.runSites(clients, port: port)
        let elapsed = ContinuousClock.now - started
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        stdout += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0, coordinatorLog().contains("\(rounds) of \(rounds) rounds completed")
        else {
            throw BenchmarkError(
                "the coordinator did not complete \(rounds) rounds with \(sites) sites:\n\(coordinatorLog())")
        }
        guard
            let peak = stdout.split(separator: "\n").first(where: { $0.hasPrefix("peak resident bytes ") })
                .flatMap({ Int($0.dropFirst("peak resident bytes ".count)) })
        else {
            throw BenchmarkError("the coordinator did not report its peak memory (stdout: \(stdout))")
        }
        return Run(
            peakBytes: peak,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
}
