import Foundation
import TesseraPKI
import TesseraParticipant
import TesseraTesting
import TesseraTransport
import Testing

/// The real `tessera-coordinator` and `tessera-participant` binaries on loopback with a fresh
/// PKI: an experiment file, three site files with CSV data, and the results at the end.
@Suite struct ExecutablesTests {
    @Test func coordinatorAndThreeParticipantBinariesCompleteAnExperiment() async throws {
        let coordinatorBinary = try #require(
            ProcessSupport.binary("tessera-coordinator"), "build the executables first (swift build)")
        let participantBinary = try #require(ProcessSupport.binary("tessera-participant"))
        let root = try ProcessSupport.temporaryRoot("tessera-exec")
        defer { try? FileManager.default.removeItem(at: root) }

        let sites = ["hospital-a", "hospital-b", "hospital-c"]
        let experiment = try ProcessSupport.prepareFederation(
            at: root, name: "loopback", seed: 5, rounds: 3, sites: sites, minimum: 3, evaluateEvery: 3, csvSeed: 1)

        let results = root.appendingPathComponent("results")
        let coordinatorLog = root.appendingPathComponent("coordinator.log")
        let (coordinatorProcess, port) = try ProcessSupport.startCoordinator(
            binary: coordinatorBinary, experiment: experiment, tlsDirectory: root.appendingPathComponent("coordinator"),
            trustDirectory: root.appendingPathComponent("trust"), results: results, log: coordinatorLog)
        let coordinator = coordinatorProcess.process
        defer { coordinatorProcess.stop() }
        let bound = try #require(port, "coordinator did not report its port: \(coordinatorProcess.text)")

        var participants: [LoggedProcess] = []
        for site in sites {
            let siteFile = root.appendingPathComponent("\(site).yaml")
            try ProcessSupport.writeSiteFile(to: siteFile, site: site, coordinatorPort: bound, experiment: "loopback")
            let participant = try LoggedProcess(
                name: site, executable: participantBinary, arguments: ["--config", siteFile.path, "--once"],
                log: root.appendingPathComponent("\(site).log"),
                environment: [ParticipantFailpoint.environmentVariable: nil])
            participants.append(participant)
        }
        defer { for participant in participants { participant.stop() } }

        _ = await coordinatorProcess.waitForExit(within: 120)
        let coordinatorText = (try? String(contentsOf: coordinatorLog, encoding: .utf8)) ?? ""
        try #require(!coordinator.isRunning, "coordinator still running:\n\(coordinatorText)")
        #expect(coordinator.terminationStatus == 0, "\(coordinatorText)")
        #expect(coordinatorText.contains("round 3: completed"), "\(coordinatorText)")
        for name in ["rounds.csv", "results.json", "report.html", "model.safetensors"] {
            #expect(
                FileManager.default.fileExists(atPath: results.appendingPathComponent(name).path), "\(name) missing")
        }
        for (site, participant) in zip(sites, participants) {
            _ = await participant.waitForExit(within: 20)
            let process = participant.process
            let log = (try? String(contentsOf: root.appendingPathComponent("\(site).log"), encoding: .utf8)) ?? ""
            try #require(!process.isRunning, "\(site) still running:\n\(log)")
            #expect(process.terminationStatus == 0, "\(site):\n\(log)")
            #expect(log.contains("joined the federation as \(site)"), "\(site):\n\(log)")
            #expect(log.contains("masked update sent"), "\(site):\n\(log)")
        }
    }

    @Test func sigtermStopsTheCoordinatorGracefullyAndKeepsWhatItHas() async throws {
        let coordinatorBinary = try #require(
            ProcessSupport.binary("tessera-coordinator"), "build the executables first (swift build)")
        let root = try ProcessSupport.temporaryRoot("tessera-sigterm")
        defer { try? FileManager.default.removeItem(at: root) }
        let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
        try ca.publishTrust(to: root.appendingPathComponent("trust"))
        _ = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
        let experiment = root.appendingPathComponent("experiment.yaml")
        try """
        name: waiting
        rounds: 2
        participants: 3
        model: {preset: logistic_regression, inputs: 4, classes: 2}
        dataset: {kind: csv, paths: [a.csv, b.csv, c.csv], label_column: label}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: 3}
        secure_aggregation: {enabled: true}
        """.write(to: experiment, atomically: true, encoding: .utf8)
        let results = root.appendingPathComponent("results")
        let log = root.appendingPathComponent("coordinator.log")
        let (coordinator, port) = try ProcessSupport.startCoordinator(
            binary: coordinatorBinary, experiment: experiment, tlsDirectory: root.appendingPathComponent("coordinator"),
            trustDirectory: root.appendingPathComponent("trust"), results: results, log: log)
        let process = coordinator.process
        defer { if process.isRunning { process.interrupt() } }
        // Wait until it listens (nobody will join: the experiment waits for three sites).
        #expect(port != nil, "\(coordinator.text)")
        process.terminate()  // SIGTERM
        _ = await coordinator.waitForExit(within: 20)
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(!process.isRunning, "still running after SIGTERM:\n\(text)")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(text)")
        #expect(text.contains("0 of 2 rounds completed"), "\(text)")
        #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent("model.safetensors").path))
    }

    @Test func printPolicyShowsTheEffectivePolicyAndExitsWithoutConnecting() async throws {
        let participantBinary = try #require(
            ProcessSupport.binary("tessera-participant"), "build the executables first (swift build)")
        let root = try ProcessSupport.temporaryRoot("tessera-print-policy")
        defer { try? FileManager.default.removeItem(at: root) }
        // Nothing listens on the coordinator's port and no identity exists: printing needs neither.
        let siteFile = root.appendingPathComponent("site.yaml")
        try """
        coordinator: 127.0.0.1:9
        identity: absent
        datasets:
          quickstart: {path: absent.csv, label_column: label}
        policy:
          minimum_cohort: 5
          max_corruption_rate: 0.2
        """.write(to: siteFile, atomically: true, encoding: .utf8)

        func run(_ arguments: [String]) async throws -> (status: Int32, output: String, log: String) {
            let process = try LoggedProcess(
                name: "print-policy", executable: participantBinary, arguments: arguments,
                log: root.appendingPathComponent("print-policy.log"), capturesOutput: true)
            try #require(await process.waitForExit(within: 60), "did not exit: \(process.text)")
            return (process.process.terminationStatus, process.output, process.text)
        }

        let fromFile = try await run(["--print-policy", "--config", siteFile.path])
        #expect(fromFile.status == 0, "\(fromFile.log)")
        #expect(fromFile.output.hasPrefix("# the site policy of \(siteFile.path)"), "\(fromFile.output)")
        #expect(fromFile.output.contains("  minimum_cohort: 5 "), "\(fromFile.output)")
        #expect(fromFile.output.contains("# set; default 3"), "\(fromFile.output)")
        #expect(fromFile.output.contains("  max_corruption_rate: 0.2 "), "\(fromFile.output)")
        #expect(fromFile.output.contains("  require_secure_aggregation: true "), "\(fromFile.output)")
        #expect(!fromFile.log.contains("connecting"), "\(fromFile.log)")

        let defaults = try await run(["--print-policy"])
        #expect(defaults.status == 0, "\(defaults.log)")
        #expect(defaults.output.hasPrefix("# the default site policy (no --config given)\npolicy:\n"))
        #expect(!defaults.output.contains("# set"), "\(defaults.output)")

        // A policy value out of range is refused with its location, and the exit status says so.
        try
            "coordinator: 127.0.0.1:9\nidentity: absent\ndatasets: {q: {path: a.csv, label_column: l}}\npolicy:\n  max_epochs: 0\n"
            .write(to: siteFile, atomically: true, encoding: .utf8)
        let invalid = try await run(["--print-policy", "--config", siteFile.path])
        #expect(invalid.status != 0)
        #expect(
            invalid.log.contains("site.yaml:5:15: policy.max_epochs: must be a positive integer, got 0"),
            "\(invalid.log)")

        // Without --print-policy the site file stays required.
        let missing = try await run([])
        #expect(missing.status != 0)
        #expect(missing.log.contains("--config"), "\(missing.log)")
    }
}
