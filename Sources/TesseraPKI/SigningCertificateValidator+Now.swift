import Crypto
public import Foundation
import SwiftASN1
public import X509

extension SigningCertificateValidator {
    /// The certificate extensions a signing certificate may mark critical: the ones checked here.
    static let understoodCriticalExtensions: Set<ASN1ObjectIdentifier> = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName,
    ]

    /// Validates a DER signing certificate at `now`, synchronously: what a site runs over every
    /// certificate of a round's roster from inside the round's (synchronous) protocol logic.
    ///
    /// Decision: the federation CA issues signing certificates directly, never through an
    /// intermediate, so the chain is one signature. It is checked here with the CA's key, with the
    /// issuer's name, both validity windows, the critical extensions and the signing profile, the
    /// checks `Verifier` would make on a chain of two; a certificate issued through anything else
    /// is refused as not issued by this federation.
    public func validateNow(derEncoded: [UInt8], at now: Date) throws -> VerifiedSigningCertificate {
        let certificate = try ChainCheck.parse(
            derEncoded: derEncoded, maximumSize: Self.maximumCertificateSize, what: "the signing certificate")
        let subject = ChainCheck.describe(certificate, as: "the signing certificate")
        if certificate == caCertificate {
            throw PKIError(.wrongPurpose, "\(subject) is a CA certificate, not a site's signing certificate")
        }
        guard certificate.issuer == caCertificate.subject,
            caCertificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            throw PKIError(
                .untrustedIssuer,
                "\(subject) was issued by another CA (\(certificate.issuer)), not by this federation's CA \(caCertificate.subject)"
            )
        }
        try ChainCheck.checkValidity(of: certificate, caCertificate: caCertificate, at: now, subject: subject)
        for element in certificate.extensions where element.critical {
            guard Self.understoodCriticalExtensions.contains(element.oid) else {
                throw PKIError(.policyFailure, "\(subject) carries an unsupported critical extension \(element.oid)")
            }
        }
        if let reason = SigningCertificatePolicy.refusal(of: certificate, isTrustAnchor: false) {
            throw PKIError(reason.code, "\(subject) \(reason.message)")
        }
        guard let key = Curve25519.Signing.PublicKey(certificate.publicKey) else {
            throw PKIError(.wrongKeyType, "\(subject) does not carry an Ed25519 key")
        }
        let site = try SiteIdentity.siteName(of: certificate)
        let serial = certificate.serialHex
        let revoked = try revocation.revokedSerials(
            caCertificate: caCertificate, refusing: "the signing certificate of site \(site) (serial \(serial))")
        if revoked.contains(serial) {
            throw PKIError(.revoked, "the signing certificate of site \(site) (serial \(serial)) has been revoked")
        }
        return VerifiedSigningCertificate(
            site: site, serial: serial, ed25519PublicKey: Array(key.rawRepresentation),
            validUntil: certificate.notValidAfter)
    }
}
