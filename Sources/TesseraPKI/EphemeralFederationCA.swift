import Crypto
public import Foundation
import Synchronization
public import X509

/// A federation CA that lives in memory only, for simulations and tests: the same certificate
/// profiles and checks as ``FederationCA``, without files, locks or an operator.
///
/// It is cheap to set up (one P-256 key and certificate, then one Ed25519 key and one
/// signature per site), so a simulation can run the active-adversary protocol with real
/// certificates. Its key never leaves the process; nothing it issues is meant to outlive it.
public final class EphemeralFederationCA: Sendable {
    /// The CA certificate peers validate against.
    public let caCertificate: Certificate
    private let issuer: LeafIssuer
    private let revoked = Mutex<Set<String>>([])
    private let sequence = Mutex<UInt64>(0)

    /// A fresh CA with its own P-256 key.
    /// - Parameters:
    ///   - notValidBefore, notValidAfter: the CA's validity; every certificate it issues must
    ///     end by `notValidAfter`. The defaults cover a day back and ten years ahead.
    public init(
        name: String = "Tessera ephemeral CA",
        notValidBefore: Date = Date() - 86_400,
        notValidAfter: Date = Date() + 3650 * 86_400
    ) throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let certificate = try LeafIssuer.makeCA(
            name: name, key: key, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        self.caCertificate = certificate
        self.issuer = LeafIssuer(caCertificate: certificate, caKey: key)
    }

    /// Issues a site's signing certificate with a fresh Ed25519 key.
    public func issueSigningCredential(
        site: String, notValidBefore: Date, notValidAfter: Date
    ) throws -> SigningCredential {
        try SiteName.validate(site)
        let key = Curve25519.Signing.PrivateKey()
        let certificate = try issuer.siteSigning(
            site: site, publicKey: key.publicKey, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        return SigningCredential(
            site: site, serial: certificate.serialHex, certificateDER: try certificate.derBytes(),
            ed25519Seed: Array(key.rawRepresentation))
    }

    /// Issues a site's TLS client certificate (its key is discarded: tests use it to present
    /// a site's certificate where it does not belong).
    public func issueSiteCertificate(site: String, notValidBefore: Date, notValidAfter: Date) throws -> Certificate {
        try SiteName.validate(site)
        return try issuer.siteTLS(
            site: site, publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    /// Issues a coordinator server certificate for `hosts` (its key is discarded).
    public func issueCoordinatorCertificate(
        hosts: [String] = ["localhost", "127.0.0.1"], notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        try issuer.coordinator(
            hosts: hosts, publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    /// Revokes a serial (any hex spelling); validators from this CA refuse it from their next
    /// validation on.
    public func revoke(serial: String) throws {
        let canonical = try SerialNumberHex.canonical(serial)
        revoked.withLock { _ = $0.insert(canonical) }
    }

    /// The revoked serials, canonical hex.
    public var revokedSerials: Set<String> { revoked.withLock { $0 } }

    /// A signed revocation list of the current serials, with the next sequence number, as the
    /// file-backed CA writes `revoked.signed`.
    public func signedRevocationList(issuedAt: Date) throws -> SignedRevocationList {
        let next = sequence.withLock { value in
            value += 1
            return value
        }
        return try SignedRevocationList.sign(
            serials: revokedSerials, sequence: next, issuedAt: issuedAt, caCertificate: caCertificate,
            caKey: issuer.caKey)
    }

    /// A validator bound to this CA and its live revocations.
    public func signingValidator() -> SigningCertificateValidator {
        SigningCertificateValidator(caCertificate: caCertificate, revocation: revocationSource)
    }

    /// A coordinator-certificate validator bound to this CA and its live revocations.
    public func coordinatorValidator() -> CoordinatorCertificateValidator {
        CoordinatorCertificateValidator(caCertificate: caCertificate, revocation: revocationSource)
    }

    private var revocationSource: RevocationSource {
        .provider { [self] in self.revokedSerials }
    }
}

extension EphemeralFederationCA: CustomStringConvertible {
    /// Names the CA, and never the key.
    public var description: String { "EphemeralFederationCA(\(caCertificate.subject))" }
}

extension EphemeralFederationCA {
    /// A site's signing certificate and the Ed25519 seed of its key, from an
    /// ``EphemeralFederationCA``.
    public struct SigningCredential: Sendable {
        public let site: String
        /// The certificate's serial, canonical hex (what ``EphemeralFederationCA/revoke(serial:)`` takes).
        public let serial: String
        /// The signing certificate, DER.
        public let certificateDER: [UInt8]
        /// The 32-byte Ed25519 private seed (RFC 8032). Simulation only: a real site's seed stays
        /// in `signing-key.pem` and is lent out by ``SiteSigningIdentity/withPrivateKeySeed(_:)``.
        public let ed25519Seed: [UInt8]
    }
}

extension EphemeralFederationCA.SigningCredential: CustomStringConvertible, CustomReflectable {
    /// Names the site and serial, and never the seed.
    public var description: String { "SigningCredential(site \(site), serial \(serial))" }

    public var customMirror: Mirror { Mirror(self, children: ["site": site, "serial": serial]) }
}
