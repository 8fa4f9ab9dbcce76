public import Foundation
public import X509

/// The federation's public trust material, as the coordinator (and anyone else who checks
/// sites) is given it: `ca.pem` and `revoked.signed`, never `ca-key.pem`.
///
/// The coordinator reads revocations from `revoked.signed`, whose CA signature it checks on
/// every read, so the folder needs nothing the CA's private folder keeps to itself.
/// ``open(_:)`` refuses a folder that holds the CA key: a coordinator started with the CA
/// folder would carry the power to add sites wherever it runs.
public struct TrustFolder: Sendable {
    /// The folder, next to the CA's private folder, that `tessera pki` keeps up to date.
    public static let defaultName = "trust"

    public let directory: URL
    /// The federation CA certificate (`ca.pem`).
    public let caCertificate: Certificate

    public var caCertificateURL: URL { directory.appendingPathComponent(FederationCA.certificateFileName) }
    public var signedRevocationListURL: URL {
        directory.appendingPathComponent(FederationCA.signedRevocationListFileName)
    }

    /// Opens a trust folder: refuses one that holds `ca-key.pem` (`exposedCAKey`, naming what
    /// to move), one without `ca.pem` or `revoked.signed`, and a `revoked.signed` that does not
    /// verify against `ca.pem`.
    public static func open(_ directory: URL) throws -> TrustFolder {
        try refuseCAKey(in: directory)
        let certificate = try PEMFile.loadCertificate(
            from: directory.appendingPathComponent(FederationCA.certificateFileName))
        let folder = TrustFolder(directory: directory, caCertificate: certificate)
        guard FileManager.default.fileExists(atPath: folder.signedRevocationListURL.path) else {
            throw PKIError(
                .notFound,
                "\(folder.signedRevocationListURL.path) does not exist; a trust folder holds ca.pem and revoked.signed (write one with `tessera pki publish --ca CA-FOLDER --out \(directory.path)`)"
            )
        }
        _ = try folder.signedRevocationList()
        return folder
    }

    /// Throws `exposedCAKey` if `directory` holds the CA's private key.
    public static func refuseCAKey(in directory: URL) throws {
        let key = directory.appendingPathComponent(FederationCA.privateKeyFileName)
        guard FileManager.default.fileExists(atPath: key.path) else { return }
        throw PKIError(
            .exposedCAKey,
            "\(directory.path) holds the federation CA's private key (\(FederationCA.privateKeyFileName)); the coordinator runs without it. Give the coordinator a trust folder with only ca.pem and revoked.signed: `tessera pki publish --ca \(directory.path) --out \(directory.deletingLastPathComponent().appendingPathComponent(defaultName).path)` writes one, then start it with --trust on that folder and keep \(directory.path) off the coordinator's machine"
        )
    }

    /// The current `revoked.signed`, read and verified against `ca.pem`.
    public func signedRevocationList() throws -> SignedRevocationList {
        try SignedRevocationList.load(from: signedRevocationListURL, caCertificate: caCertificate)
    }

    /// The revoked serials of the current `revoked.signed` (canonical hex).
    public func revokedSerials() throws -> Set<String> {
        try signedRevocationList().serials
    }

    /// Where validators read revocations: this folder's `revoked.signed`, verified on every read.
    public var revocation: RevocationSource { .signedFile(signedRevocationListURL) }

    /// A site validator that re-reads and verifies `revoked.signed` on every validation.
    public func peerValidator() -> PeerValidator {
        PeerValidator(caCertificate: caCertificate, revocation: revocation)
    }

    /// A signing-certificate validator that re-reads and verifies `revoked.signed`.
    public func signingValidator() -> SigningCertificateValidator {
        SigningCertificateValidator(caCertificate: caCertificate, revocation: revocation)
    }
}

/// The folders `tessera pki init` lays out for the federation's operator, under one root:
/// - `ca-private/` (mode 0700): the CA (``FederationCA``): `ca-key.pem`, `ca.pem`,
///   `revoked.json`, `revoked.signed`, `issued.json`. It never leaves the operator's machine.
/// - `trust/`: ``TrustFolder``: `ca.pem` and `revoked.signed`, which the CA rewrites on every
///   revocation; the coordinator is given this folder (or a copy of it).
public struct OperatorFolders: Sendable {
    public static let privateFolderName = "ca-private"

    public let root: URL
    public var privateDirectory: URL { root.appendingPathComponent(Self.privateFolderName) }
    public var trustDirectory: URL { root.appendingPathComponent(TrustFolder.defaultName) }

    public init(root: URL) { self.root = root }

    /// Whether `root` is laid out this way (its `ca-private/` holds a CA key).
    public var exists: Bool {
        FileManager.default.fileExists(
            atPath: privateDirectory.appendingPathComponent(FederationCA.privateKeyFileName).path)
    }
}
