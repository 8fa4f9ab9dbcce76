public import Foundation
import SwiftASN1
public import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides, on each connection a site makes, whether the server it reached is this
/// federation's coordinator.
///
/// Chaining to the federation CA is not enough: every site holds a certificate from the same
/// CA, so a site's certificate (even a stolen one) must never pass as the coordinator's. The
/// checks, in order of the error reported:
/// 1. the chain leads to the federation CA (`Verifier` with `RFC5280Policy` at the given time);
/// 2. the leaf has the coordinator's role: not a CA, `serverAuth`, the reserved common name
///    `coordinator`, and no `tessera://site/` URI;
/// 3. it names the host the site dialled, as a DNS name or an IP address (swift-certificates'
///    `ServerIdentityPolicy`, RFC 6125);
/// 4. its serial is not revoked (sites hold the same revocation list as the coordinator, signed
///    by the CA: ``SignedRevocationList``).
public struct CoordinatorCertificateValidator: Sendable {
    /// Larger certificates are refused before parsing.
    public static let maximumCertificateSize = 16 * 1024

    /// The federation CA the coordinator's certificate must chain to.
    public let caCertificate: Certificate
    private let revocation: RevocationSource

    public init(caCertificate: Certificate, revocation: RevocationSource) {
        self.caCertificate = caCertificate
        self.revocation = revocation
    }

    /// Validates a presented chain, leaf first (further certificates are untrusted
    /// intermediates), for a connection to `host` at `now`. Returns the leaf's serial.
    public func validate(chain: [Certificate], host: String, at now: Date) async throws -> String {
        guard let leaf = chain.first else {
            throw PKIError(.invalidCertificate, "the coordinator at \(SiteName.quoted(host)) presented no certificate")
        }
        let serial = leaf.serialHex
        let subject = "the certificate presented by the coordinator at \(SiteName.quoted(host)) (serial \(serial))"
        let target = try Self.target(host)
        try await ChainCheck.verify(
            chain: chain, caCertificate: caCertificate, at: now, subject: subject,
            policy: AnyPolicy {
                CoordinatorRolePolicy()
                ServerIdentityPolicy(serverHostname: target.name, serverIP: target.address)
            }
        ) { leaf in
            if let reason = CoordinatorRolePolicy.refusal(of: leaf, isTrustAnchor: leaf == caCertificate) {
                return PKIError(.wrongRole, "\(subject) \(reason)")
            }
            var hostOnly = Verifier(rootCertificates: CertificateStore([leaf])) {
                ServerIdentityPolicy(serverHostname: target.name, serverIP: target.address)
            }
            if case .couldNotValidate = await hostOnly.validate(leaf: leaf, intermediates: CertificateStore()) {
                return PKIError(
                    .hostMismatch,
                    "\(subject) is not valid for \(SiteName.quoted(host)); it names \(Self.names(of: leaf)). Dial a name the coordinator's certificate lists, or reissue it with --host"
                )
            }
            return nil
        }
        let revoked = try revocation.revokedSerials(
            caCertificate: caCertificate, refusing: "the coordinator's certificate (serial \(serial))")
        if revoked.contains(serial) {
            throw PKIError(
                .revoked, "the coordinator's certificate (serial \(serial)) has been revoked; do not send it anything")
        }
        return serial
    }

    /// Parses DER certificates (as TLS libraries hand them over) and validates them.
    public func validate(derEncodedChain: [[UInt8]], host: String, at now: Date) async throws -> String {
        let chain = try derEncodedChain.enumerated().map { index, der in
            try ChainCheck.parse(
                derEncoded: der, maximumSize: Self.maximumCertificateSize,
                what: "certificate \(index) of the coordinator's chain")
        }
        return try await validate(chain: chain, host: host, at: now)
    }

    /// A host is an IP address (IPv6 possibly in brackets) or else a DNS name.
    static func target(_ host: String) throws -> (name: String?, address: String?) {
        var bare = host
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
        guard !bare.isEmpty else {
            throw PKIError(.hostMismatch, "no coordinator host was given to check its certificate against")
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1 {
            return (nil, bare)
        }
        return (bare, nil)
    }

    /// The DNS names and addresses a certificate lists, for a host-mismatch message.
    static func names(of certificate: Certificate) -> String {
        let sans = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        let names = (sans.map { Array($0) } ?? []).compactMap { name -> String? in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let octets): return address(Array(octets.bytes))
            default: return nil
            }
        }
        return names.isEmpty ? "no host" : names.joined(separator: ", ")
    }

    private static func address(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) != nil
        }
        return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
}

/// The coordinator's role, run inside the `Verifier`.
struct CoordinatorRolePolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        if let reason = Self.refusal(of: chain.leaf, isTrustAnchor: chain.count < 2) {
            return .failsToMeetPolicy(reason: reason)
        }
        return .meetsPolicy
    }

    /// Why `leaf` is not the coordinator's certificate, or nil when it is.
    static func refusal(of leaf: Certificate, isTrustAnchor: Bool) -> String? {
        if isTrustAnchor || ChainCheck.isCertificateAuthority(leaf) {
            return "is a CA certificate, not the coordinator's"
        }
        if let site = try? SiteIdentity.siteName(of: leaf) {
            return
                "belongs to site \(SiteName.quoted(site)), not to the coordinator: another site, or someone holding its key, is posing as the coordinator"
        }
        let sans = (try? leaf.extensions.subjectAlternativeNames) ?? nil
        let hasSiteURI = (sans.map { Array($0) } ?? []).contains { name in
            if case .uniformResourceIdentifier(let uri) = name {
                return uri.lowercased().hasPrefix(SiteIdentity.uriPrefix)
            }
            return false
        }
        if hasSiteURI {
            return "carries a \(SiteIdentity.uriPrefix) URI, so it is a site's certificate, not the coordinator's"
        }
        let commonNames = leaf.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String($0.value) ?? String(describing: $0.value) }
        guard commonNames == [SiteName.reserved] else {
            return
                "has common name \(commonNames.map(SiteName.quoted).joined(separator: ", ")), not the coordinator's reserved name \(SiteName.quoted(SiteName.reserved))"
        }
        guard ChainCheck.usages(of: leaf)?.contains(.serverAuth) == true else {
            return "does not allow TLS server authentication (extended key usage serverAuth)"
        }
        return nil
    }
}
