public import Foundation
import TesseraData
public import TesseraFederation
import TesseraPKI
public import TesseraTransport

/// A site's configuration file (`tessera-participant --config site.yaml`):
///
/// ```yaml
/// coordinator: coordinator.example.org:7070
/// identity: ../pki/site-1        # cert.pem, key.pem, ca.pem; or give the three paths:
/// # certificate: cert.pem
/// # private_key: key.pem
/// # ca: ca.pem
/// datasets:
///   clinical-risk:               # the experiment's name
///     path: data/site-1.csv
///     label_column: outcome
///     test_fraction: 0.2         # optional (default 0.2)
///     standardise: true          # optional (default true)
///     classes: 2                 # optional (default: inferred from the labels)
/// policy:                        # optional: what this site accepts (every key optional, see SitePolicy)
///   minimum_cohort: 5
///   max_corruption_rate: 0.2
/// ```
///
/// Relative paths are resolved against the file's directory. The file goes through the
/// experiment file's strict decoder (``ConfigDocument``): unknown keys are refused, and every
/// error reads `site.yaml:LINE:COLUMN: path: message`.
public struct ParticipantSiteConfig: Sendable {
    public struct DatasetEntry: Sendable, Hashable {
        public var path: URL
        public var labelColumn: String
        public var testFraction: Double = 0.2
        public var standardise: Bool = true
        public var classes: Int?
    }

    public var coordinator: Endpoint
    public var certificate: URL
    public var privateKey: URL
    public var caCertificate: URL
    /// The site name in the certificate (the coordinator reads the same name from the handshake).
    public var site: String
    public var datasets: [String: DatasetEntry]
    /// What this site accepts whatever the coordinator asks: the `policy:` section, with
    /// ``SitePolicy``'s defaults for every key it does not write.
    public var policy: SitePolicy

    public static func load(from url: URL) throws(TesseraRuntimeError) -> ParticipantSiteConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            let problem = ConfigError(
                .unreadableFile, path: "", "cannot read the site file: \(error.localizedDescription)", file: url.path)
            throw TesseraRuntimeError(.invalidConfiguration, problem.description)
        }
        return try parse(text, source: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Decodes and checks a site file. `source` names it in errors; relative paths resolve
    /// against `baseDirectory`. Errors are ``TesseraRuntimeError/Code-swift.struct/invalidConfiguration``
    /// whose message is the located ``ConfigError``.
    public static func parse(
        _ text: String, source: String, baseDirectory: URL
    ) throws(TesseraRuntimeError) -> ParticipantSiteConfig {
        do throws(ConfigError) {
            return try ConfigDocument.decode(SiteFile.self, yaml: text, source: source) { file in
                try file.resolved(against: baseDirectory)
            }
        } catch {
            throw TesseraRuntimeError(.invalidConfiguration, error.description)
        }
    }

    /// The effective policy of a site file, for `tessera-participant --print-policy`. The whole
    /// file is decoded and checked as ``parse(_:source:baseDirectory:)`` does, except for what
    /// needs the file system (the identity files), so a policy can be reviewed away from the site.
    public static func loadPolicy(from url: URL) throws(TesseraRuntimeError) -> SitePolicy {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            let problem = ConfigError(
                .unreadableFile, path: "", "cannot read the site file: \(error.localizedDescription)", file: url.path)
            throw TesseraRuntimeError(.invalidConfiguration, problem.description)
        }
        return try parsePolicy(text, source: url.path)
    }

    /// ``loadPolicy(from:)`` from the file's text.
    public static func parsePolicy(_ text: String, source: String) throws(TesseraRuntimeError) -> SitePolicy {
        do throws(ConfigError) {
            return try ConfigDocument.decode(SiteFile.self, yaml: text, source: source) { $0.policy }
        } catch {
            throw TesseraRuntimeError(.invalidConfiguration, error.description)
        }
    }

    /// Loads and checks every dataset (training split, held-out split, standardisation fitted on
    /// the training split only). Errors name the dataset and the file.
    public func loadData(seed: UInt64 = 0) throws(TesseraRuntimeError) -> [String: LocalData] {
        var result: [String: LocalData] = [:]
        for (name, entry) in datasets {
            do {
                let all = try CSVLoader.load(
                    entry.path, options: CSVOptions(labelColumn: entry.labelColumn, classCount: entry.classes))
                guard all.count >= 2 else {
                    throw TesseraRuntimeError(.invalidConfiguration, "it has \(all.count) rows; at least 2 are needed")
                }
                result[name] = try LocalData(
                    splitting: all, testFraction: entry.testFraction, standardise: entry.standardise, seed: seed)
            } catch {
                throw TesseraRuntimeError(
                    .invalidConfiguration,
                    "dataset \"\(name)\" (\(entry.path.path), label column \"\(entry.labelColumn)\") is unusable",
                    cause: error)
            }
        }
        return result
    }
}

/// A site file as written. Decoding checks its keys, types and ranges; ``resolved(against:)``
/// then checks what needs the file system (the identity files and the certificate's site name).
private struct SiteFile: Decodable {
    struct Dataset: Decodable {
        var path: String
        var labelColumn: String
        /// `nil` keeps ``ParticipantSiteConfig/DatasetEntry``'s default.
        var testFraction: Double?
        var standardise: Bool?
        var classes: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case path
            case labelColumn = "label_column"
            case testFraction = "test_fraction"
            case standardise, classes
        }

        init(from decoder: any Decoder) throws {
            let fields = try decoder.strictContainer(keyedBy: CodingKeys.self)
            guard let path = try fields.decodeIfPresent(String.self, forKey: .path) else {
                throw ConfigError(.missingValue, at: .path, in: fields, "required: the CSV file of this dataset")
            }
            guard let labelColumn = try fields.decodeIfPresent(String.self, forKey: .labelColumn) else {
                throw ConfigError(
                    .missingValue, at: .labelColumn, in: fields, "required: the CSV column holding the labels")
            }
            self.path = path
            self.labelColumn = labelColumn
            testFraction = try fields.decodeIfPresent(Double.self, forKey: .testFraction)
            if let testFraction, !(testFraction >= 0 && testFraction < 1) {
                throw ConfigError(
                    .invalidValue, at: .testFraction, in: fields, "must lie in [0, 1), got \(testFraction)")
            }
            standardise = try fields.decodeIfPresent(Bool.self, forKey: .standardise)
            classes = try fields.decodeIfPresent(Int.self, forKey: .classes)
            if let classes, classes < 2 {
                throw ConfigError(.invalidValue, at: .classes, in: fields, "must be at least 2, got \(classes)")
            }
        }
    }

    var coordinator: Endpoint
    var identity: String?
    var certificate: String?
    var privateKey: String?
    var ca: String?
    var datasets: [String: Dataset]
    var policy: SitePolicy

    enum CodingKeys: String, CodingKey, CaseIterable {
        case coordinator, identity, certificate
        case privateKey = "private_key"
        case ca, datasets, policy
    }

    init(from decoder: any Decoder) throws {
        let fields = try decoder.strictContainer(keyedBy: CodingKeys.self)
        guard let address = try fields.decodeIfPresent(String.self, forKey: .coordinator) else {
            throw ConfigError(
                .missingValue, at: .coordinator, in: fields, "required: the coordinator's address as HOST:PORT")
        }
        do throws(TesseraRuntimeError) {
            coordinator = try Endpoint(parsing: address)
        } catch {
            throw ConfigError(.invalidValue, at: .coordinator, in: fields, error.message)
        }
        identity = try fields.decodeIfPresent(String.self, forKey: .identity)
        certificate = try fields.decodeIfPresent(String.self, forKey: .certificate)
        privateKey = try fields.decodeIfPresent(String.self, forKey: .privateKey)
        ca = try fields.decodeIfPresent(String.self, forKey: .ca)
        guard let datasets = try fields.decodeIfPresent([String: Dataset].self, forKey: .datasets), !datasets.isEmpty
        else {
            throw ConfigError(
                .missingValue, at: .datasets, in: fields,
                "required: a mapping from each experiment's name to {path, label_column}")
        }
        self.datasets = datasets
        // An empty `policy:` is the defaults, like an absent one.
        policy = try fields.decodeIfPresent(SitePolicy.self, forKey: .policy) ?? SitePolicy()
    }

    /// The configuration with every path resolved against `base`. The identity files must
    /// exist, and the certificate must name a site; errors point at the key that gave the file.
    func resolved(against base: URL) throws(ConfigError) -> ParticipantSiteConfig {
        func resolve(_ path: String) -> URL {
            path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
        }
        let directory = identity.map(resolve)
        // A file given by its own key overrides the one in the identity directory.
        func file(
            _ key: CodingKeys, _ given: String?, inIdentity name: String
        ) throws(ConfigError) -> (url: URL, key: String) {
            let found: (url: URL, key: String)
            if let given {
                found = (resolve(given), key.rawValue)
            } else if let directory {
                found = (directory.appendingPathComponent(name), CodingKeys.identity.rawValue)
            } else {
                // With no identity at all, ask for the shorthand; with some of the files, name the missing one.
                let partial = self.certificate != nil || self.privateKey != nil || self.ca != nil
                throw ConfigError(
                    .missingValue, path: partial ? key.rawValue : CodingKeys.identity.rawValue,
                    "required: give identity: DIR (holding cert.pem, key.pem and ca.pem), or certificate, private_key and ca"
                )
            }
            guard FileManager.default.fileExists(atPath: found.url.path) else {
                throw ConfigError(.invalidValue, path: found.key, "\(found.url.path) does not exist")
            }
            return found
        }
        let certificateFile = try file(.certificate, certificate, inIdentity: "cert.pem")
        let keyFile = try file(.privateKey, privateKey, inIdentity: "key.pem")
        let caFile = try file(.ca, ca, inIdentity: "ca.pem")
        let site: String
        do {
            site = try SiteIdentity.siteName(of: try PEMFile.loadCertificate(from: certificateFile.url))
        } catch {
            throw ConfigError(
                .invalidValue, path: certificateFile.key,
                "\(certificateFile.url.path) is not a site certificate of the federation: \(error)")
        }
        var entries: [String: ParticipantSiteConfig.DatasetEntry] = [:]
        for (name, dataset) in datasets {
            var entry = ParticipantSiteConfig.DatasetEntry(
                path: resolve(dataset.path), labelColumn: dataset.labelColumn)
            if let testFraction = dataset.testFraction { entry.testFraction = testFraction }
            if let standardise = dataset.standardise { entry.standardise = standardise }
            entry.classes = dataset.classes
            entries[name] = entry
        }
        return ParticipantSiteConfig(
            coordinator: coordinator, certificate: certificateFile.url, privateKey: keyFile.url,
            caCertificate: caFile.url, site: site,
            datasets: entries, policy: policy)
    }
}
