import Crypto
public import Foundation
import SwiftASN1
public import X509

/// A peer's signing certificate after it passed ``SigningCertificateValidator``: the key a
/// site uses to check that peer's signatures on secure-aggregation keys.
public struct VerifiedSigningCertificate: Sendable, Hashable {
    /// The site the certificate names (its `tessera://site/` URI).
    public let site: String
    /// The certificate's serial, canonical hex.
    public let serial: String
    /// The raw 32-byte Ed25519 public key.
    public let ed25519PublicKey: [UInt8]
    /// When the certificate expires.
    public let validUntil: Date
}

/// Decides whether a signing certificate relayed by the coordinator belongs to a site of this
/// federation, and gives that site's Ed25519 key.
///
/// In the active-adversary protocol the coordinator relays every site's keys, so a site must
/// not take the coordinator's word for whose key is whose: each advertised key is signed with
/// the site's Ed25519 signing key, and this validator ties that key to a site name through the
/// federation CA. A coordinator that invents a site, or swaps one site's key for its own, then
/// needs a certificate the CA never issued. The checks, in order of the error reported:
/// 1. the DER is at most ``maximumCertificateSize`` bytes and parses;
/// 2. it chains to the federation CA (`Verifier` with `RFC5280Policy` at the given time);
/// 3. it is a leaf whose extended key usage is exactly the Tessera signing usage (so a TLS
///    certificate is refused as the wrong purpose), and its key is Ed25519;
/// 4. it names exactly one valid site (``SiteIdentity``);
/// 5. its serial is not revoked.
public struct SigningCertificateValidator: Sendable {
    /// Larger inputs are refused before parsing: an issued signing certificate is about 600
    /// bytes, and the coordinator relays one per peer.
    public static let maximumCertificateSize = 16 * 1024

    /// The federation CA the certificate must chain to.
    public let caCertificate: Certificate
    let revocation: RevocationSource

    public init(caCertificate: Certificate, revocation: RevocationSource) {
        self.caCertificate = caCertificate
        self.revocation = revocation
    }

    /// Validates a DER signing certificate at `now` (the caller's clock, so tests and
    /// simulations run on their own time): ``validateNow(derEncoded:at:)``, for async callers.
    public func validate(derEncoded: [UInt8], at now: Date) async throws -> VerifiedSigningCertificate {
        try validateNow(derEncoded: derEncoded, at: now)
    }
}

/// Tessera's signing-certificate rules, run inside the `Verifier`.
struct SigningCertificatePolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName,
    ]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        // A one-element chain is the trust anchor itself: the CA certificate presented as a leaf.
        if let reason = Self.refusal(of: chain.leaf, isTrustAnchor: chain.count < 2) {
            return .failsToMeetPolicy(reason: reason.message)
        }
        return .meetsPolicy
    }

    /// Why `leaf` is not a signing certificate, or nil when it is one. Key separation: a
    /// certificate with any TLS usage is refused, so a TLS key never signs protocol transcripts.
    static func refusal(of leaf: Certificate, isTrustAnchor: Bool) -> (code: PKIError.Code, message: String)? {
        if isTrustAnchor || ChainCheck.isCertificateAuthority(leaf) {
            return (.wrongPurpose, "is a CA certificate, not a site's signing certificate")
        }
        let usages = ChainCheck.usages(of: leaf).map { Array($0) } ?? []
        if usages.contains(.clientAuth) || usages.contains(.serverAuth) {
            return (
                .wrongPurpose,
                "is a TLS certificate (extended key usage \(usages.map(String.init(describing:)).joined(separator: ", "))), not a signing certificate; the signing certificate is signing-cert.pem"
            )
        }
        if usages != [.tesseraSecureAggregationSigning] {
            return (
                .wrongPurpose,
                "is not a Tessera signing certificate: its extended key usage must be exactly \(ASN1ObjectIdentifier.Tessera.secureAggregationSigning)"
            )
        }
        if Curve25519.Signing.PublicKey(leaf.publicKey) == nil {
            return (.wrongKeyType, "carries a \(leaf.publicKey) key; signing certificates carry Ed25519 keys")
        }
        return nil
    }
}
