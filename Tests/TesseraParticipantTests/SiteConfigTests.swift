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
                + "accepted keys: coordinator, identity, certificate, private_key, ca, datasets, policy, connection, "
                + "privacy_ledger")
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

    // MARK: The site policy

    @Test func withoutAPolicySectionEveryKeyTakesItsDefault() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(try site.config(Self.valid()).policy == SitePolicy())
        #expect(try site.config(Self.valid(adding: "policy:")).policy == SitePolicy())
        #expect(try site.config(Self.valid(adding: "policy: {}")).policy == SitePolicy())
    }

    @Test func everyPolicyKeyIsRead() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(
            Self.valid(
                adding: "policy:", "  require_secure_aggregation: false",
                "  require_active_adversary_protection: false",
                "  minimum_cohort: 5", "  max_corruption_rate: 0.25", "  max_dropout_rate: 0", "  max_parameters: 1000",
                "  max_layer_width: 64", "  max_epochs: 5", "  max_batch_size: 128", "  max_model_bytes: 4096",
                "  share_metrics: per_site", "  max_evaluations_per_round: 0"))
        #expect(
            config.policy
                == SitePolicy(
                    requireSecureAggregation: false, requireActiveAdversaryProtection: false, minimumCohort: 5,
                    maxCorruptionRate: 0.25, maxDropoutRate: 0, maxParameters: 1000, maxLayerWidth: 64, maxEpochs: 5,
                    maxBatchSize: 128, maxModelBytes: 4096, shareMetrics: .perSite, maxEvaluationsPerRound: 0))
        // A key written alone changes only itself.
        let one = try site.config(Self.valid(adding: "policy:", "  minimum_cohort: 4"))
        #expect(one.policy == SitePolicy(minimumCohort: 4))
    }

    @Test func anUnknownPolicyKeyIsNamedWithTheIntendedOne() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        #expect(
            site.refusal(Self.valid(adding: "policy:", "  minimum_cohrt: 4"))
                == "site.yaml:8:3: policy.minimum_cohrt: unknown key (did you mean \"minimum_cohort\"?); accepted keys: "
                + SitePolicy.Key.allCases.map(\.rawValue).joined(separator: ", "))
    }

    @Test func policyValuesOutOfRangeOrOfTheWrongTypeAreRefusedAtTheValue() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        func refusal(_ line: String) -> String? { site.refusal(Self.valid(adding: "policy:", "  " + line)) }
        #expect(
            refusal("minimum_cohort: 1")
                == "site.yaml:8:19: policy.minimum_cohort: must be at least 2 (a secure sum of one input is that input), "
                + "got 1")
        #expect(
            refusal("max_corruption_rate: 1")
                == "site.yaml:8:24: policy.max_corruption_rate: must lie in [0, 1), got 1.0")
        #expect(
            refusal("max_dropout_rate: -0.5") == "site.yaml:8:21: policy.max_dropout_rate: must lie in [0, 1), got -0.5"
        )
        #expect(refusal("max_epochs: 0") == "site.yaml:8:15: policy.max_epochs: must be a positive integer, got 0")
        #expect(
            refusal("max_model_bytes: -1")
                == "site.yaml:8:20: policy.max_model_bytes: must be a positive integer, got -1")
        #expect(
            refusal("max_evaluations_per_round: -1")
                == "site.yaml:8:30: policy.max_evaluations_per_round: must be 0 (answer none) or more, got -1")
        #expect(
            refusal("share_metrics: everything")
                == "site.yaml:8:18: policy.share_metrics: \"everything\" is not one of aggregate_only, per_site")
        #expect(
            refusal("max_parameters: lots")
                == "site.yaml:8:19: policy.max_parameters: expected an integer, found \"lots\"")
        #expect(
            refusal("require_secure_aggregation: sometimes")
                == "site.yaml:8:31: policy.require_secure_aggregation: expected true or false, found \"sometimes\"")
        #expect(
            site.refusal(Self.valid(adding: "policy: [minimum_cohort]"))
                == "site.yaml:7:9: policy: expected a mapping of keys to values, found a list")
    }

    @Test func thePolicyAloneIsReadWithoutTheIdentityFiles() throws {
        // Reviewable away from the site: the identity directory does not exist here.
        let text = Self.valid(adding: "policy:", "  minimum_cohort: 6", "  share_metrics: per_site")
            .replacingOccurrences(of: "identity: identity", with: "identity: /nowhere")
        #expect(
            try ParticipantSiteConfig.parsePolicy(text, source: "site.yaml")
                == SitePolicy(minimumCohort: 6, shareMetrics: .perSite))
        // The rest of the file is still checked.
        #expect {
            try ParticipantSiteConfig.parsePolicy(text + "coordinater: x\n", source: "site.yaml")
        } throws: { error in
            (error as? TesseraRuntimeError)?.message.hasPrefix("site.yaml:10:1: coordinater: unknown key") == true
        }
    }

    @Test func thePolicyReportMarksEachKeyAsDefaultOrSet() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("site.yaml")
        try Self.valid(adding: "policy:", "  minimum_cohort: 5", "  share_metrics: per_site")
            .write(to: file, atomically: true, encoding: .utf8)
        let report = try ParticipantProgram.policyReport(configFile: file)
        let lines = report.split(separator: "\n").map(String.init)
        #expect(lines.first == "# the site policy of \(file.path) (keys it does not write take their defaults)")
        #expect(lines.dropFirst().first == "policy:")
        #expect(lines.count == 2 + SitePolicy.Key.allCases.count)
        #expect(lines.contains("  minimum_cohort: 5                          # set; default 3"))
        #expect(lines.contains("  share_metrics: per_site                    # set; default aggregate_only"))
        #expect(lines.contains("  require_secure_aggregation: true           # default"))
        // Every key appears, in order, and the report is itself a valid policy section.
        #expect(
            lines.dropFirst(2).map { String($0.drop(while: { $0 == " " }).prefix(while: { $0 != ":" })) }
                == SitePolicy.Key.allCases.map(\.rawValue))
        let reread = try ParticipantSiteConfig.parsePolicy(
            Self.valid() + report.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n", source: "r.yaml")
        #expect(reread == SitePolicy(minimumCohort: 5, shareMetrics: .perSite))

        let defaults = try ParticipantProgram.policyReport(configFile: nil)
        #expect(defaults.hasPrefix("# the default site policy (no --config given)\npolicy:\n"))
        #expect(!defaults.contains("# set"))
    }
}
