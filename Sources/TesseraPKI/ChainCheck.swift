import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// The chain check the signing and coordinator validators share: swift-certificates'
/// `Verifier` with `RFC5280Policy` evaluated at an injected time plus the role's own policy,
/// so no chain counts as valid without the role check. When it fails, the failure is explained
/// in a fixed order (wrong federation, then validity dates, then the role's own reasons), so a
/// certificate that is wrong in several ways always gets the same, most fundamental, error.
enum ChainCheck {
    /// - Parameters:
    ///   - subject: how messages name the certificate, e.g. `the signing certificate of site "a" (serial 4f…)`.
    ///   - explain: the role's checks, one by one; returns the error for the first that fails.
    static func verify(
        chain: [Certificate],
        caCertificate: Certificate,
        at now: Date,
        subject: String,
        policy: some VerifierPolicy,
        explain: (Certificate) async -> PKIError?
    ) async throws {
        guard let leaf = chain.first else {
            throw PKIError(.invalidCertificate, "no certificate was presented")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([caCertificate])) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            policy
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        guard case .couldNotValidate(let failures) = result else { return }

        if failures.isEmpty {
            throw PKIError(
                .untrustedIssuer,
                "\(subject) was issued by another CA (\(leaf.issuer)), not by this federation's CA \(caCertificate.subject), or carries an unsupported critical extension"
            )
        }
        try checkValidity(of: leaf, caCertificate: caCertificate, at: now, subject: subject)
        if let error = await explain(leaf) {
            throw error
        }
        let reasons = Set(failures.map { $0.policyFailureReason.description }).sorted()
        throw PKIError(.policyFailure, "\(subject) failed validation: \(reasons.joined(separator: "; "))")
    }

    /// The validity windows of `leaf` and of the CA at `now`, each failure with its own code.
    static func checkValidity(of leaf: Certificate, caCertificate: Certificate, at now: Date, subject: String) throws {
        if leaf.notValidAfter < now {
            throw PKIError(.expired, "\(subject) expired at \(leaf.notValidAfter)")
        }
        if leaf.notValidBefore > now {
            throw PKIError(.notYetValid, "\(subject) is not valid before \(leaf.notValidBefore)")
        }
        if caCertificate.notValidAfter < now {
            throw PKIError(
                .expired,
                "the federation CA certificate \(caCertificate.subject) expired at \(caCertificate.notValidAfter)")
        }
        if caCertificate.notValidBefore > now {
            throw PKIError(
                .notYetValid,
                "the federation CA certificate \(caCertificate.subject) is not valid before \(caCertificate.notValidBefore)"
            )
        }
    }

    /// Parses a DER certificate after checking its size, so an oversized input costs nothing.
    static func parse(derEncoded: [UInt8], maximumSize: Int, what: String) throws -> Certificate {
        guard derEncoded.count <= maximumSize else {
            throw PKIError(
                .tooLarge, "\(what) is \(derEncoded.count) bytes; at most \(maximumSize) are accepted")
        }
        do {
            return try Certificate(derEncoded: derEncoded)
        } catch {
            throw PKIError(.invalidCertificate, "\(what) is not a DER X.509 certificate", cause: error)
        }
    }

    /// The leaf's extended key usages, or nil when it has none or they do not parse.
    static func usages(of certificate: Certificate) -> ExtendedKeyUsage? {
        (try? certificate.extensions.extendedKeyUsage) ?? nil
    }

    static func isCertificateAuthority(_ certificate: Certificate) -> Bool {
        if case .isCertificateAuthority = try? certificate.extensions.basicConstraints { return true }
        return false
    }

    /// How a message names a certificate before its identity is verified: the site it claims,
    /// when it claims one, and always the serial.
    static func describe(_ certificate: Certificate, as kind: String) -> String {
        if let site = try? SiteIdentity.siteName(of: certificate) {
            return "\(kind) of site \(SiteName.quoted(site)) (serial \(certificate.serialHex))"
        }
        return "\(kind) \(certificate.subject) (serial \(certificate.serialHex))"
    }
}
