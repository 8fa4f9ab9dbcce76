import Foundation
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraTesting
import TesseraTransport
import Testing

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

        /// The message `yaml` is refused with, the site's directory written as `ROOT`; `nil` if accepted.
        func refusal(_ yaml: String) -> String? {
            do {
                _ = try ParticipantSiteConfig.parse(yaml, source: "site.yaml", baseDirectory: root)
                return nil
            } catch {
                #expect(error.code == .invalidConfiguration)
                return error.message.replacingOccurrences(of: root.path, with: "ROOT")
            }
        }
    }

    /// A valid file's lines, for tests that change one of them (line numbers in expectations count from 1).
    static let lines = [
        "coordinator: 127.0.0.1:7070",
        "identity: identity",
        "datasets:",
        "  clinical-risk:",
        "    path: data.csv",
        "    label_column: outcome",
    ]

    /// The valid file with `extra` lines after the dataset's keys.
    static func valid(adding extra: String...) -> String { (lines + extra).joined(separator: "\n") + "\n" }

    /// The valid file with line `number` replaced by `replacement` (no line at all when `nil`).
    static func valid(line number: Int, _ replacement: String?) -> String {
        var changed = lines
        if let replacement { changed[number - 1] = replacement } else { changed.remove(at: number - 1) }
        return changed.joined(separator: "\n") + "\n"
    }

    @Test func aValidFileLoadsItsDataAndTakesTheSiteNameFromTheCertificate() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(Self.valid())
        #expect(config.coordinator == Endpoint(host: "127.0.0.1", port: 7070))
        #expect(config.site == "hospital-a")
        let data = try config.loadData()
        let local = try #require(data["clinical-risk"])
        #expect(local.train.count + (local.test?.count ?? 0) == 5)
    }

    @Test func relativePathsResolveAgainstTheFileDirectoryAndAbsoluteOnesStay() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let shorthand = try site.config(Self.valid())
        #expect(shorthand.certificate == site.root.appendingPathComponent("identity/cert.pem"))
        #expect(shorthand.privateKey == site.root.appendingPathComponent("identity/key.pem"))
        #expect(shorthand.caCertificate == site.root.appendingPathComponent("identity/ca.pem"))
        let entry = try #require(shorthand.datasets["clinical-risk"])
        #expect(entry.path == site.root.appendingPathComponent("data.csv") && entry.labelColumn == "outcome")
        #expect(entry.testFraction == 0.2 && entry.standardise && entry.classes == nil)

        // Each of the three files given alone overrides the identity directory's.
        let absolute = site.root.appendingPathComponent("identity/ca.pem").path
        let explicit = try site.config(
            Self.valid(line: 2, "certificate: identity/cert.pem\nprivate_key: ./identity/key.pem\nca: \(absolute)")
                + "    test_fraction: 0.5\n    standardise: false\n    classes: 3\n")
        #expect(explicit.certificate == site.root.appendingPathComponent("identity/cert.pem"))
        #expect(explicit.privateKey == site.root.appendingPathComponent("./identity/key.pem"))
        #expect(explicit.caCertificate == URL(fileURLWithPath: absolute))
        #expect(explicit.site == "hospital-a")
        #expect(explicit.datasets["clinical-risk"]?.testFraction == 0.5)
        #expect(explicit.datasets["clinical-risk"]?.standardise == false)
        #expect(explicit.datasets["clinical-risk"]?.classes == 3)
    }

    @Test func loadReadsTheFileAndResolvesAgainstItsDirectory() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let file = site.root.appendingPathComponent("site.yaml")
        try Self.valid().write(to: file, atomically: true, encoding: .utf8)
        let config = try ParticipantSiteConfig.load(from: file)
        #expect(config.datasets["clinical-risk"]?.path == site.root.appendingPathComponent("data.csv"))
        #expect {
            try ParticipantSiteConfig.load(from: site.root.appendingPathComponent("absent.yaml"))
        } throws: { error in
            (error as? TesseraRuntimeError)?.message.hasPrefix(
                "\(site.root.path)/absent.yaml: cannot read the site file") == true
        }
    }

    // Every refusal reads like an experiment file's: `file:line:column: path: message`.

    @Test func anUnknownTopLevelKeyIsNamedWithTheIntendedOne() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(line: 2, "identity: identity\ncoordinater: 127.0.0.1:1"))
                == "site.yaml:3:1: coordinater: unknown key (did you mean \"coordinator\"?); "
                + "accepted keys: coordinator, identity, certificate, private_key, ca, datasets")
    }

    @Test func anUnknownDatasetKeyIsNamedByItsFullPath() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(line: 6, "    label_colum: outcome"))
                == "site.yaml:6:5: datasets.clinical-risk.label_colum: unknown key (did you mean \"label_column\"?); "
                + "accepted keys: path, label_column, test_fraction, standardise, classes")
    }

    @Test func requiredKeysAreNamedAtTheMappingThatLacksThem() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(line: 1, nil))
                == "site.yaml:1:1: coordinator: required: the coordinator's address as HOST:PORT")
        #expect(
            site.refusal(Self.valid(line: 5, nil))
                == "site.yaml:5:5: datasets.clinical-risk.path: required: the CSV file of this dataset")
        #expect(
            site.refusal("coordinator: 127.0.0.1:1\nidentity: identity\n")
                == "site.yaml:1:1: datasets: required: a mapping from each experiment's name to {path, label_column}")
    }

    @Test func aCoordinatorThatIsNotHostAndPortIsRefusedAtItsValue() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(line: 1, "coordinator: nowhere"))
                == "site.yaml:1:14: coordinator: \"nowhere\" is not HOST:PORT (for example 127.0.0.1:7070).")
    }

    @Test func aMissingIdentityAsksForTheDirectoryOrTheThreeFiles() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let required =
            "required: give identity: DIR (holding cert.pem, key.pem and ca.pem), or certificate, private_key and ca"
        #expect(site.refusal(Self.valid(line: 2, nil)) == "site.yaml:1:1: identity: \(required)")
        // With some of the files, the missing one is named.
        #expect(
            site.refusal(Self.valid(line: 2, "certificate: identity/cert.pem\nprivate_key: identity/key.pem"))
                == "site.yaml:1:1: ca: \(required)")
    }

    @Test func aMissingIdentityFileIsNamedAtTheKeyThatGaveIt() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(line: 2, "identity: elsewhere"))
                == "site.yaml:2:11: identity: ROOT/elsewhere/cert.pem does not exist")
        #expect(
            site.refusal(Self.valid(line: 2, "identity: identity\ncertificate: nothere.pem"))
                == "site.yaml:3:14: certificate: ROOT/nothere.pem does not exist")
        let notACertificate = try #require(
            site.refusal(Self.valid(line: 2, "identity: identity\ncertificate: data.csv")))
        #expect(
            notACertificate.hasPrefix(
                "site.yaml:3:14: certificate: ROOT/data.csv is not a site certificate of the federation"))
    }

    @Test func datasetValuesOutOfRangeOrOfTheWrongTypeAreRefusedAtTheValue() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let at = "site.yaml:7"
        #expect(
            site.refusal(Self.valid(adding: "    test_fraction: 1"))
                == "\(at):20: datasets.clinical-risk.test_fraction: must lie in [0, 1), got 1.0")
        #expect(
            site.refusal(Self.valid(adding: "    test_fraction: -0.1"))
                == "\(at):20: datasets.clinical-risk.test_fraction: must lie in [0, 1), got -0.1")
        #expect(
            site.refusal(Self.valid(adding: "    test_fraction: half"))
                == "\(at):20: datasets.clinical-risk.test_fraction: expected a number, found \"half\"")
        #expect(
            site.refusal(Self.valid(adding: "    classes: 1"))
                == "\(at):14: datasets.clinical-risk.classes: must be at least 2, got 1")
        #expect(
            site.refusal(Self.valid(adding: "    classes: two"))
                == "\(at):14: datasets.clinical-risk.classes: expected an integer, found \"two\"")
        #expect(
            site.refusal(Self.valid(adding: "    standardise: maybe"))
                == "\(at):18: datasets.clinical-risk.standardise: expected true or false, found \"maybe\"")
    }

    @Test func aListWhereAMappingBelongsIsRefused() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let datasetsAsList = "coordinator: 127.0.0.1:1\nidentity: identity\ndatasets:\n  - clinical-risk\n"
        #expect(
            site.refusal(datasetsAsList)
                == "site.yaml:4:3: datasets: expected a mapping of keys to values, found a list")
        let entryAsList =
            "coordinator: 127.0.0.1:1\nidentity: identity\ndatasets:\n  clinical-risk: [data.csv, outcome]\n"
        #expect(
            site.refusal(entryAsList)
                == "site.yaml:4:18: datasets.clinical-risk: expected a mapping of keys to values, found a list")
        #expect(
            site.refusal("- coordinator\n- identity\n")
                == "site.yaml:1:1: expected a mapping of keys to values, found a list")
    }

    @Test func aDuplicatedKeyIsASyntaxErrorWithItsLine() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let message = try #require(site.refusal(Self.valid(line: 2, "identity: identity\ncoordinator: 127.0.0.1:2")))
        #expect(message == "site.yaml:3:1: duplicated key coordinator; give each key once")
        let nested = try #require(site.refusal(Self.valid(adding: "    path: other.csv")))
        #expect(nested == "site.yaml:7:5: duplicated key path; give each key once")
    }

    @Test func invalidYAMLIsRefusedWithItsPosition() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let message = try #require(site.refusal("coordinator: 127.0.0.1:1\ndatasets: {d: {path: a.csv}\n"))
        #expect(message.hasPrefix("site.yaml:3:1: not valid YAML: "), "\(message)")
    }

    @Test func anEmptyFileAsksForTheCoordinatorFirst() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let expected = "site.yaml:1:1: coordinator: required: the coordinator's address as HOST:PORT"
        #expect(site.refusal("") == expected)
        #expect(site.refusal("# nothing yet\n") == expected)
    }

    @Test func unusableDataNamesTheDatasetTheFileAndTheColumn() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(
            Self.valid().replacingOccurrences(of: "label_column: outcome", with: "label_column: result"))
        #expect {
            try config.loadData()
        } throws: { error in
            let text = "\(error)"
            return text.contains("clinical-risk") && text.contains("data.csv") && text.contains("result")
        }
    }
}
