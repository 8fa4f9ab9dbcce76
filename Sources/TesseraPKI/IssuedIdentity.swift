public import Foundation
public import X509

/// A site's (or the coordinator's, a researcher's, an operator's) TLS identity as written by ``FederationCA``: a directory
/// with `cert.pem`, `key.pem` (mode 0600) and `ca.pem`, plus `revoked.signed`, and for a site
/// its signing certificate and key (``SiteSigningIdentity``).
///
/// `ca.pem` travels with the identity so a site needs exactly one directory to connect: its
/// own certificate and key to present, and the federation CA to check the coordinator against.
/// The private key is not held by this value; ``privateKey()`` reads it when the TLS
/// configuration is built, so it is not kept in memory (or in a `print`) longer than needed.
public struct IssuedIdentity: Sendable {
    public static let certificateFileName = "cert.pem"
    public static let privateKeyFileName = "key.pem"
    public static let caCertificateFileName = "ca.pem"

    /// The paths of an identity directory's files.
    public struct Files: Sendable, Hashable {
        public var directory: URL
        public var certificate: URL { directory.appendingPathComponent(IssuedIdentity.certificateFileName) }
        public var privateKey: URL { directory.appendingPathComponent(IssuedIdentity.privateKeyFileName) }
        public var caCertificate: URL { directory.appendingPathComponent(IssuedIdentity.caCertificateFileName) }
        /// A site's signing certificate (``SiteSigningIdentity``).
        public var signingCertificate: URL {
            directory.appendingPathComponent(SiteSigningIdentity.certificateFileName)
        }
        /// A site's Ed25519 signing key, mode 0600.
        public var signingPrivateKey: URL {
            directory.appendingPathComponent(SiteSigningIdentity.privateKeyFileName)
        }
        /// The newest CA-signed revocation list the identity was given (``SignedRevocationList``).
        public var signedRevocationList: URL {
            directory.appendingPathComponent(SignedRevocationList.fileName)
        }

        public init(directory: URL) { self.directory = directory }
    }

    /// The identity directory.
    public let directory: URL
    /// The leaf certificate (`cert.pem`).
    public let certificate: Certificate
    /// The federation CA certificate (`ca.pem`).
    public let caCertificate: Certificate
    /// The site, researcher or operator name, or `coordinator`.
    public let name: String
    public let role: IssuedCertificate.Role

    init(
        directory: URL, certificate: Certificate, caCertificate: Certificate, name: String, role: IssuedCertificate.Role
    ) {
        self.directory = directory
        self.certificate = certificate
        self.caCertificate = caCertificate
        self.name = name
        self.role = role
    }

    /// The file paths of this identity.
    public var files: Files { Files(directory: directory) }

    /// The leaf's serial in canonical hex, the form `revoke(serial:)` and `revoked.json` use.
    public var serial: String { SerialNumberHex.string(certificate.serialNumber) }

    /// When the certificate expires and the site must be re-issued.
    public var validUntil: Date { certificate.notValidAfter }

    /// Loads an identity directory, checking that `key.pem` belongs to `cert.pem` and that
    /// `cert.pem` was signed by `ca.pem`: a mixed-up directory fails here, at start-up, with the
    /// file named, instead of as an opaque TLS handshake failure later.
    public static func load(from directory: URL) throws -> IssuedIdentity {
        let files = Files(directory: directory)
        let certificate = try PEMFile.loadCertificate(from: files.certificate)
        let caCertificate = try PEMFile.loadCertificate(from: files.caCertificate)
        let key = try PEMFile.loadPrivateKey(from: files.privateKey)
        guard key.publicKey == certificate.publicKey else {
            throw PKIError(.invalidKey, "\(files.privateKey.path) is not the private key of \(files.certificate.path)")
        }
        guard caCertificate.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw PKIError(.untrustedIssuer, "\(files.certificate.path) was not signed by \(files.caCertificate.path)")
        }
        let peer = try PeerIdentity(certificate: certificate)
        let role: IssuedCertificate.Role =
            switch peer.role {
            case .site: .site
            case .coordinator: .coordinator
            case .researcher: .researcher
            case .operator: .operator
            }
        return IssuedIdentity(
            directory: directory, certificate: certificate, caCertificate: caCertificate, name: peer.name, role: role)
    }

    /// Reads `key.pem` (refusing it if other users can read it).
    public func privateKey() throws -> Certificate.PrivateKey {
        try PEMFile.loadPrivateKey(from: files.privateKey)
    }
}

extension IssuedIdentity: CustomStringConvertible {
    public var description: String {
        "IssuedIdentity(\(role.rawValue) \(name), serial \(serial), \(directory.path))"
    }
}
