import Crypto
public import Foundation
public import X509

/// A site's signing identity: the Ed25519 key it signs its secure-aggregation keys with, and
/// the certificate that binds that key to its site name.
///
/// Decision: each site holds two certificates from the federation CA. `cert.pem` (P-256,
/// `clientAuth`) authenticates TLS, and stays P-256 because every TLS stack the runtime meets
/// supports it. `signing-cert.pem` (Ed25519, critical key usage `digitalSignature`, extended
/// key usage only ``SwiftASN1/ASN1ObjectIdentifier/Tessera/secureAggregationSigning``) signs
/// protocol transcripts, and Ed25519 is what the secure-aggregation code (libsodium) verifies.
/// Both carry the same CN and `tessera://site/<name>` URI. Neither can stand in for the other,
/// so the TLS key never signs protocol transcripts and a leaked signing key opens no
/// connection.
///
/// Files, in the site's identity directory, beside `cert.pem`, `key.pem` and `ca.pem`:
/// - `signing-cert.pem`: the signing certificate, PEM;
/// - `signing-key.pem`: the Ed25519 key, PKCS#8 PEM, mode 0600.
public struct SiteSigningIdentity: Sendable {
    public static let certificateFileName = "signing-cert.pem"
    public static let privateKeyFileName = "signing-key.pem"

    /// The identity directory it was loaded from (or issued into).
    public let directory: URL
    /// The site name the certificate carries.
    public let site: String
    /// The signing certificate.
    public let certificate: Certificate
    /// The certificate's DER bytes, as sent to peers through the coordinator.
    public let certificateDER: [UInt8]
    private let privateKey: Curve25519.Signing.PrivateKey

    init(directory: URL, site: String, certificate: Certificate, privateKey: Curve25519.Signing.PrivateKey) throws {
        self.directory = directory
        self.site = site
        self.certificate = certificate
        self.certificateDER = try certificate.derBytes()
        self.privateKey = privateKey
    }

    /// The certificate's serial, canonical hex.
    public var serial: String { certificate.serialHex }
    /// The raw 32-byte Ed25519 public key.
    public var ed25519PublicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }
    /// When the signing certificate expires.
    public var validUntil: Date { certificate.notValidAfter }

    /// Lends the 32-byte Ed25519 private seed (RFC 8032) to `body`, for building the signing
    /// key of another library (libsodium's `crypto_sign_seed_keypair`). Scoped, so no caller
    /// keeps a copy by accident; `body` must not store or log it.
    public func withPrivateKeySeed<R>(_ body: ([UInt8]) throws -> R) rethrows -> R {
        try body(Array(privateKey.rawRepresentation))
    }

    /// Loads `signing-cert.pem` and `signing-key.pem` from an identity directory, checking that
    /// the key belongs to the certificate, that `ca.pem` signed it, that it is a signing
    /// certificate, and that it names the same site as `cert.pem` when that is present: a
    /// mixed-up directory fails at start-up with the file named.
    public static func load(from directory: URL) throws -> SiteSigningIdentity {
        let files = IssuedIdentity.Files(directory: directory)
        guard FileManager.default.fileExists(atPath: files.signingCertificate.path) else {
            throw PKIError(
                .notFound,
                "\(directory.path) has no signing certificate (\(certificateFileName)); the federation operator creates it with `tessera pki issue --ca CA_DIR --site NAME --out \(directory.path) --signing-only`"
            )
        }
        let certificate = try PEMFile.loadCertificate(from: files.signingCertificate)
        let caCertificate = try PEMFile.loadCertificate(from: files.caCertificate)
        guard caCertificate.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw PKIError(
                .untrustedIssuer, "\(files.signingCertificate.path) was not signed by \(files.caCertificate.path)")
        }
        if let reason = SigningCertificatePolicy.refusal(of: certificate, isTrustAnchor: false) {
            throw PKIError(reason.code, "\(files.signingCertificate.path) \(reason.message)")
        }
        let key = try PEMFile.loadSigningKey(from: files.signingPrivateKey)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw PKIError(
                .invalidKey,
                "\(files.signingPrivateKey.path) is not the private key of \(files.signingCertificate.path)")
        }
        let site = try SiteIdentity.siteName(of: certificate)
        if FileManager.default.fileExists(atPath: files.certificate.path) {
            let tls = try SiteIdentity.siteName(of: PEMFile.loadCertificate(from: files.certificate))
            guard tls == site else {
                throw PKIError(
                    .invalidIdentity,
                    "\(files.signingCertificate.path) names site \(SiteName.quoted(site)) but \(files.certificate.path) names site \(SiteName.quoted(tls)); they must be the same site"
                )
            }
        }
        return try SiteSigningIdentity(directory: directory, site: site, certificate: certificate, privateKey: key)
    }
}

extension SiteSigningIdentity: CustomStringConvertible {
    /// Names the site, serial and directory, and never the key.
    public var description: String {
        "SiteSigningIdentity(site \(site), serial \(serial), \(directory.path))"
    }
}

extension SiteSigningIdentity: CustomReflectable {
    /// `dump` and debuggers see the same fields as ``description``, never the key.
    public var customMirror: Mirror {
        Mirror(self, children: ["site": site, "serial": serial, "directory": directory.path])
    }
}
