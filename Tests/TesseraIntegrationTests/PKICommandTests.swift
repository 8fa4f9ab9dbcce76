import Foundation
import TesseraPKI
import Testing

/// `tessera pki` as an operator runs it: the CA key stays in `ca-private/`, the coordinator is
/// given `trust/`, and a coordinator pointed at the CA folder refuses to start.
@Suite struct PKICommandTests {
    @Test func pkiLaysOutTheOperatorFoldersAndTheCoordinatorRefusesTheCAFolder() async throws {
        let tessera = try #require(ProcessSupport.binary("tessera"), "build the executables first (swift build)")
        let coordinatorBinary = try #require(ProcessSupport.binary("tessera-coordinator"))
        let root = try ProcessSupport.temporaryRoot("tessera-pki-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        func run(_ name: String, _ binary: URL, _ arguments: [String]) async throws -> LoggedProcess {
            let process = try LoggedProcess(
                name: name, executable: binary, arguments: arguments, log: root.appendingPathComponent("\(name).log"))
            try #require(await process.waitForExit(within: 60), "\(name) did not exit: \(process.text)")
            return process
        }
        let fed = root.appendingPathComponent("fed")
        let folders = OperatorFolders(root: fed)

        let initialized = try await run("init", tessera, ["pki", "init", "--out", fed.path])
        #expect(initialized.process.terminationStatus == 0, "\(initialized.text)")
        let trustFiles = try FileManager.default.contentsOfDirectory(atPath: folders.trustDirectory.path).sorted()
        #expect(trustFiles == ["ca.pem", "revoked.signed"])
        #expect(
            FileManager.default.fileExists(atPath: folders.privateDirectory.appendingPathComponent("ca-key.pem").path))

        let site = root.appendingPathComponent("site-1")
        let issued = try await run(
            "issue", tessera,
            [
                "pki", "issue", "--ca", folders.privateDirectory.path, "--site", "site-1", "--out", site.path, "--days",
                "30",
            ])
        #expect(issued.process.terminationStatus == 0, "\(issued.text)")
        let identity = try IssuedIdentity.load(from: site)
        let lifetime = identity.validUntil.timeIntervalSinceNow
        // Certificates keep whole seconds, so the end may lie up to a second past now + 30 days.
        #expect(lifetime > 29 * 86_400 && lifetime <= 30 * 86_400 + 1, "\(lifetime)")

        // Revoking through the operator folder updates the trust folder the coordinator reads.
        let revoked = try await run("revoke", tessera, ["pki", "revoke", "--ca", fed.path, "--site", "site-1"])
        #expect(revoked.process.terminationStatus == 0, "\(revoked.text)")
        #expect(try TrustFolder.open(folders.trustDirectory).revokedSerials().contains(identity.serial))

        let refused = try await run(
            "coordinator", coordinatorBinary,
            [
                "--experiment", root.appendingPathComponent("unused.yaml").path, "--listen", "127.0.0.1:0",
                "--tls-dir", root.appendingPathComponent("coordinator").path, "--trust", folders.privateDirectory.path,
                "--state", root.appendingPathComponent("state").path,
            ])
        #expect(refused.process.terminationStatus == 1, "\(refused.text)")
        #expect(refused.text.contains("ca-key.pem") && refused.text.contains("tessera pki publish"), "\(refused.text)")
    }

    @Test func pkiIssuesListsAndRevokesAResearcher() async throws {
        let tessera = try #require(ProcessSupport.binary("tessera"), "build the executables first (swift build)")
        let root = try ProcessSupport.temporaryRoot("tessera-pki-researcher")
        defer { try? FileManager.default.removeItem(at: root) }
        var step = 0
        /// Runs `tessera pki ARGUMENTS`; returns its exit status and its standard output and error.
        func run(_ arguments: [String]) async throws -> (status: Int32, text: String) {
            step += 1
            let process = try LoggedProcess(
                name: "step-\(step)", executable: tessera, arguments: ["pki"] + arguments,
                log: root.appendingPathComponent("step-\(step).log"), capturesOutput: true)
            try #require(await process.waitForExit(within: 60), "did not exit: \(process.text)")
            return (process.process.terminationStatus, process.output + process.text)
        }
        let fed = root.appendingPathComponent("fed")
        #expect(try await run(["init", "--out", fed.path]).status == 0)
        let alice = root.appendingPathComponent("alice")
        let issued = try await run(["issue", "--ca", fed.path, "--researcher", "alice", "--out", alice.path])
        #expect(issued.status == 0, "\(issued.text)")
        #expect(issued.text.contains("tessera://researcher/alice"), "\(issued.text)")
        let identity = try IssuedIdentity.load(from: alice)
        #expect(identity.role == .researcher && identity.name == "alice")
        #expect(!FileManager.default.fileExists(atPath: identity.files.signingPrivateKey.path))

        let listed = try await run(["list", "--ca", fed.path])
        #expect(listed.text.contains("alice (researcher)"), "\(listed.text)")

        let both = try await run([
            "issue", "--ca", fed.path, "--researcher", "bob", "--site", "bob", "--out", root.path,
        ])
        #expect(both.status != 0)
        #expect(both.text.contains("exactly one of --site NAME, --coordinator, --researcher NAME"), "\(both.text)")

        let revoked = try await run(["revoke", "--ca", fed.path, "--researcher", "alice"])
        #expect(revoked.status == 0, "\(revoked.text)")
        #expect(revoked.text.contains("(researcher alice)"), "\(revoked.text)")
        let trust = OperatorFolders(root: fed).trustDirectory
        #expect(try TrustFolder.open(trust).revokedSerials().contains(identity.serial))
    }
}
