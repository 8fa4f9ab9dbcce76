public import Foundation
public import TesseraFederation

extension SigningCertificateValidator: SigningCredentialVerifier {
    /// ``validateNow(derEncoded:at:)`` at the current time: how a site checks the certificates
    /// of a round's roster, and the coordinator the one a site offers in its Hello.
    public func verify(certificate: [UInt8]) throws -> (site: SiteID, publicKey: [UInt8]) {
        let verified = try validateNow(derEncoded: certificate, at: Date())
        return (verified.site, verified.ed25519PublicKey)
    }
}
