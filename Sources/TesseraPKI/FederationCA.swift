import Crypto
public import Foundation
import SwiftASN1
public import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The federation's own certificate authority: the root of trust for every mTLS connection
/// between sites and the coordinator.
///
/// Tessera runs its own CA rather than relying on a public or corporate one because the CA
/// decides who is a member of the federation: any certificate it signs is a site. Keeping the
/// CA in a directory the federation operator controls (and off the coordinator, which only
/// needs `ca.pem`, `revoked.json` and `revoked.signed`) means a compromised coordinator can
/// neither mint new sites nor forge the revocation list it forwards to them.
///
/// `tessera pki init` lays the CA out in an operator folder (``OperatorFolders``): the CA
/// directory `ca-private/` and, beside it, the public ``TrustFolder`` `trust/` that the
/// coordinator is given. Every change of `revoked.signed` is copied into that `trust/` folder
/// (when its `ca.pem` is this CA's), so a coordinator reading it sees a revocation at its next
/// check.
///
/// A CA directory holds:
/// - `ca.pem`: the CA certificate (give it to every site and to the coordinator);
/// - `ca-key.pem`: the CA's PKCS#8 PEM private key, mode 0600 (never leaves this directory);
/// - `revoked.json`: the revoked serials, a JSON array of ``RevokedCertificate``;
/// - `revoked.signed`: the same serials signed by the CA key (``SignedRevocationList``), which
///   the coordinator forwards to sites;
/// - `issued.json`: an index of issued certificates (``IssuedCertificate``), used to revoke a
///   site by name and by `tessera pki list`.
///
/// The CA key and all TLS keys are ECDSA P-256 and all signatures ECDSA with SHA-256:
/// supported by every TLS stack the runtime meets, and small enough that a handshake per
/// connection is cheap. Sites' signing keys are Ed25519 (``SiteSigningIdentity``).
public struct FederationCA: Sendable {
    public static let certificateFileName = "ca.pem"
    public static let privateKeyFileName = "ca-key.pem"
    public static let revokedFileName = "revoked.json"
    public static let signedRevocationListFileName = SignedRevocationList.fileName
    public static let issuedFileName = "issued.json"
    /// How long a site's or the coordinator's certificate lasts unless the issuer says
    /// otherwise: one year, so a key that leaked unnoticed stops working within a year.
    public static let defaultLeafValidityDays = 365

    /// The CA directory.
    public let directory: URL
    /// The CA certificate.
    public let certificate: Certificate
    /// The CA's signing key. Internal on purpose: nothing outside this module needs it, and
    /// keeping it out of the public surface keeps it out of callers' logs.
    let privateKey: Certificate.PrivateKey

    /// Tolerated clock difference between the CA and the machines that check its certificates:
    /// a certificate is back-dated by this much so a peer whose clock runs slightly behind does
    /// not reject a certificate issued seconds ago.
    static let clockSkew: TimeInterval = 5 * 60

    /// The CA certificate's subject, for display (callers need not import X509 for it).
    public var name: String { certificate.subject.description }
    /// When the CA certificate, and so every certificate it issued, stops being accepted.
    public var validUntil: Date { certificate.notValidAfter }

    public var certificateURL: URL { directory.appendingPathComponent(Self.certificateFileName) }
    public var privateKeyURL: URL { directory.appendingPathComponent(Self.privateKeyFileName) }
    public var revokedURL: URL { directory.appendingPathComponent(Self.revokedFileName) }
    public var issuedURL: URL { directory.appendingPathComponent(Self.issuedFileName) }
    public var signedRevocationListURL: URL { directory.appendingPathComponent(Self.signedRevocationListFileName) }

    var issuer: LeafIssuer { LeafIssuer(caCertificate: certificate, caKey: privateKey) }

    init(directory: URL, certificate: Certificate, privateKey: Certificate.PrivateKey) {
        self.directory = directory
        self.certificate = certificate
        self.privateKey = privateKey
    }

    // MARK: Creating and loading

    /// Creates a new CA in `directory` (created with mode 0700 if missing).
    ///
    /// Refuses to run if the directory already holds any CA file: replacing a CA silently
    /// would cut every issued site out of the federation, so that must be a deliberate,
    /// manual step.
    /// - Parameters:
    ///   - name: the CA certificate's common name, 1 to 64 characters.
    ///   - validityDays: lifetime of the CA certificate; every issued certificate must expire
    ///     before it, so it is long by default (ten years).
    public static func initialize(
        at directory: URL, name: String = "Tessera Federation CA", validityDays: Int = 3650
    ) throws -> FederationCA {
        guard !name.isEmpty, name.utf8.count <= 64,
            name.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        else {
            throw PKIError(.invalidCertificate, "CA name \(SiteName.quoted(name)) must be 1 to 64 printable characters")
        }
        guard validityDays > 0 else {
            throw PKIError(.invalidCertificate, "CA validity must be at least one day, got \(validityDays)")
        }
        try PEMFile.makeDirectory(directory)
        return try PEMFile.withExclusiveLock(on: directory) {
            for file in [
                certificateFileName, privateKeyFileName, revokedFileName, signedRevocationListFileName, issuedFileName,
            ] {
                let url = directory.appendingPathComponent(file)
                if FileManager.default.fileExists(atPath: url.path) {
                    throw PKIError(
                        .alreadyExists,
                        "\(url.path) already exists; refusing to overwrite an existing CA (move the directory aside to start a new federation)"
                    )
                }
            }
            let signingKey = P256.Signing.PrivateKey()
            let key = Certificate.PrivateKey(signingKey)
            let now = Date()
            let certificate = try LeafIssuer.makeCA(
                name: name, key: key, notValidBefore: now - clockSkew,
                notValidAfter: now + TimeInterval(validityDays) * 86_400)
            let ca = FederationCA(directory: directory, certificate: certificate, privateKey: key)
            // Key first: if writing stops half-way, the directory holds a key and no
            // certificate, which `load` reports, rather than a certificate nobody can sign with.
            try PEMFile.writeAtomically(
                signingKey.pemRepresentation + "\n", to: ca.privateKeyURL, mode: 0o600, overwrite: false)
            try PEMFile.writeAtomically(
                try PEMFile.pem(of: certificate), to: ca.certificateURL, mode: 0o644, overwrite: false)
            try JSONRecords.write([RevokedCertificate](), to: ca.revokedURL)
            try ca.updateSignedRevocationList(serials: [], now: now)
            try JSONRecords.write([IssuedCertificate](), to: ca.issuedURL)
            return ca
        }
    }

    /// Creates a new CA laid out for its operator under `root` (``OperatorFolders``): the CA in
    /// `root/ca-private` (mode 0700) and its public half, `ca.pem` and `revoked.signed`, in
    /// `root/trust`. Refuses if either folder already holds CA files.
    public static func initializeOperatorFolders(
        at root: URL, name: String = "Tessera Federation CA", validityDays: Int = 3650
    ) throws -> FederationCA {
        let folders = OperatorFolders(root: root)
        for file in [certificateFileName, signedRevocationListFileName] {
            let url = folders.trustDirectory.appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: url.path) {
                throw PKIError(
                    .alreadyExists,
                    "\(url.path) already exists; refusing to overwrite an existing federation's trust folder (move \(root.path) aside to start a new federation)"
                )
            }
        }
        let ca = try initialize(at: folders.privateDirectory, name: name, validityDays: validityDays)
        try ca.publishTrust(to: folders.trustDirectory)
        return ca
    }

    /// Loads an existing CA, checking that its key matches its certificate (a mismatched pair
    /// would issue certificates no peer accepts, which is much harder to diagnose later).
    /// `directory` is the CA directory, or an operator folder whose `ca-private/` holds it.
    public static func load(from directory: URL) throws -> FederationCA {
        let folders = OperatorFolders(root: directory)
        let directory = folders.exists ? folders.privateDirectory : directory
        let certificateURL = directory.appendingPathComponent(certificateFileName)
        let keyURL = directory.appendingPathComponent(privateKeyFileName)
        let certificate = try PEMFile.loadCertificate(from: certificateURL)
        let key = try PEMFile.loadPrivateKey(from: keyURL)
        guard key.publicKey == certificate.publicKey else {
            throw PKIError(.invalidKey, "\(keyURL.path) is not the private key of \(certificateURL.path)")
        }
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw PKIError(
                .invalidCertificate, "\(certificateURL.path) is not a CA certificate (no basicConstraints CA:TRUE)")
        }
        return FederationCA(directory: directory, certificate: certificate, privateKey: key)
    }

    // MARK: Issuing

    /// Issues a site's identity into the identity directory `directory`: a TLS client
    /// certificate and key, and a signing certificate and key (``SiteSigningIdentity``).
    ///
    /// Both certificates name the site twice, as subject CN and as SAN URI
    /// `tessera://site/<name>`; the coordinator and the peers read the URI (see
    /// ``SiteIdentity``). The TLS certificate is only good for TLS client authentication, so a
    /// site's key cannot be used to impersonate the coordinator; the signing certificate is
    /// good for nothing but signing secure-aggregation keys. Keys are generated here and written
    /// once, with mode 0600. The directory also receives `ca.pem` and the current
    /// `revoked.signed`. Refuses to overwrite any existing certificate or key.
    public func issue(
        site: String, to directory: URL, validityDays: Int = FederationCA.defaultLeafValidityDays
    ) throws -> IssuedIdentity {
        let window = try Self.window(validityDays: validityDays, for: "site \(SiteName.quoted(site))")
        return try issue(site: site, to: directory, notValidBefore: window.start, notValidAfter: window.end)
    }

    /// Issues a site identity with an explicit validity window. Internal: tests use it to make
    /// certificates that are already expired or not yet valid.
    func issue(site: String, to directory: URL, notValidBefore: Date, notValidAfter: Date) throws -> IssuedIdentity {
        try SiteName.validate(site)
        let files = IssuedIdentity.Files(directory: directory)
        try Self.refuseExisting(
            [files.certificate, files.privateKey, files.signingCertificate, files.signingPrivateKey],
            what: "the identity of site \(SiteName.quoted(site))")

        let tlsKey = P256.Signing.PrivateKey()
        let tlsCertificate = try issuer.siteTLS(
            site: site, publicKey: Certificate.PublicKey(tlsKey.publicKey), notValidBefore: notValidBefore,
            notValidAfter: notValidAfter)
        let signingKey = Curve25519.Signing.PrivateKey()
        let signingCertificate = try issuer.siteSigning(
            site: site, publicKey: signingKey.publicKey, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        try record([(tlsCertificate, .site), (signingCertificate, .siteSigning)], name: site, directory: directory)

        try PEMFile.makeDirectory(directory)
        try PEMFile.writeAtomically(
            tlsKey.pemRepresentation + "\n", to: files.privateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(
            try PEMFile.pem(of: tlsCertificate), to: files.certificate, mode: 0o644, overwrite: false)
        try PEMFile.writeAtomically(
            try PEMFile.pem(of: signingKey), to: files.signingPrivateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(
            try PEMFile.pem(of: signingCertificate), to: files.signingCertificate, mode: 0o644, overwrite: false)
        try writeFederationFiles(to: files)
        return IssuedIdentity(
            directory: directory, certificate: tlsCertificate, caCertificate: certificate, name: site, role: .site)
    }

    /// Gives an identity directory issued before signing certificates existed its signing
    /// certificate and key (`signing-cert.pem`, `signing-key.pem`), and refreshes its `ca.pem`
    /// and `revoked.signed`.
    ///
    /// Refuses when the directory already has either signing file, when its `cert.pem` names
    /// another site, and when its `cert.pem` or `ca.pem` come from another CA: one directory
    /// holds one site of one federation.
    public func issueSigningCertificate(
        site: String, to directory: URL, validityDays: Int = FederationCA.defaultLeafValidityDays
    ) throws -> SiteSigningIdentity {
        let window = try Self.window(
            validityDays: validityDays, for: "the signing certificate of site \(SiteName.quoted(site))")
        return try issueSigningCertificate(
            site: site, to: directory, notValidBefore: window.start, notValidAfter: window.end)
    }

    func issueSigningCertificate(
        site: String, to directory: URL, notValidBefore: Date, notValidAfter: Date
    ) throws -> SiteSigningIdentity {
        try SiteName.validate(site)
        let files = IssuedIdentity.Files(directory: directory)
        try Self.refuseExisting(
            [files.signingCertificate, files.signingPrivateKey],
            what: "the signing certificate of site \(SiteName.quoted(site))")
        if FileManager.default.fileExists(atPath: files.caCertificate.path),
            try PEMFile.loadCertificate(from: files.caCertificate) != certificate
        {
            throw PKIError(
                .untrustedIssuer,
                "\(files.caCertificate.path) is another federation's CA certificate, not \(certificate.subject); refusing to mix federations in one identity directory"
            )
        }
        if FileManager.default.fileExists(atPath: files.certificate.path) {
            let existing = try PEMFile.loadCertificate(from: files.certificate)
            guard certificate.publicKey.isValidSignature(existing.signature, for: existing) else {
                throw PKIError(
                    .untrustedIssuer,
                    "\(files.certificate.path) was not issued by this CA (\(certificate.subject)); refusing to mix federations in one identity directory"
                )
            }
            let existingSite = try SiteIdentity.siteName(of: existing)
            guard existingSite == site else {
                throw PKIError(
                    .invalidIdentity,
                    "\(files.certificate.path) is the certificate of site \(SiteName.quoted(existingSite)), not \(SiteName.quoted(site)); give the site name it was issued for"
                )
            }
        }

        let key = Curve25519.Signing.PrivateKey()
        let signingCertificate = try issuer.siteSigning(
            site: site, publicKey: key.publicKey, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        try record([(signingCertificate, .siteSigning)], name: site, directory: directory)

        try PEMFile.makeDirectory(directory)
        try PEMFile.writeAtomically(
            try PEMFile.pem(of: key), to: files.signingPrivateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(
            try PEMFile.pem(of: signingCertificate), to: files.signingCertificate, mode: 0o644, overwrite: false)
        try writeFederationFiles(to: files)
        return try SiteSigningIdentity(
            directory: directory, site: site, certificate: signingCertificate, privateKey: key)
    }

    /// Issues the coordinator's server certificate into `directory`.
    ///
    /// Sites check the coordinator's address against its SANs, so every name and address they
    /// dial must be listed: DNS names become `dNSName` entries and IPv4/IPv6 literals
    /// `iPAddress` entries. The certificate also allows client authentication, for
    /// coordinator-initiated connections such as health checks, but carries no site URI, so
    /// it can never be accepted as a site. The directory also receives `ca.pem` and the
    /// current `revoked.signed`, which the coordinator forwards to sites.
    public func issueCoordinator(
        hosts: [String] = ["localhost", "127.0.0.1"], to directory: URL,
        validityDays: Int = FederationCA.defaultLeafValidityDays
    ) throws -> IssuedIdentity {
        let window = try Self.window(validityDays: validityDays, for: "the coordinator")
        let files = IssuedIdentity.Files(directory: directory)
        try Self.refuseExisting([files.certificate, files.privateKey], what: "the identity of the coordinator")
        let key = P256.Signing.PrivateKey()
        let leaf = try issuer.coordinator(
            hosts: hosts, publicKey: Certificate.PublicKey(key.publicKey), notValidBefore: window.start,
            notValidAfter: window.end)
        try record([(leaf, .coordinator)], name: SiteName.reserved, directory: directory)

        try PEMFile.makeDirectory(directory)
        try PEMFile.writeAtomically(key.pemRepresentation + "\n", to: files.privateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(try PEMFile.pem(of: leaf), to: files.certificate, mode: 0o644, overwrite: false)
        try writeFederationFiles(to: files)
        return IssuedIdentity(
            directory: directory, certificate: leaf, caCertificate: certificate, name: SiteName.reserved,
            role: .coordinator)
    }

    /// Issues a researcher's TLS client certificate into `directory`: CN and SAN URI
    /// `tessera://researcher/<name>`, `clientAuth` and the researcher usage
    /// (``PeerRole/researcher``). A researcher submits, lists and cancels its own experiments
    /// and reads models; the coordinator refuses it as a site. The directory also receives
    /// `ca.pem` and the current `revoked.signed`. Names follow ``SiteName``'s rules, in a
    /// namespace of their own: a researcher may share a site's name.
    public func issueResearcher(
        _ name: String, to directory: URL, validityDays: Int = FederationCA.defaultLeafValidityDays
    ) throws -> IssuedIdentity {
        try issueClient(role: .researcher, name: name, to: directory, validityDays: validityDays)
    }

    /// Issues an operator's TLS client certificate into `directory`, as ``issueResearcher(_:to:validityDays:)``
    /// does with the operator role (``PeerRole/operator``): a researcher's rights, plus
    /// cancelling any experiment and changing model stages.
    public func issueOperator(
        _ name: String, to directory: URL, validityDays: Int = FederationCA.defaultLeafValidityDays
    ) throws -> IssuedIdentity {
        try issueClient(role: .operator, name: name, to: directory, validityDays: validityDays)
    }

    private func issueClient(
        role: PeerRole, name: String, to directory: URL, validityDays: Int
    ) throws -> IssuedIdentity {
        try SiteName.validate(name, as: "\(role.rawValue) name")
        let what = "the identity of \(role.rawValue) \(SiteName.quoted(name))"
        let window = try Self.window(validityDays: validityDays, for: what)
        let files = IssuedIdentity.Files(directory: directory)
        try Self.refuseExisting([files.certificate, files.privateKey], what: what)
        let key = P256.Signing.PrivateKey()
        let leaf = try issuer.client(
            role: role, name: name, publicKey: Certificate.PublicKey(key.publicKey), notValidBefore: window.start,
            notValidAfter: window.end)
        let recorded: IssuedCertificate.Role = role == .operator ? .operator : .researcher
        try record([(leaf, recorded)], name: name, directory: directory)

        try PEMFile.makeDirectory(directory)
        try PEMFile.writeAtomically(key.pemRepresentation + "\n", to: files.privateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(try PEMFile.pem(of: leaf), to: files.certificate, mode: 0o644, overwrite: false)
        try writeFederationFiles(to: files)
        return IssuedIdentity(
            directory: directory, certificate: leaf, caCertificate: certificate, name: name, role: recorded)
    }

    private static func window(validityDays: Int, for what: String) throws -> (start: Date, end: Date) {
        guard validityDays > 0 else {
            throw PKIError(
                .invalidCertificate, "validity for \(what) must be at least one day, got \(validityDays)")
        }
        let now = Date()
        return (now - clockSkew, now + TimeInterval(validityDays) * 86_400)
    }

    private static func refuseExisting(_ urls: [URL], what: String) throws {
        for url in urls where FileManager.default.fileExists(atPath: url.path) {
            throw PKIError(.alreadyExists, "\(url.path) already exists; refusing to overwrite \(what)")
        }
    }

    /// Records certificates in `issued.json` before their files are written: a record without
    /// files is harmless, but files without a record would be a certificate `revoke(site:)`
    /// cannot find.
    private func record(
        _ certificates: [(Certificate, IssuedCertificate.Role)], name: String, directory: URL
    ) throws {
        try PEMFile.withExclusiveLock(on: self.directory) {
            var issued = try issuedCertificates()
            for (leaf, role) in certificates {
                issued.append(
                    IssuedCertificate(
                        serial: leaf.serialHex, site: name, role: role, notValidBefore: leaf.notValidBefore,
                        notValidAfter: leaf.notValidAfter, directory: directory.path))
            }
            try JSONRecords.write(issued, to: issuedURL)
        }
    }

    /// `ca.pem` and the current `revoked.signed`: what every identity needs to check its peers.
    private func writeFederationFiles(to files: IssuedIdentity.Files) throws {
        try PEMFile.writeAtomically(try PEMFile.pem(of: certificate), to: files.caCertificate, mode: 0o644)
        let list = try signedRevocationList()
        try PEMFile.writeAtomically(
            String(decoding: list.encoded, as: UTF8.self), to: files.signedRevocationList, mode: 0o644)
    }

    /// A 20-byte positive serial: the top bit is cleared so the DER INTEGER stays positive
    /// without a padding byte (RFC 5280 allows at most 20 octets), and the next bit is set so
    /// it never shrinks below 20 bytes. That leaves 158 random bits, far beyond the 64 the CA/B
    /// Forum requires to make serials unpredictable.
    static func randomSerialNumber() -> Certificate.SerialNumber {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: 0 ... .max, using: &rng) }
        bytes[0] = (bytes[0] & 0x7F) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    static func generalName(forHost host: String) throws -> GeneralName {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { Array($0) }[...]))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { Array($0) }[...]))
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            !host.isEmpty && host.utf8.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
        guard valid else {
            throw PKIError(
                .invalidCertificate, "coordinator host \(SiteName.quoted(host)) is neither a DNS name nor an IP address"
            )
        }
        return .dnsName(host.lowercased())
    }

    // MARK: Revoking

    /// Revokes the certificate with this serial (any common hex spelling; see
    /// ``SerialNumberHex``). Revoking an already-revoked serial returns the existing entry.
    ///
    /// Updates `revoked.json` and re-signs `revoked.signed` with the next sequence number (also
    /// in ``trustDirectory``). The coordinator re-reads its `revoked.signed` on every new
    /// connection and on an interval, when it ends the site's open sessions and model fetches.
    /// Sites learn of the revocation when the coordinator forwards them the new list.
    @discardableResult
    public func revoke(serial: String) throws -> RevokedCertificate {
        let canonical = try SerialNumberHex.canonical(serial)
        return try PEMFile.withExclusiveLock(on: directory) {
            let site = try issuedCertificates().first { $0.serial == canonical }?.site
            return try appendRevocations([(canonical, site)]).first!
        }
    }

    /// Revokes every certificate `issued.json` records for `site`: its TLS and its signing
    /// certificate, and those of earlier issues (all of them must go). Returns the entries added
    /// now; empty when all were already revoked. A researcher or operator of the same name keeps
    /// its certificate (names are per role).
    @discardableResult
    public func revoke(site: String) throws -> [RevokedCertificate] {
        if site != SiteName.reserved { try SiteName.validate(site) }
        let roles: Set<IssuedCertificate.Role> = site == SiteName.reserved ? [.coordinator] : [.site, .siteSigning]
        return try revoke(name: site, roles: roles, what: "site")
    }

    /// Revokes every certificate `issued.json` records for the researcher `name`, as
    /// ``revoke(site:)`` does for a site: the coordinator refuses it from its next connection on.
    @discardableResult
    public func revoke(researcher name: String) throws -> [RevokedCertificate] {
        try SiteName.validate(name, as: "researcher name")
        return try revoke(name: name, roles: [.researcher], what: "researcher")
    }

    /// Revokes every certificate `issued.json` records for the operator `name`.
    @discardableResult
    public func revoke(operator name: String) throws -> [RevokedCertificate] {
        try SiteName.validate(name, as: "operator name")
        return try revoke(name: name, roles: [.operator], what: "operator")
    }

    private func revoke(name: String, roles: Set<IssuedCertificate.Role>, what: String) throws -> [RevokedCertificate] {
        try PEMFile.withExclusiveLock(on: directory) {
            let serials = try issuedCertificates().filter { $0.site == name && roles.contains($0.role) }.map(\.serial)
            guard !serials.isEmpty else {
                throw PKIError(
                    .unknownSite,
                    "\(issuedURL.path) records no certificate for \(what) \(SiteName.quoted(name)); revoke it by serial instead"
                )
            }
            let already = try revokedSerials()
            let fresh = serials.filter { !already.contains($0) }
            return try appendRevocations(fresh.map { ($0, name) })
        }
    }

    /// Must run under the directory lock.
    private func appendRevocations(_ entries: [(serial: String, site: String?)]) throws -> [RevokedCertificate] {
        var list = try revokedCertificates()
        var result: [RevokedCertificate] = []
        // Whole seconds: that is what revoked.json stores, so the returned entries compare equal
        // to the ones read back later.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        for entry in entries {
            if let existing = list.first(where: { $0.serial == entry.serial }) {
                result.append(existing)
                continue
            }
            let record = RevokedCertificate(serial: entry.serial, site: entry.site, revokedAt: now)
            list.append(record)
            result.append(record)
        }
        try JSONRecords.write(list, to: revokedURL)
        // Signed after revoked.json: if this stops half-way, the next revocation or issue
        // re-signs from revoked.json, which stays the operator's record.
        try updateSignedRevocationList(serials: Set(list.map(\.serial)), now: now)
        return result
    }

    /// The current `revoked.signed`, after making sure it holds exactly the serials of
    /// `revoked.json`; it is created (or re-signed) for a CA directory made before signed lists
    /// existed, or left behind by an interrupted revocation.
    public func signedRevocationList() throws -> SignedRevocationList {
        try PEMFile.withExclusiveLock(on: directory) {
            try updateSignedRevocationList(serials: try revokedSerials(), now: Date())
        }
    }

    /// Re-signs `revoked.signed` with the next sequence number unless it already lists exactly
    /// `serials`. Must run under the directory lock (or while initialising).
    @discardableResult
    private func updateSignedRevocationList(serials: Set<String>, now: Date) throws -> SignedRevocationList {
        var sequence: UInt64 = 1
        if FileManager.default.fileExists(atPath: signedRevocationListURL.path) {
            let current = try SignedRevocationList.load(from: signedRevocationListURL, caCertificate: certificate)
            if current.serials == serials { return current }
            guard current.sequence < .max else {
                throw PKIError(
                    .invalidRevocationList, "\(signedRevocationListURL.path) has reached the last sequence number")
            }
            sequence = current.sequence + 1
        }
        let list = try SignedRevocationList.sign(
            serials: serials, sequence: sequence, issuedAt: now, caCertificate: certificate, caKey: privateKey)
        try PEMFile.writeAtomically(
            String(decoding: list.encoded, as: UTF8.self), to: signedRevocationListURL, mode: 0o644)
        if let trust = trustDirectory {
            try PEMFile.writeAtomically(
                String(decoding: list.encoded, as: UTF8.self),
                to: trust.appendingPathComponent(Self.signedRevocationListFileName), mode: 0o644)
        }
        return list
    }

    // MARK: The public trust folder

    /// The ``TrustFolder`` this CA keeps current: the folder `trust` beside the CA directory, if
    /// it exists and its `ca.pem` is this CA's certificate.
    public var trustDirectory: URL? {
        let trust = directory.deletingLastPathComponent().appendingPathComponent(TrustFolder.defaultName)
        let pem = trust.appendingPathComponent(Self.certificateFileName)
        guard trust.standardizedFileURL != directory.standardizedFileURL,
            FileManager.default.fileExists(atPath: pem.path),
            (try? PEMFile.loadCertificate(from: pem)) == certificate
        else { return nil }
        return trust
    }

    /// Writes this CA's public half, `ca.pem` and the current `revoked.signed`, into
    /// `directory` (created with mode 0755): a ``TrustFolder`` for the coordinator. When
    /// `directory` is the folder `trust` beside the CA directory, later revocations update it.
    ///
    /// Refuses a folder that holds a CA key (it would not be a public folder) or another
    /// federation's `ca.pem`.
    public func publishTrust(to directory: URL) throws {
        guard directory.standardizedFileURL != self.directory.standardizedFileURL else {
            throw PKIError(
                .exposedCAKey, "\(directory.path) is the CA directory itself; publish the trust folder elsewhere")
        }
        try TrustFolder.refuseCAKey(in: directory)
        let pem = directory.appendingPathComponent(Self.certificateFileName)
        if FileManager.default.fileExists(atPath: pem.path), try PEMFile.loadCertificate(from: pem) != certificate {
            throw PKIError(
                .untrustedIssuer,
                "\(pem.path) is another federation's CA certificate, not \(certificate.subject); refusing to overwrite it"
            )
        }
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw PKIError(.io, "cannot create directory \(directory.path)", cause: error)
        }
        let list = try signedRevocationList()
        try PEMFile.writeAtomically(try PEMFile.pem(of: certificate), to: pem, mode: 0o644)
        try PEMFile.writeAtomically(
            String(decoding: list.encoded, as: UTF8.self),
            to: directory.appendingPathComponent(Self.signedRevocationListFileName), mode: 0o644)
    }

    /// The canonical serials in `revoked.json`, read from disk on every call.
    public func revokedSerials() throws -> Set<String> {
        try RevocationList.serials(from: revokedURL)
    }

    /// The entries of `revoked.json`.
    public func revokedCertificates() throws -> [RevokedCertificate] {
        try RevocationList.load(from: revokedURL)
    }

    /// The entries of `issued.json`; empty if this CA directory predates the index.
    public func issuedCertificates() throws -> [IssuedCertificate] {
        guard FileManager.default.fileExists(atPath: issuedURL.path) else { return [] }
        return try JSONRecords.read([IssuedCertificate].self, from: issuedURL)
    }

    /// A validator that trusts this CA and re-reads this directory's `revoked.json` on every
    /// validation.
    public func peerValidator() -> PeerValidator {
        PeerValidator(caCertificate: certificate, revocationList: revokedURL)
    }

    /// A signing-certificate validator that trusts this CA and re-reads `revoked.json`.
    public func signingValidator() -> SigningCertificateValidator {
        SigningCertificateValidator(caCertificate: certificate, revocation: .file(revokedURL))
    }

    /// A coordinator-certificate validator that trusts this CA and re-reads `revoked.json`.
    public func coordinatorValidator() -> CoordinatorCertificateValidator {
        CoordinatorCertificateValidator(caCertificate: certificate, revocation: .file(revokedURL))
    }
}

extension FederationCA: CustomStringConvertible {
    /// Names the CA and its directory, and never the key.
    public var description: String {
        "FederationCA(\(certificate.subject), \(directory.path))"
    }
}
