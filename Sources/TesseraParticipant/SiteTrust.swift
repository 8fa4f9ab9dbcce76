public import Foundation
public import Logging
import Synchronization
import TesseraCrypto
public import TesseraFederation
public import TesseraPKI
import TesseraSupport
public import X509

/// What a site trusts, from its identity folder: the federation CA, the newest CA-signed
/// revocation list it has seen, and its own signing key. It checks its peers' signing
/// certificates and the coordinator's certificate itself, so a coordinator can neither slip in
/// a key of its own nor keep a revoked certificate in use.
///
/// The revocation list starts as `revoked.signed` in the identity folder (`tessera pki issue`
/// puts the current one there) and is replaced by any newer list a Welcome relays whose CA
/// signature verifies; the newer list is written back to the folder, so a restart keeps it.
public final class SiteTrust: Sendable {
    public static let revocationListFileName = "revoked.signed"

    public let caCertificate: Certificate
    /// The site's signing key and certificate; `nil` when the folder has none.
    public let signer: SiteSigner?
    private let revocationFile: URL?
    private let list: Mutex<SignedRevocationList?>
    private let logger: Logger

    /// Loads the trust of the identity folder `directory` (`ca.pem`, optional `revoked.signed`,
    /// optional `signing-cert.pem`/`signing-key.pem`). A revocation list that does not verify is
    /// a startup error: the site would otherwise run without the revocations it was given.
    public convenience init(identityDirectory directory: URL, caCertificate: URL, logger: Logger) throws {
        let ca = try PEMFile.loadCertificate(from: caCertificate)
        let file = directory.appendingPathComponent(Self.revocationListFileName)
        var list: SignedRevocationList?
        if FileManager.default.fileExists(atPath: file.path) {
            list = try SignedRevocationList.load(from: file, caCertificate: ca)
        }
        var signer: SiteSigner?
        do {
            let identity = try SiteSigningIdentity.load(from: directory)
            signer = try identity.withPrivateKeySeed { seed in
                SiteSigner(key: try Ed25519PrivateKey(seed: seed), certificate: identity.certificateDER)
            }
        } catch let error as PKIError where error.code == .notFound {
            logger.warning(
                "no signing certificate in \(directory.path): this site cannot take part in active-adversary rounds (\(error.message))"
            )
        }
        self.init(caCertificate: ca, signer: signer, revocationList: list, revocationFile: file, logger: logger)
    }

    /// Trust held in memory (tests and simulations): nothing is read or written.
    public init(
        caCertificate: Certificate, signer: SiteSigner?, revocationList: SignedRevocationList? = nil,
        revocationFile: URL? = nil, logger: Logger
    ) {
        self.caCertificate = caCertificate
        self.signer = signer
        self.revocationFile = revocationFile
        self.list = Mutex(revocationList)
        self.logger = logger
    }

    /// The serials the site's newest list revokes.
    public var revokedSerials: Set<String> { list.withLock { $0?.serials ?? [] } }

    /// The sequence number of the list the site holds (0: none).
    public var revocationSequence: UInt64 { list.withLock { $0?.sequence ?? 0 } }

    /// Considers a list the coordinator relayed: adopted (and written to the folder) when the
    /// CA's signature verifies and it is newer than the one held; otherwise logged and ignored.
    public func offer(signedRevocationList bytes: [UInt8]) {
        let offered: SignedRevocationList
        do {
            offered = try SignedRevocationList.verify(bytes, caCertificate: caCertificate)
        } catch {
            logger.warning("the coordinator relayed a revocation list that does not verify; kept ours: \(error)")
            return
        }
        let adopted = list.withLock { current in
            guard offered.isNewer(than: current) else { return false }
            current = offered
            return true
        }
        guard adopted else { return }
        logger.info("adopted revocation list #\(offered.sequence) (\(offered.serials.count) revoked certificates)")
        guard let revocationFile else { return }
        do {
            try DurableFile.write(Data(offered.encoded), to: revocationFile, permissions: 0o644)
        } catch {
            logger.warning("could not save the revocation list to \(revocationFile.path): \(error)")
        }
    }

    /// Checks peers' signing certificates against the federation CA and this site's list.
    public var signingVerifier: any SigningCredentialVerifier {
        SigningCertificateValidator(caCertificate: caCertificate, revocation: .provider { [self] in revokedSerials })
    }

    /// The site's check of the coordinator's certificate (see ``ClientSecurity``).
    public var coordinatorCheck: CoordinatorCertificateCheck {
        let validator = CoordinatorCertificateValidator(
            caCertificate: caCertificate, revocation: .provider { [self] in revokedSerials })
        let logger = logger
        return { chain, host in
            do {
                _ = try await validator.validate(derEncodedChain: chain, host: host, at: Date())
            } catch {
                logger.error("refusing the coordinator's certificate: \(error)")
                throw error
            }
        }
    }
}
