import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("SigningCertificateValidator: which signing keys a site trusts")
struct SigningCertificateValidatorTests {
    /// A CA valid from a day before the reference date for a year, and a site credential valid
    /// for the day around it.
    static func federation() throws -> (EphemeralFederationCA, EphemeralFederationCA.SigningCredential) {
        let ca = try EphemeralFederationCA(
            notValidBefore: referenceDate - 86_400, notValidAfter: referenceDate + 365 * 86_400)
        let credential = try ca.issueSigningCredential(
            site: "hospital-a", notValidBefore: referenceDate - 3600, notValidAfter: referenceDate + 3600)
        return (ca, credential)
    }

    @Test("a signing certificate of this federation yields its site, serial and Ed25519 key")
    func accepts() async throws {
        let (ca, credential) = try Self.federation()
        let verified = try await ca.signingValidator().validate(
            derEncoded: credential.certificateDER, at: referenceDate)
        #expect(verified.site == "hospital-a")
        #expect(verified.serial == credential.serial)
        #expect(verified.ed25519PublicKey.count == 32)
        #expect(verified.validUntil == referenceDate + 3600)
        #expect(
            try Ed25519ForTests.signAndVerify(
                seed: credential.ed25519Seed, publicKey: verified.ed25519PublicKey, message: [1, 2, 3]))
    }

    @Test("a certificate from another CA with the same CA name and site name is refused as another federation's")
    func refusesOtherFederation() async throws {
        let (ours, _) = try Self.federation()
        let (theirs, impostor) = try Self.federation()
        #expect(ours.caCertificate.subject == theirs.caCertificate.subject)
        let error = await pkiError {
            _ = try await ours.signingValidator().validate(derEncoded: impostor.certificateDER, at: referenceDate)
        }
        #expect(error?.code == .untrustedIssuer)
        #expect(error?.message.contains("issued by another CA") == true)
        #expect(error?.message.contains("hospital-a") == true)
        #expect(error?.message.contains(impostor.serial) == true)
    }

    @Test("validity is checked at the injected time: expired after, not yet valid before")
    func validityAtInjectedTime() async throws {
        let (ca, credential) = try Self.federation()
        let validator = ca.signingValidator()
        _ = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate + 3599)
        let late = await pkiError {
            _ = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate + 3601)
        }
        #expect(late?.code == .expired)
        #expect(late?.message.contains(credential.serial) == true)
        #expect(late?.message.contains("hospital-a") == true)
        let early = await pkiError {
            _ = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate - 3601)
        }
        #expect(early?.code == .notYetValid)

    }

    @Test("a revoked peer is refused from the next validation on, with the site and serial named")
    func refusesRevoked() async throws {
        let (ca, credential) = try Self.federation()
        let other = try ca.issueSigningCredential(
            site: "hospital-b", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        let validator = ca.signingValidator()
        _ = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate)
        try ca.revoke(serial: credential.serial.uppercased())
        #expect(ca.revokedSerials == [credential.serial])
        let error = await pkiError {
            _ = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate)
        }
        #expect(error?.code == .revoked)
        #expect(error?.message.contains("hospital-a") == true)
        #expect(error?.message.contains(credential.serial) == true)
        #expect(try await validator.validate(derEncoded: other.certificateDER, at: referenceDate).site == "hospital-b")

        // The same through a fixed set and through a signed list the coordinator relayed.
        let fixed = SigningCertificateValidator(
            caCertificate: ca.caCertificate, revocation: .serials([credential.serial]))
        #expect(
            await pkiError { _ = try await fixed.validate(derEncoded: credential.certificateDER, at: referenceDate) }?
                .code == .revoked)
        try await withTemporaryDirectory { root in
            let url = root.appendingPathComponent("revoked.signed")
            try Data(ca.signedRevocationList(issuedAt: referenceDate).encoded).write(to: url)
            let signed = SigningCertificateValidator(caCertificate: ca.caCertificate, revocation: .signedFile(url))
            #expect(
                await pkiError {
                    _ = try await signed.validate(derEncoded: credential.certificateDER, at: referenceDate)
                }?.code == .revoked)
            #expect(try await signed.validate(derEncoded: other.certificateDER, at: referenceDate).site == "hospital-b")

            // A list signed by another CA is no revocation list for this federation: fail closed.
            let (stranger, _) = try Self.federation()
            try Data(stranger.signedRevocationList(issuedAt: referenceDate).encoded).write(to: url)
            let forged = await pkiError {
                _ = try await signed.validate(derEncoded: other.certificateDER, at: referenceDate)
            }
            #expect(forged?.code == .untrustedIssuer)
            #expect(forged?.message.contains("cannot check revocation") == true)
        }
    }

    @Test("revocation read from revoked.json fails closed when the file is missing")
    func revocationFileFailsClosed() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let signing = try SiteSigningIdentity.load(from: site.directory)
            let validator = ca.signingValidator()
            #expect(try await validator.validate(derEncoded: signing.certificateDER, at: Date()).site == "s1")
            try ca.revoke(serial: signing.serial)
            #expect(
                await pkiError { _ = try await validator.validate(derEncoded: signing.certificateDER, at: Date()) }?
                    .code == .revoked)
            try FileManager.default.removeItem(at: ca.revokedURL)
            let missing = await pkiError {
                _ = try await validator.validate(derEncoded: signing.certificateDER, at: Date())
            }
            #expect(missing?.code == .notFound)

            let throwing = SigningCertificateValidator(
                caCertificate: ca.certificate,
                revocation: .provider { throw PKIError(code: .io, message: "store offline") })
            let offline = await pkiError {
                _ = try await throwing.validate(derEncoded: signing.certificateDER, at: Date())
            }
            #expect(offline?.code == .io)
            #expect(offline?.message.contains("store offline") == true)
        }
    }

    @Test("a TLS certificate presented as a signing certificate is refused as the wrong purpose, and vice versa")
    func keySeparation() async throws {
        let (ca, _) = try Self.federation()
        let tls = try ca.issueSiteCertificate(
            site: "hospital-a", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        let error = await pkiError {
            _ = try await ca.signingValidator().validate(derEncoded: try der(tls), at: referenceDate)
        }
        #expect(error?.code == .wrongPurpose)
        #expect(error?.message.contains("TLS certificate") == true)
        #expect(error?.message.contains("hospital-a") == true)

        let coordinator = try ca.issueCoordinatorCertificate(
            notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        #expect(
            await pkiError {
                _ = try await ca.signingValidator().validate(derEncoded: try der(coordinator), at: referenceDate)
            }?.code == .wrongPurpose)
        #expect(
            await pkiError {
                _ = try await ca.signingValidator().validate(derEncoded: try der(ca.caCertificate), at: referenceDate)
            }?.code == .wrongPurpose)

        // The coordinator's TLS check refuses the signing certificate as a site's TLS certificate.
        try await withTemporaryDirectory { root in
            let fileCA = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try fileCA.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let signing = try SiteSigningIdentity.load(from: site.directory)
            let asTLS = await pkiError { _ = try await fileCA.peerValidator().validate(leaf: signing.certificate) }
            #expect(asTLS?.code == .wrongPurpose)
        }
    }

    @Test("signing certificates with extra usages, a P-256 key or a CA bit are refused")
    func handMadeProfiles() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = [GeneralName.uniformResourceIdentifier("tessera://site/s1")]
            let ed25519 = Certificate.PublicKey(Ed25519ForTests.newKey().publicKey)
            let p256 = Certificate.PublicKey(P256ForTests.newKey().publicKey)
            let cases: [(String, Certificate, PKIError.Code)] = [
                (
                    "signing and clientAuth",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: ed25519, commonName: "s1", sans: site,
                        usages: [.tesseraSecureAggregationSigning, .clientAuth]), .wrongPurpose
                ),
                (
                    "signing and codeSigning",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: ed25519, commonName: "s1", sans: site,
                        usages: [.tesseraSecureAggregationSigning, .codeSigning]), .wrongPurpose
                ),
                (
                    "P-256 key",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: p256, commonName: "s1", sans: site,
                        usages: [.tesseraSecureAggregationSigning]), .wrongKeyType
                ),
                (
                    "CA bit",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: ed25519, commonName: "s1", sans: site,
                        usages: [.tesseraSecureAggregationSigning], isCA: true), .wrongPurpose
                ),
                (
                    "two site names",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: ed25519, commonName: "s1",
                        sans: site + [.uniformResourceIdentifier("tessera://site/s2")],
                        usages: [.tesseraSecureAggregationSigning]), .invalidIdentity
                ),
            ]
            for (name, certificate, code) in cases {
                let error = await pkiError {
                    _ = try await ca.signingValidator().validate(derEncoded: try der(certificate), at: Date())
                }
                #expect(error?.code == code, "\(name): \(String(describing: error))")
            }
            // The well-formed hand-made one passes, so the cases above fail for their own reason.
            let good = try handMadeLeaf(
                signedBy: ca, publicKey: ed25519, commonName: "s1", sans: site,
                usages: [.tesseraSecureAggregationSigning])
            #expect(try await ca.signingValidator().validate(derEncoded: try der(good), at: Date()).site == "s1")
        }
    }

    @Test("malformed and oversized input is refused before any chain check")
    func malformedInput() async throws {
        let (ca, credential) = try Self.federation()
        let validator = ca.signingValidator()
        for bad in [[], [0x30], Array(credential.certificateDER.dropLast()), credential.certificateDER + [0]] {
            let error = await pkiError { _ = try await validator.validate(derEncoded: bad, at: referenceDate) }
            #expect(error?.code == .invalidCertificate, "\(bad.count) bytes")
        }
        let oversized = [UInt8](repeating: 0x30, count: SigningCertificateValidator.maximumCertificateSize + 1)
        let error = await pkiError { _ = try await validator.validate(derEncoded: oversized, at: referenceDate) }
        #expect(error?.code == .tooLarge)

        // A flipped bit in the signed part breaks the CA's signature: no chain to this federation.
        var tampered = credential.certificateDER
        tampered[tampered.count / 2] ^= 0x01
        let tamperedError = await pkiError { _ = try await validator.validate(derEncoded: tampered, at: referenceDate) }
        #expect(tamperedError?.code == .untrustedIssuer || tamperedError?.code == .invalidCertificate)
    }

    @Test("a 100-site in-memory federation issues and validates every signing certificate")
    func hundredSites() async throws {
        let ca = try EphemeralFederationCA(
            notValidBefore: referenceDate - 86_400, notValidAfter: referenceDate + 86_400)
        let credentials = try (0..<100).map { index in
            try ca.issueSigningCredential(
                site: "site-\(index)", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        }
        #expect(Set(credentials.map(\.serial)).count == 100)
        let validator = ca.signingValidator()
        for (index, credential) in credentials.enumerated() {
            let verified = try await validator.validate(derEncoded: credential.certificateDER, at: referenceDate)
            #expect(verified.site == "site-\(index)")
        }
    }
}
