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
/// needs `ca.pem` and `revoked.json`) means a compromised coordinator cannot mint new sites.
///
/// A CA directory holds:
/// - `ca.pem`: the CA certificate (give it to every site and to the coordinator);
/// - `ca-key.pem`: the CA's PKCS#8 PEM private key, mode 0600 (never leaves this directory);
/// - `revoked.json`: the revoked serials, a JSON array of ``RevokedCertificate``;
/// - `issued.json`: an index of issued certificates (``IssuedCertificate``), used to revoke a
///   site by name and by `tessera pki list`.
///
/// All keys are ECDSA P-256 and all signatures ECDSA with SHA-256: supported by every TLS
/// stack the runtime meets, and small enough that a handshake per connection is cheap.
public struct FederationCA: Sendable {
    public static let certificateFileName = "ca.pem"
    public static let privateKeyFileName = "ca-key.pem"
    public static let revokedFileName = "revoked.json"
    public static let issuedFileName = "issued.json"

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
            for file in [certificateFileName, privateKeyFileName, revokedFileName, issuedFileName] {
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
            let subject: DistinguishedName
            let certificate: Certificate
            do {
                subject = try DistinguishedName { CommonName(name) }
                let extensions = try Certificate.Extensions {
                    // Path length 0: the CA signs leaves only, so a leaf that somehow obtained
                    // a CA bit still could not act as an intermediate.
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                }
                certificate = try Certificate(
                    version: .v3,
                    serialNumber: randomSerialNumber(),
                    publicKey: key.publicKey,
                    notValidBefore: now - clockSkew,
                    notValidAfter: now + TimeInterval(validityDays) * 86_400,
                    issuer: subject,
                    subject: subject,
                    signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: extensions,
                    issuerPrivateKey: key)
            } catch {
                throw PKIError(
                    .invalidCertificate, "cannot build the CA certificate for \(SiteName.quoted(name))", cause: error)
            }
            let ca = FederationCA(directory: directory, certificate: certificate, privateKey: key)
            // Key first: if writing stops half-way, the directory holds a key and no
            // certificate, which `load` reports, rather than a certificate nobody can sign with.
            try PEMFile.writeAtomically(
                signingKey.pemRepresentation + "\n", to: ca.privateKeyURL, mode: 0o600, overwrite: false)
            try PEMFile.writeAtomically(
                try PEMFile.pem(of: certificate), to: ca.certificateURL, mode: 0o644, overwrite: false)
            try JSONRecords.write([RevokedCertificate](), to: ca.revokedURL)
            try JSONRecords.write([IssuedCertificate](), to: ca.issuedURL)
            return ca
        }
    }

    /// Loads an existing CA, checking that its key matches its certificate (a mismatched pair
    /// would issue certificates no peer accepts, which is much harder to diagnose later).
    public static func load(from directory: URL) throws -> FederationCA {
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

    /// Issues a client certificate and key for `site` into the identity directory `directory`.
    ///
    /// The certificate names the site twice, as subject CN and as SAN URI
    /// `tessera://site/<name>`; the coordinator reads the URI (see ``SiteIdentity``). It is
    /// only good for TLS client authentication, so a site's key cannot be used to impersonate
    /// the coordinator. The site's key is generated here and written once, with mode 0600.
    /// Refuses to overwrite an existing `cert.pem` or `key.pem`.
    public func issue(site: String, to directory: URL, validityDays: Int = 825) throws -> IssuedIdentity {
        guard validityDays > 0 else {
            throw PKIError(
                .invalidCertificate,
                "validity for site \(SiteName.quoted(site)) must be at least one day, got \(validityDays)")
        }
        let now = Date()
        return try issue(
            site: site, to: directory, notValidBefore: now - Self.clockSkew,
            notValidAfter: now + TimeInterval(validityDays) * 86_400)
    }

    /// Issues a site certificate with an explicit validity window. Internal: tests use it to
    /// make certificates that are already expired or not yet valid.
    func issue(site: String, to directory: URL, notValidBefore: Date, notValidAfter: Date) throws -> IssuedIdentity {
        try SiteName.validate(site)
        return try issueLeaf(
            commonName: site,
            role: .site,
            alternativeNames: [.uniformResourceIdentifier(SiteIdentity.uri(for: site))],
            usages: [.clientAuth],
            to: directory,
            notValidBefore: notValidBefore,
            notValidAfter: notValidAfter)
    }

    /// Issues the coordinator's server certificate into `directory`.
    ///
    /// Sites check the coordinator's address against its SANs, so every name and address they
    /// dial must be listed: DNS names become `dNSName` entries and IPv4/IPv6 literals
    /// `iPAddress` entries. The certificate also allows client authentication, for
    /// coordinator-initiated connections such as health checks, but carries no site URI, so
    /// it can never be accepted as a site.
    public func issueCoordinator(
        hosts: [String] = ["localhost", "127.0.0.1"], to directory: URL, validityDays: Int = 825
    ) throws -> IssuedIdentity {
        guard !hosts.isEmpty else {
            throw PKIError(.invalidCertificate, "the coordinator certificate needs at least one host name or address")
        }
        guard validityDays > 0 else {
            throw PKIError(.invalidCertificate, "coordinator validity must be at least one day, got \(validityDays)")
        }
        var names: [GeneralName] = []
        for host in hosts {
            let name = try Self.generalName(forHost: host)
            if !names.contains(name) { names.append(name) }
        }
        let now = Date()
        return try issueLeaf(
            commonName: SiteName.reserved,
            role: .coordinator,
            alternativeNames: names,
            usages: [.serverAuth, .clientAuth],
            to: directory,
            notValidBefore: now - Self.clockSkew,
            notValidAfter: now + TimeInterval(validityDays) * 86_400)
    }

    private func issueLeaf(
        commonName: String,
        role: IssuedCertificate.Role,
        alternativeNames: [GeneralName],
        usages: [ExtendedKeyUsage.Usage],
        to directory: URL,
        notValidBefore: Date,
        notValidAfter: Date
    ) throws -> IssuedIdentity {
        let what = role == .site ? "site \(SiteName.quoted(commonName))" : "the coordinator"
        guard notValidAfter <= certificate.notValidAfter else {
            throw PKIError(
                .invalidCertificate,
                "a certificate for \(what) valid until \(notValidAfter) would outlive the CA certificate (valid until \(certificate.notValidAfter)); issue a shorter one"
            )
        }
        let identity = IssuedIdentity.Files(directory: directory)
        for url in [identity.certificate, identity.privateKey] where FileManager.default.fileExists(atPath: url.path) {
            throw PKIError(.alreadyExists, "\(url.path) already exists; refusing to overwrite the identity of \(what)")
        }

        let signingKey = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(signingKey.publicKey)
        let leaf: Certificate
        do {
            let authorityKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usages)
                SubjectAlternativeNames(alternativeNames)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: authorityKeyID ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
            }
            leaf = try Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(),
                publicKey: publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: certificate.subject,
                subject: try DistinguishedName { CommonName(commonName) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: privateKey)
        } catch {
            throw PKIError(.invalidCertificate, "cannot build the certificate for \(what)", cause: error)
        }
        let serial = SerialNumberHex.string(leaf.serialNumber)

        // Record before writing: a record without files is harmless, but files without a
        // record would be a certificate `revoke(site:)` cannot find.
        try PEMFile.withExclusiveLock(on: self.directory) {
            var issued = try issuedCertificates()
            issued.append(
                IssuedCertificate(
                    serial: serial, site: commonName, role: role, notValidBefore: notValidBefore,
                    notValidAfter: notValidAfter, directory: directory.path))
            try JSONRecords.write(issued, to: issuedURL)
        }

        try PEMFile.makeDirectory(directory)
        try PEMFile.writeAtomically(
            signingKey.pemRepresentation + "\n", to: identity.privateKey, mode: 0o600, overwrite: false)
        try PEMFile.writeAtomically(try PEMFile.pem(of: leaf), to: identity.certificate, mode: 0o644, overwrite: false)
        try PEMFile.writeAtomically(try PEMFile.pem(of: certificate), to: identity.caCertificate, mode: 0o644)
        return IssuedIdentity(
            directory: directory, certificate: leaf, caCertificate: certificate, name: commonName, role: role)
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
    /// The coordinator re-reads `revoked.json` on every new connection, so the site is refused
    /// from its next connection on; an open session is not cut here.
    @discardableResult
    public func revoke(serial: String) throws -> RevokedCertificate {
        let canonical = try SerialNumberHex.canonical(serial)
        return try PEMFile.withExclusiveLock(on: directory) {
            let site = try issuedCertificates().first { $0.serial == canonical }?.site
            return try appendRevocations([(canonical, site)]).first!
        }
    }

    /// Revokes every certificate `issued.json` records for `site` (a site may have been
    /// re-issued, and all its certificates must go). Returns the entries added now; empty when
    /// all were already revoked.
    @discardableResult
    public func revoke(site: String) throws -> [RevokedCertificate] {
        if site != SiteName.reserved { try SiteName.validate(site) }
        return try PEMFile.withExclusiveLock(on: directory) {
            let serials = try issuedCertificates().filter { $0.site == site }.map(\.serial)
            guard !serials.isEmpty else {
                throw PKIError(
                    .unknownSite,
                    "\(issuedURL.path) records no certificate for site \(SiteName.quoted(site)); revoke it by serial instead"
                )
            }
            let already = try revokedSerials()
            let fresh = serials.filter { !already.contains($0) }
            return try appendRevocations(fresh.map { ($0, site) })
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
        return result
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
}

extension FederationCA: CustomStringConvertible {
    /// Names the CA and its directory, and never the key.
    public var description: String {
        "FederationCA(\(certificate.subject), \(directory.path))"
    }
}
