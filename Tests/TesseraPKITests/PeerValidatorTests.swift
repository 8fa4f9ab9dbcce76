import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("PeerValidator: what the coordinator accepts on a connection")
struct PeerValidatorTests {
    @Test("a site certificate issued by the federation CA is accepted and yields the site name")
    func acceptsIssuedSite() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("a"))
            let identity = try IssuedIdentity.load(from: issued.directory)
            let validator = PeerValidator(caCertificate: identity.caCertificate, revokedSerials: [])
            #expect(try await validator.validate(leaf: identity.certificate) == "hospital-a")
            #expect(try await ca.peerValidator().validate(chain: [identity.certificate]) == "hospital-a")
            var der = DER.Serializer()
            try der.serialize(identity.certificate)
            #expect(try await validator.validate(derEncodedChain: [der.serializedBytes]) == "hospital-a")
        }
    }

    @Test("a certificate from an unrelated CA is rejected, even one with the same CA name and site name")
    func rejectsOtherCA() async throws {
        try await withTemporaryDirectory { root in
            let ours = try FederationCA.initialize(at: root.appendingPathComponent("ours"))
            let theirs = try FederationCA.initialize(at: root.appendingPathComponent("theirs"))
            #expect(ours.certificate.subject == theirs.certificate.subject)
            let impostor = try theirs.issue(site: "hospital-a", to: root.appendingPathComponent("impostor"))
            let error = await pkiError { _ = try await ours.peerValidator().validate(leaf: impostor.certificate) }
            #expect(error?.code == .untrustedIssuer)
            #expect(error?.message.contains("issued by another CA") == true)
            // Sending the impostor CA along as an "intermediate" does not help.
            let chained = await pkiError {
                _ = try await ours.peerValidator().validate(chain: [impostor.certificate, theirs.certificate])
            }
            #expect(chained?.code == .untrustedIssuer)
        }
    }

    @Test("an expired certificate is rejected, and so is one not yet valid")
    func rejectsExpired() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let now = Date()
            let expired = try ca.issue(
                site: "old", to: root.appendingPathComponent("old"), notValidBefore: now - 10 * 86_400,
                notValidAfter: now - 86_400)
            let error = await pkiError { _ = try await ca.peerValidator().validate(leaf: expired.certificate) }
            #expect(error?.code == .expired)
            #expect(error?.message.contains(expired.serial) == true)

            let future = try ca.issue(
                site: "future", to: root.appendingPathComponent("future"), notValidBefore: now + 86_400,
                notValidAfter: now + 10 * 86_400)
            let early = await pkiError { _ = try await ca.peerValidator().validate(leaf: future.certificate) }
            #expect(early?.code == .notYetValid)
        }
    }

    @Test("a revoked certificate is rejected on the next validation, without rebuilding the validator")
    func rejectsRevoked() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let keep = try ca.issue(site: "s2", to: root.appendingPathComponent("s2"))
            let validator = PeerValidator(caCertificate: ca.certificate, revocationList: ca.revokedURL)
            #expect(try await validator.validate(leaf: site.certificate) == "s1")

            try ca.revoke(serial: site.serial)
            let error = await pkiError { _ = try await validator.validate(leaf: site.certificate) }
            #expect(error?.code == .revoked)
            #expect(error?.message.contains("s1") == true)
            #expect(try await validator.validate(leaf: keep.certificate) == "s2")

            // A snapshot validator honours the serials it was given, in any spelling.
            let snapshot = PeerValidator(caCertificate: ca.certificate, revokedSerials: [keep.serial.uppercased()])
            #expect(await pkiError { _ = try await snapshot.validate(leaf: keep.certificate) }?.code == .revoked)

            // Fail closed: an unreadable revocation list refuses the connection.
            try FileManager.default.removeItem(at: ca.revokedURL)
            let missing = await pkiError { _ = try await validator.validate(leaf: keep.certificate) }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.contains("revocation") == true)
        }
    }

    @Test("the coordinator's certificate and the CA certificate cannot log in as a site")
    func rejectsNonSiteCertificates() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let coordinator = try ca.issueCoordinator(to: root.appendingPathComponent("coord"))
            let asSite = await pkiError { _ = try await ca.peerValidator().validate(leaf: coordinator.certificate) }
            #expect(asSite?.code == .invalidIdentity)
            let caAsLeaf = await pkiError { _ = try await ca.peerValidator().validate(leaf: ca.certificate) }
            #expect(caAsLeaf?.code == .missingClientAuth)
        }
    }

    @Test("a certificate without clientAuth is rejected")
    func rejectsServerOnly() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let key = Certificate.PrivateKey(P256ForTests.newKey())
            let leaf = try Certificate(
                version: .v3, serialNumber: FederationCA.randomSerialNumber(), publicKey: key.publicKey,
                notValidBefore: Date() - 60, notValidAfter: Date() + 3600, issuer: ca.certificate.subject,
                subject: try DistinguishedName { CommonName("s1") }, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([.uniformResourceIdentifier("tessera://site/s1")])
                },
                issuerPrivateKey: ca.privateKey)
            let error = await pkiError { _ = try await ca.peerValidator().validate(leaf: leaf) }
            #expect(error?.code == .missingClientAuth)
        }
    }

    @Test(
        "openssl parses the PEM files and verifies site and coordinator certificates against ca.pem",
        .enabled(if: opensslPath != nil, "openssl is not installed"))
    func opensslAgrees() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("site"))
            let coordinator = try ca.issueCoordinator(
                hosts: ["localhost", "127.0.0.1"], to: root.appendingPathComponent("coord"))

            let text = try runOpenSSL(["x509", "-in", "cert.pem", "-noout", "-text"], in: site.directory)
            #expect(text.status == 0, "\(text.output)")
            #expect(text.output.contains("URI:tessera://site/hospital-a"))
            #expect(text.output.contains("TLS Web Client Authentication"))
            #expect(text.output.contains("Subject: CN=hospital-a") || text.output.contains("Subject: CN = hospital-a"))
            #expect(text.output.contains("ecdsa-with-SHA256"))
            #expect(text.output.contains("CA:FALSE"))

            let verify = try runOpenSSL(
                ["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "cert.pem"], in: site.directory)
            #expect(verify.status == 0, "\(verify.output)")
            #expect(verify.output.contains("cert.pem: OK"))

            let server = try runOpenSSL(
                ["verify", "-CAfile", "ca.pem", "-purpose", "sslserver", "cert.pem"], in: coordinator.directory)
            #expect(server.status == 0, "\(server.output)")
            let coordinatorText = try runOpenSSL(
                ["x509", "-in", "cert.pem", "-noout", "-text"], in: coordinator.directory)
            #expect(coordinatorText.output.contains("DNS:localhost"))
            #expect(coordinatorText.output.contains("IP Address:127.0.0.1"))

            let key = try runOpenSSL(["pkey", "-in", "key.pem", "-noout", "-text_pub"], in: site.directory)
            #expect(key.status == 0, "\(key.output)")
            #expect(key.output.contains("prime256v1") || key.output.contains("P-256"))
            let caKey = try runOpenSSL(["pkey", "-in", ca.privateKeyURL.path, "-noout"], in: root)
            #expect(caKey.status == 0, "\(caKey.output)")

            // openssl, too, refuses a site certificate against another federation's CA.
            let other = try FederationCA.initialize(at: root.appendingPathComponent("other"))
            let foreign = try runOpenSSL(
                ["verify", "-CAfile", other.certificateURL.path, "cert.pem"], in: site.directory)
            #expect(foreign.status != 0)
        }
    }
}
