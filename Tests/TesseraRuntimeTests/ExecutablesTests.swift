import Foundation
import Testing
import TesseraPKI

/// The real `tessera-coordinator` and `tessera-participant` binaries on loopback with a fresh
/// PKI: an experiment file, three site files with CSV data, and the results at the end.
@Suite struct ExecutablesTests {
    /// The built products sit next to the test bundle (or the test executable).
    static var productDirectories: [URL] {
        var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL { directories.insert(executable.deletingLastPathComponent(), at: 0) }
        return directories
    }

    static func binary(_ name: String) -> URL? {
        for directory in productDirectories {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// A CSV whose label is whether x1 + x2 > 0 (learnable by logistic regression).
    static func writeSiteCSV(to url: URL, rows: Int, seed: UInt64) throws {
        var generator = SplitMix(seed: seed)
        var text = "x1,x2,x3,x4,label\n"
        for _ in 0..<rows {
            let x = (0..<4).map { _ in Double.random(in: -1...1, using: &generator) }
            text += x.map { String(format: "%.4f", $0) }.joined(separator: ",") + ",\(x[0] + x[1] > 0 ? 1 : 0)\n"
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func coordinatorAndThreeParticipantBinariesCompleteAnExperiment() async throws {
        let coordinatorBinary = try #require(Self.binary("tessera-coordinator"), "build the executables first (swift build)")
        let participantBinary = try #require(Self.binary("tessera-participant"))
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-exec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }

        let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
        _ = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
        let sites = ["hospital-a", "hospital-b", "hospital-c"]
        for (index, site) in sites.enumerated() {
            _ = try ca.issue(site: site, to: root.appendingPathComponent(site))
            try Self.writeSiteCSV(to: root.appendingPathComponent("\(site).csv"), rows: 150, seed: UInt64(index + 1))
        }
        let experiment = root.appendingPathComponent("experiment.yaml")
        try """
        name: loopback
        seed: 5
        rounds: 3
        participants: 3
        model: {preset: logistic_regression, inputs: 4, classes: 2}
        dataset: {kind: csv, paths: [hospital-a.csv, hospital-b.csv, hospital-c.csv], label_column: label}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: 3}
        strategy: {name: fedavg}
        local_training: {epochs: 2, batch_size: 10, optimizer: sgd, learning_rate: 0.2}
        secure_aggregation: {enabled: true}
        evaluation: {every: 3}
        """.write(to: experiment, atomically: true, encoding: .utf8)

        let results = root.appendingPathComponent("results")
        let coordinator = Process()
        coordinator.executableURL = coordinatorBinary
        coordinator.arguments = [
            "--experiment", experiment.path, "--listen", "127.0.0.1:0", "--tls-dir", root.appendingPathComponent("coordinator").path,
            "--ca", root.appendingPathComponent("ca").path, "--results", results.path,
        ]
        let coordinatorOut = Pipe()
        coordinator.standardOutput = coordinatorOut
        let coordinatorLog = root.appendingPathComponent("coordinator.log")
        FileManager.default.createFile(atPath: coordinatorLog.path, contents: nil)
        coordinator.standardError = try FileHandle(forWritingTo: coordinatorLog)
        try coordinator.run()
        defer { if coordinator.isRunning { coordinator.terminate() } }

        // "listening on port N" on standard output.
        var port: Int?
        var buffer = ""
        while port == nil {
            let data = coordinatorOut.fileHandleForReading.availableData
            guard !data.isEmpty else { break }
            buffer += String(decoding: data, as: UTF8.self)
            if let line = buffer.split(separator: "\n").first(where: { $0.hasPrefix("listening on port ") }) {
                port = Int(line.dropFirst("listening on port ".count))
            }
        }
        let bound = try #require(port, "coordinator did not report its port: \((try? String(contentsOf: coordinatorLog, encoding: .utf8)) ?? "")")

        var participants: [Process] = []
        for site in sites {
            let siteFile = root.appendingPathComponent("\(site).yaml")
            try """
            coordinator: 127.0.0.1:\(bound)
            identity: \(site)
            datasets:
              loopback:
                path: \(site).csv
                label_column: label
            """.write(to: siteFile, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = participantBinary
            process.arguments = ["--config", siteFile.path]
            let log = root.appendingPathComponent("\(site).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            participants.append(process)
        }
        defer { for process in participants where process.isRunning { process.terminate() } }

        let deadline = Date().addingTimeInterval(120)
        while coordinator.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let coordinatorText = (try? String(contentsOf: coordinatorLog, encoding: .utf8)) ?? ""
        #expect(!coordinator.isRunning, "coordinator still running:\n\(coordinatorText)")
        #expect(coordinator.terminationStatus == 0, "\(coordinatorText)")
        #expect(coordinatorText.contains("round 3: completed"), "\(coordinatorText)")
        for name in ["rounds.csv", "results.json", "report.html", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent(name).path), "\(name) missing")
        }
        for (site, process) in zip(sites, participants) {
            let until = Date().addingTimeInterval(20)
            while process.isRunning && Date() < until { try await Task.sleep(for: .milliseconds(100)) }
            let log = (try? String(contentsOf: root.appendingPathComponent("\(site).log"), encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "\(site):\n\(log)")
            #expect(log.contains("joined the federation as \(site)"), "\(site):\n\(log)")
            #expect(log.contains("masked update sent"), "\(site):\n\(log)")
        }
    }

    @Test func sigtermStopsTheCoordinatorGracefullyAndKeepsWhatItHas() async throws {
        let coordinatorBinary = try #require(Self.binary("tessera-coordinator"), "build the executables first (swift build)")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-sigterm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
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
        let process = Process()
        process.executableURL = coordinatorBinary
        process.arguments = [
            "--experiment", experiment.path, "--listen", "127.0.0.1:0", "--tls-dir", root.appendingPathComponent("coordinator").path,
            "--ca", root.appendingPathComponent("ca").path, "--results", results.path,
        ]
        let out = Pipe()
        process.standardOutput = out
        let log = root.appendingPathComponent("coordinator.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        defer { if process.isRunning { process.interrupt() } }
        // Wait until it listens (nobody will join: the experiment waits for three sites).
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.hasPrefix("listening on port "), "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        process.terminate()  // SIGTERM
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(!process.isRunning, "still running after SIGTERM:\n\(text)")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(text)")
        #expect(text.contains("0 of 2 rounds completed"), "\(text)")
        #expect(FileManager.default.fileExists(atPath: results.appendingPathComponent("model.safetensors").path))
    }
}
