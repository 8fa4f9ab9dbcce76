public import Foundation
import SwiftASN1
public import X509

/// Decides, on each new connection, whether the peer is a site of this federation and which
/// (``validate(chain:)``), or, for the requests of researchers and operators, which peer of
/// which role it is (``identify(chain:)``).
///
/// The coordinator calls ``validate(leaf:)`` with the certificate the peer presented in the
/// mTLS handshake (grpc-swift-nio-transport exposes it to the server as `peerCertificate`) and
/// records rounds under the returned name. The checks, in order:
/// 1. the certificate chains to the federation CA, using swift-certificates' `Verifier` with
///    `RFC5280Policy` evaluated at the current time (signature, validity of every certificate
///    in the chain, basic constraints) plus Tessera's client policy;
/// 2. the leaf is not a CA and allows TLS client authentication (`clientAuth`), so the
///    coordinator's own server certificate or the CA certificate cannot log in as a site;
/// 3. the leaf names exactly one valid site (``SiteIdentity``);
/// 4. its serial is not revoked.
///
/// When built with a revocation-list URL the list is re-read on every call, which is how
/// "revocation takes effect on the next connection" holds without a restart. If the list
/// cannot be read the connection is refused: failing open would let a revoked site back in
/// whenever the file is briefly missing.
public struct PeerValidator: Sendable {
    /// The federation CA the peer must chain to.
    public let caCertificate: Certificate
    private let revocation: RevocationSource

    /// A validator that asks `revocation` on every validation.
    public init(caCertificate: Certificate, revocation: RevocationSource) {
        self.caCertificate = caCertificate
        self.revocation = revocation
    }

    /// A validator with a fixed set of revoked serials (any hex spelling).
    public init(caCertificate: Certificate, revokedSerials: Set<String>) {
        self.init(caCertificate: caCertificate, revocation: .serials(revokedSerials))
    }

    /// A validator that re-reads `revoked.json` at `revocationList` on every validation.
    public init(caCertificate: Certificate, revocationList: URL) {
        self.init(caCertificate: caCertificate, revocation: .file(revocationList))
    }

    /// A validator that asks `revokedSerials` on every validation (for a coordinator that keeps
    /// revocations in its own store). Serials must be canonical hex (``SerialNumberHex``).
    public init(caCertificate: Certificate, revokedSerials: @escaping @Sendable () throws -> Set<String>) {
        self.init(caCertificate: caCertificate, revocation: .provider(revokedSerials))
    }

    /// Validates a peer's leaf certificate and returns its site name.
    public func validate(leaf: Certificate) async throws -> String {
        try await validate(chain: [leaf])
    }

    /// Validates a presented chain, leaf first; any further certificates are treated as
    /// untrusted intermediates. Returns the leaf's site name; a researcher's or operator's
    /// certificate is refused (``PKIError/Code-swift.struct/wrongRole``): it never joins rounds.
    public func validate(chain: [Certificate]) async throws -> String {
        let leaf = try await verify(chain: chain)
        let site = try SiteIdentity.siteName(of: leaf)
        try refuseRevoked(leaf, as: "site \(site)")
        return site
    }

    /// Validates a client's chain as ``validate(chain:)`` does (the federation CA, the dates,
    /// `clientAuth`, revocation), for any role, and returns the role and name it proves: what
    /// the coordinator authorizes a request by (``PeerIdentity/allows(_:)``), e.g. only a
    /// researcher or an operator may submit experiments.
    public func identify(chain: [Certificate]) async throws -> PeerIdentity {
        let leaf = try await verify(chain: chain)
        let peer = try PeerIdentity(certificate: leaf)
        try refuseRevoked(leaf, as: "\(peer)")
        return peer
    }

    /// Parses DER certificates (as TLS libraries hand them over) and identifies the peer
    /// (``identify(chain:)``).
    public func identify(derEncodedChain: [[UInt8]]) async throws -> PeerIdentity {
        try await identify(chain: try Self.parse(derEncodedChain))
    }

    private func refuseRevoked(_ leaf: Certificate, as who: String) throws {
        let serial = SerialNumberHex.string(leaf.serialNumber)
        let revoked = try revocation.revokedSerials(caCertificate: caCertificate, refusing: who)
        if revoked.contains(serial) {
            throw PKIError(.revoked, "the certificate of \(who) (serial \(serial)) has been revoked")
        }
    }

    /// The chain checks every client passes, whatever its role; returns the leaf.
    private func verify(chain: [Certificate]) async throws -> Certificate {
        guard let leaf = chain.first else {
            throw PKIError(.invalidCertificate, "the peer presented no certificate")
        }
        let serial = SerialNumberHex.string(leaf.serialNumber)
        let who = "certificate \(leaf.subject) (serial \(serial))"
        let now = Date()

        try await ChainCheck.verify(
            chain: chain, caCertificate: caCertificate, at: now, subject: who, policy: TesseraClientPolicy()
        ) { leaf in
            if ChainCheck.usages(of: leaf)?.contains(.tesseraSecureAggregationSigning) == true {
                return PKIError(
                    .wrongPurpose,
                    "\(who) is a site's signing certificate; it cannot authenticate a TLS connection (use cert.pem)")
            }
            if !Self.allowsClientAuth(leaf) {
                return PKIError(
                    .missingClientAuth,
                    "\(who) does not allow TLS client authentication (extended key usage clientAuth)")
            }
            return nil
        }
        return leaf
    }

    /// Parses DER certificates (as TLS libraries hand them over) and validates them.
    public func validate(derEncodedChain: [[UInt8]]) async throws -> String {
        try await validate(chain: try Self.parse(derEncodedChain))
    }

    private static func parse(_ derEncodedChain: [[UInt8]]) throws -> [Certificate] {
        try derEncodedChain.enumerated().map { index, der in
            do {
                return try Certificate(derEncoded: der)
            } catch {
                throw PKIError(
                    .invalidCertificate, "peer certificate \(index) of the presented chain does not parse", cause: error
                )
            }
        }
    }

    static func allowsClientAuth(_ certificate: Certificate) -> Bool {
        guard let usages = try? certificate.extensions.extendedKeyUsage else { return false }
        return usages.contains(.clientAuth)
    }
}

/// The part of the check that is specific to Tessera, run inside the `Verifier` so that no
/// chain counts as valid without it.
struct TesseraClientPolicy: VerifierPolicy {
    /// Tessera enforces these itself, so a certificate that marks them critical is not
    /// rejected as carrying an unknown critical extension.
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName,
    ]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let leaf = chain.leaf
        // A one-element chain means the leaf is the trust anchor itself: the CA certificate
        // presented as a client certificate. It identifies no site.
        guard chain.count >= 2 else {
            return .failsToMeetPolicy(reason: "the presented certificate is the federation CA itself, not a site")
        }
        if case .isCertificateAuthority = try? leaf.extensions.basicConstraints {
            return .failsToMeetPolicy(reason: "the presented certificate is a CA certificate, not a site")
        }
        guard PeerValidator.allowsClientAuth(leaf) else {
            return .failsToMeetPolicy(reason: "the certificate does not allow TLS client authentication (clientAuth)")
        }
        return .meetsPolicy
    }
}
