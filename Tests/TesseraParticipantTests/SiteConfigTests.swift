import Foundation
import Testing
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraTesting
import TesseraTransport

/// A site operator's file is checked before anything connects, with errors that say what to fix.
@Suite struct SiteConfigTests {
    struct Site {
        let root: URL
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-site-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            _ = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("identity"))
            try "x1,x2,outcome\n0.1,0.2,1\n-0.3,0.1,0\n0.5,-0.2,1\n-0.1,-0.4,0\n0.2,0.3,1\n"
                .write(to: root.appendingPathComponent("data.csv"), atomically: true, encoding: .utf8)
        }

        func config(_ yaml: String) throws -> ParticipantSiteConfig {
            try ParticipantSiteConfig.parse(yaml, source: "site.yaml", baseDirectory: root)
        }
    }

    static let valid = """
        coordinator: 127.0.0.1:7070   # the coordinator
        identity: identity
        datasets:
          clinical-risk:
            path: data.csv
            label_column: outcome
            test_fraction: 0.2
        """

    @Test func aValidFileLoadsItsDataAndTakesTheSiteNameFromTheCertificate() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(Self.valid)
        #expect(config.coordinator == Endpoint(host: "127.0.0.1", port: 7070))
        #expect(config.site == "hospital-a")
        let data = try config.loadData()
        let local = try #require(data["clinical-risk"])
        #expect(local.train.count + (local.test?.count ?? 0) == 5)
    }

    @Test(arguments: [
        ("coordinator: nowhere\nidentity: identity\ndatasets:\n  d:\n    path: data.csv\n    label_column: outcome\n", "HOST:PORT"),
        ("coordinator: 127.0.0.1:1\nidentity: missing\ndatasets:\n  d:\n    path: data.csv\n    label_column: outcome\n", "does not exist"),
        ("coordinator: 127.0.0.1:1\nidentity: identity\ncolour: blue\ndatasets:\n  d:\n    path: data.csv\n    label_column: outcome\n", "colour"),
        ("coordinator: 127.0.0.1:1\nidentity: identity\ndatasets:\n  d:\n    path: data.csv\n", "label_column"),
        ("coordinator: 127.0.0.1:1\nidentity: identity\ndatasets:\n  d:\n    path: data.csv\n    label_column: outcome\n    test_fraction: 2\n", "test_fraction"),
    ])
    func mistakesAreNamed(yaml: String, mentions: String) throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect {
            try site.config(yaml)
        } throws: { error in
            "\(error)".contains(mentions)
        }
    }

    @Test func unusableDataNamesTheDatasetTheFileAndTheColumn() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(Self.valid.replacingOccurrences(of: "label_column: outcome", with: "label_column: result"))
        #expect {
            try config.loadData()
        } throws: { error in
            let text = "\(error)"
            return text.contains("clinical-risk") && text.contains("data.csv") && text.contains("result")
        }
    }
}
