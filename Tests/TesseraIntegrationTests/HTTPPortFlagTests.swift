import Foundation
import TesseraTesting
import Testing

/// `--http` and `--dashboard-token-file` on the real binaries: a bad value is refused by the
/// command's validation, before anything starts, with a message naming the flag.
@Suite struct HTTPPortFlagTests {
    func run(_ binary: String, _ arguments: [String]) async throws -> (status: Int32, log: String) {
        let executable = try #require(ProcessSupport.binary(binary), "build the executables first (swift build)")
        let root = try ProcessSupport.temporaryRoot("tessera-http-flag")
        defer { try? FileManager.default.removeItem(at: root) }
        let process = try LoggedProcess(
            name: binary, executable: executable, arguments: arguments, log: root.appendingPathComponent("log"),
            capturesOutput: true)
        try #require(await process.waitForExit(within: 60), "did not exit: \(process.text)")
        return (process.process.terminationStatus, process.text)
    }

    @Test func theCoordinatorRefusesABadHTTPEndpointAndATokenFileWithoutIt() async throws {
        let common = ["--listen", "127.0.0.1:0", "--tls-dir", "absent", "--trust", "absent"]
        let bad = try await run("tessera-coordinator", common + ["--http", "localhost"])
        #expect(bad.status == 64, "\(bad.log)")
        #expect(bad.log.contains("--http: \"localhost\" is not HOST:PORT"), "\(bad.log)")
        let port = try await run("tessera-coordinator", common + ["--http", "127.0.0.1:70000"])
        #expect(port.status == 64, "\(port.log)")
        #expect(port.log.contains("--http: \"127.0.0.1:70000\" is not HOST:PORT"), "\(port.log)")
        let token = try await run("tessera-coordinator", common + ["--dashboard-token-file", "token"])
        #expect(token.status == 64, "\(token.log)")
        #expect(token.log.contains("--dashboard-token-file needs --http"), "\(token.log)")
    }

    @Test func theParticipantRefusesABadHTTPEndpoint() async throws {
        let bad = try await run("tessera-participant", ["--config", "absent.yaml", "--http", ":9465"])
        #expect(bad.status == 64, "\(bad.log)")
        #expect(bad.log.contains("--http: \":9465\" has no host"), "\(bad.log)")
    }
}
