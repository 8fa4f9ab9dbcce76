import Foundation
import Yams
import Logging
import ServiceLifecycle
import UnixSignals
import TesseraData
import TesseraFederation
import TesseraPKI
import TesseraSecAgg
import TesseraTransport
import TesseraWire

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
/// ```
///
/// Relative paths are resolved against the file's directory. Unknown keys are refused.
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

    public static func load(from url: URL) throws(TesseraRuntimeError) -> ParticipantSiteConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TesseraRuntimeError(.invalidConfiguration, "cannot read \(url.path)", cause: error)
        }
        return try parse(text, source: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    public static func parse(_ text: String, source: String, baseDirectory: URL) throws(TesseraRuntimeError) -> ParticipantSiteConfig {
        let root = try SiteYAML.parse(text, source: source)
        func fail(_ path: String, _ message: String) -> TesseraRuntimeError {
            TesseraRuntimeError(.invalidConfiguration, "\(source): \(path): \(message)")
        }
        func resolve(_ path: String) -> URL {
            path.hasPrefix("/") ? URL(fileURLWithPath: path) : baseDirectory.appendingPathComponent(path)
        }
        let allowed: Set<String> = ["coordinator", "identity", "certificate", "private_key", "ca", "datasets"]
        for key in root.keys where !allowed.contains(key) {
            throw fail(key, "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
        guard case .scalar(let address)? = root["coordinator"] else { throw fail("coordinator", "required, as HOST:PORT") }
        let coordinator = try Endpoint(parsing: address)
        var certificate: URL?
        var privateKey: URL?
        var ca: URL?
        if case .scalar(let identity)? = root["identity"] {
            let directory = resolve(identity)
            certificate = directory.appendingPathComponent("cert.pem")
            privateKey = directory.appendingPathComponent("key.pem")
            ca = directory.appendingPathComponent("ca.pem")
        }
        if case .scalar(let path)? = root["certificate"] { certificate = resolve(path) }
        if case .scalar(let path)? = root["private_key"] { privateKey = resolve(path) }
        if case .scalar(let path)? = root["ca"] { ca = resolve(path) }
        guard let certificate, let privateKey, let ca else {
            throw fail("identity", "give identity: DIR, or certificate, private_key and ca")
        }
        for (key, file) in [("certificate", certificate), ("private_key", privateKey), ("ca", ca)]
        where !FileManager.default.fileExists(atPath: file.path) {
            throw fail(key, "\(file.path) does not exist")
        }
        let site: String
        do {
            site = try SiteIdentity.siteName(of: try PEMFile.loadCertificate(from: certificate))
        } catch {
            throw fail("certificate", "\(certificate.path) is not a site certificate of the federation: \(error)")
        }
        guard case .mapping(let entries)? = root["datasets"], !entries.isEmpty else {
            throw fail("datasets", "required: dataset name → {path, label_column}")
        }
        var datasets: [String: DatasetEntry] = [:]
        for (name, node) in entries {
            guard case .mapping(let fields) = node else { throw fail("datasets.\(name)", "expected path and label_column") }
            let known: Set<String> = ["path", "label_column", "test_fraction", "standardise", "classes"]
            for key in fields.keys where !known.contains(key) {
                throw fail("datasets.\(name).\(key)", "unknown key; expected one of \(known.sorted().joined(separator: ", "))")
            }
            guard case .scalar(let path)? = fields["path"] else { throw fail("datasets.\(name).path", "required") }
            guard case .scalar(let label)? = fields["label_column"] else { throw fail("datasets.\(name).label_column", "required") }
            var entry = DatasetEntry(path: resolve(path), labelColumn: label)
            if case .scalar(let value)? = fields["test_fraction"] {
                guard let fraction = Double(value), (0..<1).contains(fraction) else {
                    throw fail("datasets.\(name).test_fraction", "\"\(value)\" is not a fraction in [0, 1)")
                }
                entry.testFraction = fraction
            }
            if case .scalar(let value)? = fields["standardise"] {
                guard let flag = Bool(value) else { throw fail("datasets.\(name).standardise", "\"\(value)\" is not true or false") }
                entry.standardise = flag
            }
            if case .scalar(let value)? = fields["classes"] {
                guard let classes = Int(value), classes >= 2 else { throw fail("datasets.\(name).classes", "\"\(value)\" is not a count ≥ 2") }
                entry.classes = classes
            }
            datasets[name] = entry
        }
        return ParticipantSiteConfig(
            coordinator: coordinator, certificate: certificate, privateKey: privateKey, caCertificate: ca, site: site,
            datasets: datasets)
    }

    /// Loads and checks every dataset (training split, held-out split, standardisation fitted on
    /// the training split only). Errors name the dataset and the file.
    public func loadData(seed: UInt64 = 0) throws(TesseraRuntimeError) -> [String: LocalData] {
        var result: [String: LocalData] = [:]
        for (name, entry) in datasets {
            do {
                let all = try CSVLoader.load(entry.path, options: CSVOptions(labelColumn: entry.labelColumn, classCount: entry.classes))
                guard all.count >= 2 else { throw TesseraRuntimeError(.invalidConfiguration, "it has \(all.count) rows; at least 2 are needed") }
                result[name] = try LocalData(
                    splitting: all, testFraction: entry.testFraction, standardise: entry.standardise, seed: seed)
            } catch {
                throw TesseraRuntimeError(
                    .invalidConfiguration, "dataset \"\(name)\" (\(entry.path.path), label column \"\(entry.labelColumn)\") is unusable",
                    cause: error)
            }
        }
        return result
    }
}

/// What `tessera-participant` does: load and check the site's data, then keep a session with
/// the coordinator until it ends the experiment (or SIGTERM/SIGINT).
///
/// For fault-injection tests only, the environment variable `TESSERA_PARTICIPANT_FAILPOINT`
/// makes the process kill itself at an exact point of the secure-aggregation protocol, as a
/// site that loses power would: `die-on-masked-input-request` or `die-on-unmasking-request`
/// (see ``ParticipantFailpoint``). Any other non-empty value is a startup error. Never set it on
/// a real site.
public struct ParticipantProgram: Sendable {
    public var configFile: URL
    /// The fault to inject (`nil`, the default, for a real site).
    public var failpoint: ParticipantFailpoint?

    public init(configFile: URL, failpoint: ParticipantFailpoint? = nil) {
        self.configFile = configFile
        self.failpoint = failpoint
    }

    public func run(logger: Logger) async throws {
        let config = try ParticipantSiteConfig.load(from: configFile)
        let data = try config.loadData()
        for (name, local) in data.sorted(by: { $0.key < $1.key }) {
            logger.info(
                "dataset \(name): \(local.train.count) training and \(local.test?.count ?? 0) held-out samples, \(local.train.featuresPerSample) features")
        }
        let agent = ParticipantAgent(site: config.site, data: data, softwareVersion: "tessera-participant")
        var interception = SessionInterception()
        if let failpoint {
            logger.warning("failpoint \(failpoint.rawValue) is set (\(ParticipantFailpoint.environmentVariable)): this process will kill itself")
            interception.inspectInbound = { inbound in
                guard failpoint.fires(on: inbound) else { return }
                logger.warning("failpoint \(failpoint.rawValue): exiting now")
                failpoint.die()
            }
        }
        let client = ParticipantClient(
            agent: agent, configuration: ParticipantClient.Configuration(), interception: interception, clock: MonotonicClock(),
            logger: logger)
        let security = ClientSecurity.mutualTLS(
            certificate: config.certificate, privateKey: config.privateKey, caCertificate: config.caCertificate)
        let service = ParticipantRunService(client: client, endpoint: config.coordinator, security: security)
        // The run ending on its own (the experiment is over) is a normal exit, not a failure.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "participant")],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.info("connecting to \(config.coordinator)")
        try await group.run()
    }
}

/// A fault `tessera-participant` injects into itself for multi-process tests, named by
/// ``environmentVariable``: the process dies at an exact point of the secure-aggregation
/// protocol. A test that killed the process when a log line appeared could not choose that
/// point: by then the participant may have sent its next message.
///
/// Dying means `_exit(137)` (the status of a SIGKILLed process): no graceful shutdown, no
/// goodbye on the stream, no flushing; the kernel closes the socket, so the coordinator sees the
/// connection drop as it would after a crash or a power loss.
public enum ParticipantFailpoint: String, Sendable, CaseIterable {
    /// Dies on receiving the coordinator's request for its masked input. That request goes only
    /// to the survivors of ShareKeys, so this site's encrypted shares were delivered, and its
    /// masked input was never sent: the coordinator must remove its pairwise masks from the
    /// others' inputs with the shares of its mask key ("killed after ShareKeys").
    case dieOnMaskedInputRequest = "die-on-masked-input-request"
    /// Dies on receiving the Unmasking request. That request goes only to the sites whose masked
    /// input arrived, so this site's input is in the sum; only its unmasking shares are missing,
    /// and the other holders must reconstruct its self mask ("killed after sending its masked input").
    case dieOnUnmaskingRequest = "die-on-unmasking-request"

    public static let environmentVariable = "TESSERA_PARTICIPANT_FAILPOINT"

    /// The failpoint `environment` asks for: `nil` when the variable is unset or empty, an error
    /// naming the accepted values when it is anything else.
    public static func from(environment: [String: String]) throws(TesseraRuntimeError) -> ParticipantFailpoint? {
        guard let value = environment[environmentVariable], !value.isEmpty else { return nil }
        guard let failpoint = ParticipantFailpoint(rawValue: value) else {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "\(environmentVariable)=\(value) is not a failpoint; expected one of "
                    + "\(allCases.map(\.rawValue).joined(separator: ", ")), or leave it unset (it is for fault-injection tests only)")
        }
        return failpoint
    }

    /// Whether the process dies on receiving `inbound`.
    public func fires(on inbound: CoordinatorInbound) -> Bool {
        guard case .secAgg(_, let request) = inbound else { return false }
        switch (self, request) {
        case (.dieOnMaskedInputRequest, .maskedInputRequest), (.dieOnUnmaskingRequest, .unmaskingRequest): return true
        default: return false
        }
    }

    func die() -> Never {
        _exit(137)
    }
}

struct ParticipantRunService: Service {
    let client: ParticipantClient
    let endpoint: Endpoint
    let security: ClientSecurity

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await client.run(connectingTo: endpoint, security: security)
            }
        } catch where Task.isShuttingDownGracefully {
            // Stopping on SIGTERM/SIGINT is a normal exit; the coordinator counts this site out.
        }
    }
}

/// A site file read with Yams (the project's YAML parser), reduced to what a site file may
/// hold: nested mappings of scalars. Sequences, anchors and duplicate keys are refused with
/// the line number.
enum SiteYAML {
    indirect enum Node: Sendable {
        case scalar(String)
        case mapping([String: Node])
    }

    static func parse(_ text: String, source: String) throws(TesseraRuntimeError) -> [String: Node] {
        let composed: Yams.Node?
        do {
            composed = try Yams.compose(yaml: text)
        } catch {
            throw TesseraRuntimeError(.invalidConfiguration, "\(source): not valid YAML: \(error)")
        }
        guard let composed else { return [:] }
        guard case .mapping(let entries) = try convert(composed, source: source) else {
            throw TesseraRuntimeError(.invalidConfiguration, "\(source): a site file is a mapping of keys to values")
        }
        return entries
    }

    private static func convert(_ node: Yams.Node, source: String) throws(TesseraRuntimeError) -> Node {
        let line = node.mark.map { ":\($0.line)" } ?? ""
        switch node {
        case .scalar(let scalar):
            return .scalar(scalar.string)
        case .mapping(let mapping):
            var result: [String: Node] = [:]
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw TesseraRuntimeError(.invalidConfiguration, "\(source)\(line): keys must be plain text")
                }
                guard result[name] == nil else {
                    throw TesseraRuntimeError(.invalidConfiguration, "\(source)\(line): \(name) is given twice")
                }
                result[name] = try convert(value, source: source)
            }
            return .mapping(result)
        case .sequence:
            throw TesseraRuntimeError(.invalidConfiguration, "\(source)\(line): lists are not used in a site file")
        case .alias:
            throw TesseraRuntimeError(.invalidConfiguration, "\(source)\(line): anchors and aliases are not used in a site file")
        }
    }
}
