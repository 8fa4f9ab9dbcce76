import Foundation
import TesseraPKI
import Testing

/// The researcher API end to end: the real `tessera-coordinator` with `--api-listen`, and the
/// real `tessera submit` / `tessera experiments` with a researcher's and a site's certificate.
@Suite struct ResearcherAPITests {
    @Test("A researcher submits over mTLS and the coordinator queues it; a site's certificate is refused")
    func submitOverMutualTLS() async throws {
        let coordinatorBinary = try #require(ProcessSupport.binary("tessera-coordinator"))
        let tessera = try #require(ProcessSupport.binary("tessera"))
        let root = try ProcessSupport.temporaryRoot("tessera-api")
        defer { try? FileManager.default.removeItem(at: root) }
        let experiment = try ProcessSupport.prepareFederation(
            at: root, name: "submitted", seed: 3, rounds: 2, sites: ["hospital-a", "hospital-b", "hospital-c"],
            minimum: 3, evaluateEvery: 1,
            csvSeed: 9)
        let ca = try FederationCA.load(from: root.appendingPathComponent("ca"))
        _ = try ca.issueResearcher("alice", to: root.appendingPathComponent("alice"))

        let output = Pipe()
        let coordinator = try LoggedProcess(
            name: "coordinator", executable: coordinatorBinary,
            arguments: [
                "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--tls-dir",
                root.appendingPathComponent("coordinator").path, "--trust", root.appendingPathComponent("trust").path,
                "--state", root.appendingPathComponent("state").path,
            ],
            log: root.appendingPathComponent("coordinator.log"), standardOutput: output)
        defer { coordinator.stop() }
        let port = ProcessSupport.readPort(from: output, after: "researcher API listening on port ")
        let api = try #require(port, "the coordinator did not report its API port: \(coordinator.text)")

        var step = 0
        func run(_ arguments: [String]) async throws -> (status: Int32, text: String) {
            step += 1
            let process = try LoggedProcess(
                name: "step-\(step)", executable: tessera, arguments: arguments,
                log: root.appendingPathComponent("step-\(step).log"), capturesOutput: true)
            try #require(await process.waitForExit(within: 60), "did not exit: \(process.text)")
            return (process.process.terminationStatus, process.output + process.text)
        }
        let endpoint = "127.0.0.1:\(api)"
        let submitted = try await run([
            "submit", experiment.path, "--coordinator", endpoint, "--identity",
            root.appendingPathComponent("alice").path,
        ])
        #expect(submitted.status == 0, "\(submitted.text)")
        #expect(submitted.text.contains("queued experiment 1 (submitted) as researcher:alice"), "\(submitted.text)")

        let asSite = try await run([
            "experiments", "list", "--coordinator", endpoint, "--identity",
            root.appendingPathComponent("hospital-a").path,
        ])
        #expect(asSite.status != 0, "a site's certificate was served: \(asSite.text)")

        let listed = try await run([
            "experiments", "list", "--coordinator", endpoint, "--identity", root.appendingPathComponent("alice").path,
        ])
        #expect(listed.status == 0, "\(listed.text)")
        #expect(listed.text.contains("researcher:alice"), "\(listed.text)")

        // The coordinator took the experiment up at once (no site is connected, so it waits).
        let started = await coordinator.waitForLog("experiment 1 submitted", within: 30)
        #expect(started, "\(coordinator.text)")
        coordinator.stop()
        #expect(await coordinator.waitForExit(within: 30), "the coordinator did not stop on SIGTERM")
        #expect(coordinator.process.terminationStatus == 0, "\(coordinator.text)")
    }
}
