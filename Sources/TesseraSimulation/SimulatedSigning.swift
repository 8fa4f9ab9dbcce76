public import Foundation
import Synchronization
public import TesseraCrypto
public import TesseraFederation
public import TesseraPKI

/// The signing credentials of a simulated federation: an in-memory federation CA that issues
/// each simulated site a real Ed25519 signing certificate (on first use, then kept), and the
/// validator that sites and the coordinator check those certificates with. A simulation then
/// runs the active-adversary protocol exactly as a deployment does, certificates included.
public final class SimulatedSigning: Sendable {
    public let authority: EphemeralFederationCA
    private let signers = Mutex<[SiteID: SiteSigner]>([:])

    public init() throws {
        authority = try EphemeralFederationCA()
    }

    /// The signing key and certificate of `site`, valid from a day ago for a year.
    public func signer(for site: SiteID) throws -> SiteSigner {
        if let signer = signers.withLock({ $0[site] }) { return signer }
        let now = Date()
        let credential = try authority.issueSigningCredential(
            site: site, notValidBefore: now - 86_400, notValidAfter: now + 365 * 86_400)
        let signer = SiteSigner(
            key: try Ed25519PrivateKey(seed: credential.ed25519Seed), certificate: credential.certificateDER)
        return signers.withLock { signers in
            if let existing = signers[site] { return existing }
            signers[site] = signer
            return signer
        }
    }

    /// What every simulated site (and a coordinator of simulated sites) checks certificates with.
    public var verifier: any SigningCredentialVerifier { authority.signingValidator() }
}
