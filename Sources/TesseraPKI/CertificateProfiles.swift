import Crypto
import Foundation
public import SwiftASN1
public import X509

extension ASN1ObjectIdentifier {
    /// Object identifiers Tessera defines for itself.
    public enum Tessera {
        /// The extended key usage of a site's signing certificate: "this key signs a site's
        /// secure-aggregation keys and transcripts", and nothing else.
        ///
        /// Decision: an arc under `2.25`, which needs no registration. X.667 reads a `2.25` arc
        /// as a UUID's integer value, but swift-asn1 keeps each arc in a 64-bit `UInt` and
        /// refuses longer ones, so a full 128-bit UUID arc could be neither written nor parsed.
        /// The arc is therefore 63 random bits. Every versioned UUID's integer value is at least
        /// 2^76 (its version nibble), so this arc cannot collide with any UUID-derived OID.
        public static let secureAggregationSigning: ASN1ObjectIdentifier = "2.25.6505936579342536019"
    }
}

extension ExtendedKeyUsage.Usage {
    /// The only extended key usage of a site signing certificate (see
    /// ``SwiftASN1/ASN1ObjectIdentifier/Tessera/secureAggregationSigning``).
    public static let tesseraSecureAggregationSigning = ExtendedKeyUsage.Usage(
        oid: .Tessera.secureAggregationSigning)
}

/// The certificate profiles the federation CA signs, one per role, shared by the file-backed
/// ``FederationCA`` and the in-memory ``EphemeralFederationCA`` so both issue the same
/// certificates.
struct LeafIssuer: Sendable {
    let caCertificate: Certificate
    let caKey: Certificate.PrivateKey

    /// A self-signed CA certificate. Path length 0: the CA signs leaves only, so a leaf that
    /// somehow obtained a CA bit still could not act as an intermediate.
    static func makeCA(
        name: String, key: Certificate.PrivateKey, notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        do {
            let subject = try DistinguishedName { CommonName(name) }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            }
            return try Certificate(
                version: .v3,
                serialNumber: FederationCA.randomSerialNumber(),
                publicKey: key.publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: key)
        } catch {
            throw PKIError(
                .invalidCertificate, "cannot build the CA certificate for \(SiteName.quoted(name))", cause: error)
        }
    }

    /// A site's TLS client certificate: CN and SAN URI name the site, `clientAuth` only.
    func siteTLS(
        site: String, publicKey: Certificate.PublicKey, notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        try leaf(
            what: "site \(SiteName.quoted(site))", commonName: site,
            alternativeNames: [.uniformResourceIdentifier(SiteIdentity.uri(for: site))],
            usages: [.clientAuth], publicKey: publicKey, notValidBefore: notValidBefore,
            notValidAfter: notValidAfter)
    }

    /// A site's signing certificate: the same names as its TLS certificate, an Ed25519 key and
    /// the Tessera signing usage only, so it cannot authenticate a TLS connection.
    func siteSigning(
        site: String, publicKey: Curve25519.Signing.PublicKey, notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        try leaf(
            what: "the signing certificate of site \(SiteName.quoted(site))", commonName: site,
            alternativeNames: [.uniformResourceIdentifier(SiteIdentity.uri(for: site))],
            usages: [.tesseraSecureAggregationSigning], publicKey: Certificate.PublicKey(publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    /// A researcher's or operator's TLS client certificate: CN and SAN URI
    /// `tessera://<role>/<name>` name the person, `clientAuth` and the role's Tessera usage only
    /// (see ``PeerRole``), so it can neither serve as the coordinator nor join rounds as a site.
    func client(
        role: PeerRole, name: String, publicKey: Certificate.PublicKey, notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        guard let usage = role.roleUsage, let prefix = role.uriPrefix else {
            throw PKIError(.invalidCertificate, "a \(role.rawValue) certificate is not a researcher's or operator's")
        }
        return try leaf(
            what: "\(role.rawValue) \(SiteName.quoted(name))", commonName: name,
            alternativeNames: [.uniformResourceIdentifier(prefix + name)], usages: [.clientAuth, usage],
            publicKey: publicKey, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    /// The coordinator's server certificate: the reserved CN, DNS/IP SANs, no site URI.
    func coordinator(
        hosts: [String], publicKey: Certificate.PublicKey, notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        guard !hosts.isEmpty else {
            throw PKIError(.invalidCertificate, "the coordinator certificate needs at least one host name or address")
        }
        var names: [GeneralName] = []
        for host in hosts {
            let name = try FederationCA.generalName(forHost: host)
            if !names.contains(name) { names.append(name) }
        }
        return try leaf(
            what: "the coordinator", commonName: SiteName.reserved, alternativeNames: names,
            usages: [.serverAuth, .clientAuth], publicKey: publicKey, notValidBefore: notValidBefore,
            notValidAfter: notValidAfter)
    }

    private func leaf(
        what: String,
        commonName: String,
        alternativeNames: [GeneralName],
        usages: [ExtendedKeyUsage.Usage],
        publicKey: Certificate.PublicKey,
        notValidBefore: Date,
        notValidAfter: Date
    ) throws -> Certificate {
        guard notValidBefore < notValidAfter else {
            throw PKIError(
                .invalidCertificate,
                "a certificate for \(what) must start before it ends (from \(notValidBefore) to \(notValidAfter))")
        }
        guard notValidAfter <= caCertificate.notValidAfter else {
            throw PKIError(
                .invalidCertificate,
                "a certificate for \(what) valid until \(notValidAfter) would outlive the CA certificate (valid until \(caCertificate.notValidAfter)); issue a shorter one"
            )
        }
        do {
            let authorityKeyID = try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usages)
                SubjectAlternativeNames(alternativeNames)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: authorityKeyID ?? SubjectKeyIdentifier(hash: caCertificate.publicKey).keyIdentifier)
            }
            return try Certificate(
                version: .v3,
                serialNumber: FederationCA.randomSerialNumber(),
                publicKey: publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: caCertificate.subject,
                subject: try DistinguishedName { CommonName(commonName) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: caKey)
        } catch {
            throw PKIError(.invalidCertificate, "cannot build the certificate for \(what)", cause: error)
        }
    }
}

extension Certificate {
    /// The DER bytes, as TLS stacks and the wire protocol carry a certificate.
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        do {
            try serializer.serialize(self)
        } catch {
            throw PKIError(.invalidCertificate, "cannot encode certificate \(subject) as DER", cause: error)
        }
        return serializer.serializedBytes
    }

    /// The canonical hex serial.
    var serialHex: String { SerialNumberHex.string(serialNumber) }
}
