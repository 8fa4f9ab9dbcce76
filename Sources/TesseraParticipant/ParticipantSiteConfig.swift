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
/// connection:                    # optional: how the session is kept (every key optional, in seconds;
///   backoff_cap: 60              #   see SiteConnectionSettings)
/// privacy_ledger: privacy-ledger.json  # optional (this default): the ε this site spent, per experiment
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
    /// How the session is kept: the `connection:` section, with
    /// ``SiteConnectionSettings``' defaults for every key it does not write.
    public var connection = SiteConnectionSettings()
    /// The site's privacy ledger: every private round it trained in, per experiment
    /// (`privacy_ledger:`, default `privacy-ledger.json` beside the site file). It must outlive
    /// the process: a site that forgot its spending would spend its budget again.
    public var privacyLedger: URL?

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
    var connection: SiteConnectionSettings
    var privacyLedger: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case coordinator, identity, certificate
        case privateKey = "private_key"
        case ca, datasets, policy, connection
        case privacyLedger = "privacy_ledger"
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
        connection =
            try fields.decodeIfPresent(SiteConnectionSettings.self, forKey: .connection)
            ?? SiteConnectionSettings()
        privacyLedger = try fields.decodeIfPresent(String.self, forKey: .privacyLedger)
        if let privacyLedger, privacyLedger.isEmpty {
            throw ConfigError(
                .invalidValue, at: .privacyLedger, in: fields,
                "is empty; omit it for privacy-ledger.json beside this file")
        }
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
            datasets: entries, policy: policy, connection: connection,
            privacyLedger: resolve(privacyLedger ?? "privacy-ledger.json"))
    }
}

/// The `connection:` section of a site file: how `tessera-participant` keeps its session with
/// the coordinator. Every key is optional and in seconds (`missed_heartbeats` is a count); the
/// defaults are ``ParticipantClient/Configuration``'s.
///
/// | key | default | accepted | what it does |
/// |---|---|---|---|
/// | `backoff_base` | 0.5 | (0, 3600] | the first reconnection delay's ceiling, doubled after each failed attempt (full jitter) |
/// | `backoff_cap` | 30 | [`backoff_base`, 86400] | the ceiling never exceeds this |
/// | `missed_heartbeats` | 3 | 1 to 100 | the coordinator is taken for gone after this many of its heartbeat intervals without a message |
/// | `welcome_timeout` | 30 | [1, 3600] | how long to wait for the Welcome after opening a session |
/// | `keepalive_interval` | 60 | 0 (off) or [5, 86400] | HTTP/2 PING after this long without a frame (the coordinator refuses pings more often than every 5 s) |
/// | `keepalive_timeout` | 20 | [1, 3600] | how long a PING may go unanswered before the connection is closed |
public struct SiteConnectionSettings: Sendable, Hashable {
    public var backoffBase: Duration
    public var backoffCap: Duration
    public var missedHeartbeats: Int
    public var welcomeTimeout: Duration
    /// `nil`: no keepalive PINGs.
    public var keepaliveInterval: Duration?
    public var keepaliveTimeout: Duration

    /// The bounds the keys are checked against, in seconds.
    static let backoffRange: ClosedRange<Double> = 0...3_600
    static let capLimit: Double = 86_400
    static let heartbeatRange = 1...100
    static let timeoutRange: ClosedRange<Double> = 1...3_600
    static let keepaliveRange: ClosedRange<Double> = 5...86_400

    public init(
        backoffBase: Duration? = nil, backoffCap: Duration? = nil, missedHeartbeats: Int? = nil,
        welcomeTimeout: Duration? = nil, keepaliveInterval: Duration?? = nil, keepaliveTimeout: Duration? = nil
    ) {
        let defaults = ParticipantClient.Configuration()
        self.backoffBase = backoffBase ?? defaults.backoffBase
        self.backoffCap = backoffCap ?? defaults.backoffCap
        self.missedHeartbeats = missedHeartbeats ?? defaults.missedCoordinatorHeartbeats
        self.welcomeTimeout = welcomeTimeout ?? defaults.welcomeTimeout
        self.keepaliveInterval = keepaliveInterval ?? defaults.keepaliveInterval
        self.keepaliveTimeout = keepaliveTimeout ?? defaults.keepaliveTimeout
    }

    /// `configuration` with these settings.
    public func applied(to configuration: ParticipantClient.Configuration) -> ParticipantClient.Configuration {
        var configuration = configuration
        configuration.backoffBase = backoffBase
        configuration.backoffCap = backoffCap
        configuration.missedCoordinatorHeartbeats = missedHeartbeats
        configuration.welcomeTimeout = welcomeTimeout
        configuration.keepaliveInterval = keepaliveInterval
        configuration.keepaliveTimeout = keepaliveTimeout
        return configuration
    }
}

extension SiteConnectionSettings: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case backoffBase = "backoff_base"
        case backoffCap = "backoff_cap"
        case missedHeartbeats = "missed_heartbeats"
        case welcomeTimeout = "welcome_timeout"
        case keepaliveInterval = "keepalive_interval"
        case keepaliveTimeout = "keepalive_timeout"
    }

    public init(from decoder: any Decoder) throws {
        let fields = try decoder.strictContainer(keyedBy: CodingKeys.self)
        func seconds(_ key: CodingKeys, _ valid: (Double) -> Bool, _ accepted: String) throws -> Duration? {
            guard let value = try fields.decodeIfPresent(Double.self, forKey: key) else { return nil }
            guard value.isFinite, valid(value) else {
                throw ConfigError(.invalidValue, at: key, in: fields, "must be \(accepted) seconds, got \(value)")
            }
            return .milliseconds(Int64((value * 1_000).rounded()))
        }
        let base = try seconds(.backoffBase, { $0 > 0 && Self.backoffRange.contains($0) }, "in (0, 3600]")
        let cap = try seconds(.backoffCap, { $0 > 0 && $0 <= Self.capLimit }, "in (0, 86400]")
        let missed = try fields.decodeIfPresent(Int.self, forKey: .missedHeartbeats)
        if let missed, !Self.heartbeatRange.contains(missed) {
            throw ConfigError(
                .invalidValue, at: CodingKeys.missedHeartbeats, in: fields, "must be 1 to 100, got \(missed)")
        }
        let welcome = try seconds(.welcomeTimeout, Self.timeoutRange.contains, "in [1, 3600]")
        let keepalive = try seconds(
            .keepaliveInterval, { $0 == 0 || Self.keepaliveRange.contains($0) },
            "0 (no keepalive) or in [5, 86400] (the coordinator refuses pings more often than every 5 s)")
        let keepaliveTimeout = try seconds(.keepaliveTimeout, Self.timeoutRange.contains, "in [1, 3600]")
        self.init(
            backoffBase: base, backoffCap: cap, missedHeartbeats: missed, welcomeTimeout: welcome,
            keepaliveInterval: keepalive.map { $0 == .zero ? nil : $0 }, keepaliveTimeout: keepaliveTimeout)
        guard backoffCap >= backoffBase else {
            let key: CodingKeys = cap == nil ? .backoffBase : .backoffCap
            throw ConfigError(
                .conflict, at: key, in: fields,
                "backoff_cap (\(backoffCap)) must be at least backoff_base (\(backoffBase))")
        }
    }
}
