import Foundation
import Logging
import Synchronization
import TesseraCoordinator
import TesseraCrypto
import TesseraFederation
import TesseraPKI
import TesseraSimulation
import TesseraSupport
import TesseraTesting
import TesseraTransport
import Testing

/// What the logs of a secure run may say: nothing secret and nothing of a site's data.
@Suite struct LogHygieneTests {
    /// Every line, as JSON, of every logger of the run (coordinator and sites, at debug level).
    final class Capture: Sendable {
        private let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }

        func logger(_ label: String) -> Logger {
            var logger = Logger(label: label) { label in
                JSONLogHandler(
                    label: label,
                    sink: JSONLogHandler.Sink { [self] data in
                        lines.withLock { $0.append(String(decoding: data, as: UTF8.self)) }
                    })
            }
            logger.logLevel = .trace
            return logger
        }
    }

    @Test func aRecordIsOneLineOfJSONWhateverItsMessageHolds() throws {
        let capture = Capture()
        var logger = capture.logger("tessera.coordinator")
        logger[metadataKey: "experiment"] = "study"
        logger.warning(
            "site said \"hi\"\nand left", metadata: ["site": "site-1", "message": "forged", "round": "4"])
        let lines = capture.all
        #expect(lines.count == 1 && lines[0].hasSuffix("\n"))
        #expect(lines[0].dropLast().contains("\n") == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: String])
        // Metadata cannot overwrite the reserved fields.
        #expect(object["message"] == "site said \"hi\"\nand left")
        #expect(object["level"] == "warning" && object["label"] == "tessera.coordinator")
        #expect(object["experiment"] == "study" && object["site"] == "site-1" && object["round"] == "4")
        let timestamp = try #require(object["timestamp"])
        #expect(timestamp.hasSuffix("Z") && timestamp.contains("."), "\(timestamp)")
    }

    @Test func aSecureRunLogsNoKeyMaterialAndNoUpdate() async throws {
        let prepared = try PreparedExperiment(
            yaml: syntheticYAML(name: "log-hygiene", participants: 4, rounds: 2, secure: true, evaluateEvery: 2))
        // Signing keys whose secrets the test knows, from a federation CA of its own.
        let authority = try EphemeralFederationCA()
        var secrets: [[UInt8]] = []
        // A distinctive update: its values must never appear in a log line.
        let parameterCount = prepared.initialModel.count
        let update = (0..<parameterCount).map { Float(0.012_345_6) + Float($0) * 1e-7 }
        let agents = try prepared.data.sites.map { site in
            let now = Date()
            let credential = try authority.issueSigningCredential(
                site: site.name, notValidBefore: now - 86_400, notValidAfter: now + 86_400)
            secrets.append(credential.ed25519Seed)
            return ParticipantAgent(
                site: site.name, data: ["data": site.data], policy: prepared.config.sitePolicy,
                signer: SiteSigner(
                    key: try Ed25519PrivateKey(seed: credential.ed25519Seed), certificate: credential.certificateDER),
                credentialVerifier: authority.signingValidator(), simulationSeed: 3,
                trainingOverride: { _, _ in TrainingOutcome(delta: update, sampleCount: 10, loss: 0.5, steps: 1) })
        }
        let capture = Capture()
        var configuration = CoordinatorService.Configuration()
        configuration.signingVerifier = authority.signingValidator()
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: agents, configuration: configuration, logger: capture.logger("tessera.test"))
        #expect(outcome.completedRounds == 2, "\(outcome.records.map { $0.failureReason ?? "ok" })")

        let lines = capture.all
        #expect(lines.count > 20, "the run logged \(lines.count) lines")
        // Every line is one JSON object with the four reserved fields.
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["timestamp"] != nil && object?["level"] != nil && object?["message"] != nil, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""experiment":"log-hygiene""#) && $0.contains(#""round":"#) })
        let text = lines.joined()
        for secret in secrets {
            #expect(!text.contains(Hex.encode(secret)), "a signing key's seed is in the logs (hex)")
            #expect(!text.contains(Data(secret).base64EncodedString()), "a signing key's seed is in the logs (base64)")
        }
        for value in update.prefix(8) {
            #expect(!text.contains(String(describing: value)), "an update value (\(value)) is in the logs")
        }
        // No vector is ever dumped: no run of 16 numbers in a row.
        let vector = try Regex(#"(-?\d+(\.\d+)?,\s*){15}-?\d+"#)
        #expect(text.firstMatch(of: vector) == nil, "a vector of numbers is in the logs")
    }
}
