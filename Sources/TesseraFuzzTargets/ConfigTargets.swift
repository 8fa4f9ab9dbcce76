import Foundation
import TesseraFederation
import TesseraPKI
import TesseraParticipant

/// The YAML files an operator writes: the experiment file (coordinator) and the site file
/// (participant). They are trusted input, but a typo must give an error, never a crash.
enum ConfigTargets {
    /// Input: the text of an experiment file.
    static func experimentYAML(_ bytes: [UInt8]) -> Int {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let config = try? ExperimentConfig.parse(yaml: text, source: "fuzz.yaml", baseDirectory: "/fuzz") else {
            return 0
        }
        // What the coordinator does next with an accepted file: hash it for the results, and
        // lower it to a plan once the data has named its inputs and classes.
        _ = config.configHash
        guard let architecture = try? config.model.architecture(dataInputs: 8, dataClasses: 3) else { return 1 }
        _ = config.federationPlan(datasetName: "fuzz", architecture: architecture)
        return 1
    }

    /// Input: the text of a site file.
    ///
    /// The identity files resolve against a fixture directory holding a real site certificate,
    /// so an input can get through the whole loader; inputs with a `/` are not resolved, so
    /// that the fuzzer cannot name files outside the fixture (a FIFO or `/dev/zero`).
    static func siteYAML(_ bytes: [UInt8]) -> Int {
        let text = String(decoding: bytes, as: UTF8.self)
        let policy = try? ParticipantSiteConfig.parsePolicy(text, source: "site.yaml")
        if let policy { _ = try? policy.validate() }
        let accepted = policy == nil ? 0 : 1
        guard !text.contains("/"), !text.contains("\\"), let directory = siteFixture else { return accepted }
        guard let config = try? ParticipantSiteConfig.parse(text, source: "site.yaml", baseDirectory: directory) else {
            return accepted
        }
        fuzzExpect(
            config.policy == policy, "the site file's policy reads differently with and without its identity files")
        fuzzExpect(config.site == "fuzz-site", "the site name does not come from the certificate")
        return accepted + 1
    }

    /// `cert.pem`, `key.pem` and `ca.pem` of one site, written once per process (atomically: any
    /// process's files serve every other).
    static let siteFixture: URL? = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-fuzz-site")
        do {
            let ca = try EphemeralFederationCA()
            let certificate = try ca.issueSiteCertificate(
                site: "fuzz-site", notValidBefore: Date() - 86_400, notValidAfter: Date() + 86_400)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try PEMFile.pem(of: certificate).write(
                to: directory.appendingPathComponent("cert.pem"), atomically: true, encoding: .utf8)
            try PEMFile.pem(of: ca.caCertificate).write(
                to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
            try "not read by the loader\n".write(
                to: directory.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
            return directory
        } catch {
            return nil
        }
    }()
}
