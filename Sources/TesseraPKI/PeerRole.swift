public import SwiftASN1
public import X509

extension ASN1ObjectIdentifier.Tessera {
    /// The extended key usage that makes a TLS client certificate a researcher's: it may submit,
    /// list and cancel its own experiments and read models, and never joins rounds as a site.
    /// An arc under `2.25` of 63 random bits, like
    /// ``SwiftASN1/ASN1ObjectIdentifier/Tessera/secureAggregationSigning``.
    public static let researcherRole: ASN1ObjectIdentifier = "2.25.8821668470089189661"
    /// The extended key usage that makes a TLS client certificate an operator's: a researcher's
    /// rights plus cancelling any experiment and changing model stages.
    public static let operatorRole: ASN1ObjectIdentifier = "2.25.7325224553393025162"
}

extension ExtendedKeyUsage.Usage {
    /// See ``SwiftASN1/ASN1ObjectIdentifier/Tessera/researcherRole``.
    public static let tesseraResearcher = ExtendedKeyUsage.Usage(oid: .Tessera.researcherRole)
    /// See ``SwiftASN1/ASN1ObjectIdentifier/Tessera/operatorRole``.
    public static let tesseraOperator = ExtendedKeyUsage.Usage(oid: .Tessera.operatorRole)
}

/// Whom a certificate of the federation speaks for, as the coordinator tells its peers apart.
///
/// Each role is written twice in a certificate, and both must agree: a site has `clientAuth`
/// and the URI `tessera://site/<name>`; a researcher or an operator has `clientAuth`, its
/// Tessera extended key usage (``SwiftASN1/ASN1ObjectIdentifier/Tessera/researcherRole``,
/// ``SwiftASN1/ASN1ObjectIdentifier/Tessera/operatorRole``) and the URI
/// `tessera://researcher/<name>` or `tessera://operator/<name>`; the coordinator has
/// `serverAuth`, the reserved common name `coordinator` and no Tessera URI. A role usage is what
/// grants rights, so a certificate made by hand with a researcher URI but without the usage is
/// refused rather than taken for a site by its common name.
public enum PeerRole: String, Sendable, Hashable, CaseIterable, Codable {
    case site
    case researcher
    case `operator`
    case coordinator

    /// Whether a peer of this role may do `action` (a researcher's cancel is further limited to
    /// its own experiments: ``PeerIdentity/mayCancel(experimentSubmittedBy:)``).
    public func allows(_ action: FederationAction) -> Bool {
        switch (self, action) {
        case (.site, .joinRounds): true
        case (.researcher, .submitExperiment), (.researcher, .listExperiments), (.researcher, .cancelExperiment),
            (.researcher, .readModels):
            true
        case (.operator, .submitExperiment), (.operator, .listExperiments), (.operator, .cancelExperiment),
            (.operator, .readModels), (.operator, .changeModelStage):
            true
        default: false
        }
    }

    /// The URI prefix that names a peer of this role in its certificate (`nil` for the
    /// coordinator, which is named by its host names).
    public var uriPrefix: String? {
        switch self {
        case .site: SiteIdentity.uriPrefix
        case .researcher: "tessera://researcher/"
        case .operator: "tessera://operator/"
        case .coordinator: nil
        }
    }

    /// The role's extended key usage beyond `clientAuth`, for the roles that have one.
    var roleUsage: ExtendedKeyUsage.Usage? {
        switch self {
        case .researcher: .tesseraResearcher
        case .operator: .tesseraOperator
        case .site, .coordinator: nil
        }
    }
}

/// What a peer asks of the coordinator, for ``PeerRole/allows(_:)``.
public enum FederationAction: String, Sendable, Hashable, CaseIterable {
    /// Open a participant session and take part in rounds.
    case joinRounds
    /// Send an experiment to the live federation (`tessera submit`).
    case submitExperiment
    /// List and show experiments and their logs.
    case listExperiments
    /// Cancel an experiment (a researcher only its own).
    case cancelExperiment
    /// List, show, export and diff model versions.
    case readModels
    /// Promote or archive a model version.
    case changeModelStage
}

/// The role and name a certificate of the federation states: what the coordinator records a
/// request under and decides it by.
///
/// ``init(certificate:)`` reads the certificate only; it checks neither the chain, nor the
/// dates, nor revocation. The coordinator gets an identity it can trust from
/// ``PeerValidator/identify(chain:)``, which does all of that first.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public var role: PeerRole
    /// The site, researcher or operator name (`[A-Za-z0-9._-]`, 1 to 64 characters), or
    /// `coordinator`.
    public var name: String

    public init(role: PeerRole, name: String) {
        self.role = role
        self.name = name
    }

    /// Reads the role and name `certificate` states (see ``PeerRole`` for how each role is
    /// written). Throws ``PKIError/Code-swift.struct/wrongPurpose`` for a site's signing
    /// certificate and ``PKIError/Code-swift.struct/invalidIdentity`` for a certificate whose
    /// role marks disagree or that names no valid peer.
    public init(certificate: Certificate) throws {
        let subject = "certificate with serial \(certificate.serialHex)"
        let usages = ChainCheck.usages(of: certificate)
        if usages?.contains(.tesseraSecureAggregationSigning) == true {
            throw PKIError(
                .wrongPurpose, "\(subject) is a site's signing certificate; it identifies no peer of a connection")
        }
        let marked = [PeerRole.researcher, .operator].filter { role in
            role.roleUsage.map { usages?.contains($0) == true } ?? false
        }
        guard marked.count <= 1 else {
            throw PKIError(.invalidIdentity, "\(subject) claims both the researcher and the operator role")
        }
        let uris = try RoleURIs(of: certificate, subject: subject)
        if let role = marked.first {
            self.init(role: role, name: try uris.name(of: role, in: certificate, subject: subject))
            return
        }
        if let stray = uris.roles.first(where: { $0 == .researcher || $0 == .operator }) {
            throw PKIError(
                .invalidIdentity,
                "\(subject) has a \(stray.uriPrefix ?? "") URI but not the \(stray.rawValue) extended key usage; it names no peer"
            )
        }
        if usages?.contains(.serverAuth) == true, uris.roles.isEmpty {
            guard CoordinatorRolePolicy.refusal(of: certificate, isTrustAnchor: false) == nil else {
                throw PKIError(
                    .invalidIdentity,
                    "\(subject) allows TLS server authentication but is not the coordinator's certificate (common name \(SiteName.quoted(SiteName.reserved)))"
                )
            }
            self.init(role: .coordinator, name: SiteName.reserved)
            return
        }
        self.init(role: .site, name: try SiteIdentity.siteName(of: certificate))
    }

    /// Whether this peer may do `action` (``PeerRole/allows(_:)``).
    public func allows(_ action: FederationAction) -> Bool { role.allows(action) }

    /// Whether this peer may cancel an experiment `submitter` submitted: an operator any, a
    /// researcher only its own, anyone else none.
    public func mayCancel(experimentSubmittedBy submitter: PeerIdentity) -> Bool {
        switch role {
        case .operator: true
        case .researcher: submitter == self
        case .site, .coordinator: false
        }
    }

    public var description: String { "\(role.rawValue) \(name)" }
}

/// The `tessera://<role>/<name>` URIs of a certificate, by role.
struct RoleURIs {
    private(set) var uris: [(role: PeerRole, uri: String)] = []

    var roles: [PeerRole] { uris.map(\.role) }

    init(of certificate: Certificate, subject: String) throws {
        let sans: SubjectAlternativeNames?
        do {
            sans = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw PKIError(.invalidIdentity, "\(subject) has a malformed subjectAltName extension", cause: error)
        }
        for name in sans ?? SubjectAlternativeNames() {
            guard case .uniformResourceIdentifier(let uri) = name else { continue }
            // Scheme and host compare without case, so a differently-cased duplicate counts.
            let lowered = uri.lowercased()
            if let role = PeerRole.allCases.first(where: { $0.uriPrefix.map(lowered.hasPrefix) ?? false }) {
                uris.append((role, uri))
            }
        }
    }

    /// The name of a researcher or operator: exactly one URI, of `role` only, agreeing with the
    /// common name.
    func name(of role: PeerRole, in certificate: Certificate, subject: String) throws -> String {
        let prefix = role.uriPrefix ?? ""
        guard uris.count == 1, let only = uris.first, only.role == role else {
            let found = uris.isEmpty ? "none" : uris.map { SiteName.quoted($0.uri) }.joined(separator: ", ")
            throw PKIError(
                .invalidIdentity,
                "\(subject) has the \(role.rawValue) extended key usage; it must carry exactly one Tessera URI, \(prefix)<name>, and carries \(found)"
            )
        }
        let name = String(only.uri.dropFirst(prefix.count))
        do {
            try SiteName.validate(name, as: "\(role.rawValue) name")
        } catch let error as PKIError {
            throw PKIError(.invalidIdentity, "\(subject) has URI \(SiteName.quoted(only.uri)): \(error.message)")
        }
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String($0.value) ?? String(describing: $0.value) }
        if let commonName = commonNames.first, commonNames.count != 1 || commonName != name {
            throw PKIError(
                .invalidIdentity,
                "\(subject) has URI \(SiteName.quoted(only.uri)) but common name \(commonNames.map(SiteName.quoted).joined(separator: ", ")); they must agree"
            )
        }
        return name
    }

    /// Refuses, for `SiteIdentity`, a certificate that carries a researcher's or operator's mark:
    /// its common name must never make it a site.
    static func refuseNonSiteRoles(of certificate: Certificate, subject: String) throws {
        let usages = ChainCheck.usages(of: certificate)
        for role in [PeerRole.researcher, .operator] {
            let usage = role.roleUsage.map { usages?.contains($0) == true } ?? false
            let uri = (try? RoleURIs(of: certificate, subject: subject))?.roles.contains(role) ?? false
            if usage || uri {
                throw PKIError(
                    .wrongRole, "\(subject) is a \(role.rawValue)'s certificate, not a site's; it cannot join rounds")
            }
        }
    }
}
