import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("CoordinatorCertificateValidator: whether a site reached its federation's coordinator")
struct CoordinatorCertificateValidatorTests {
    static func federation() throws -> (EphemeralFederationCA, Certificate) {
        let ca = try EphemeralFederationCA(
            notValidBefore: referenceDate - 86_400, notValidAfter: referenceDate + 365 * 86_400)
        let coordinator = try ca.issueCoordinatorCertificate(
            hosts: ["coord.example.org", "127.0.0.1", "::1"], notValidBefore: referenceDate - 3600,
            notValidAfter: referenceDate + 3600)
        return (ca, coordinator)
    }

    @Test(
        "the coordinator's certificate is accepted for each host it lists, by name or address",
        arguments: [
            "coord.example.org", "COORD.example.org", "127.0.0.1", "::1", "[::1]",
        ])
    func acceptsListedHosts(host: String) async throws {
        let (ca, coordinator) = try Self.federation()
        let serial = try await ca.coordinatorValidator().validate(chain: [coordinator], host: host, at: referenceDate)
        #expect(serial == SerialNumberHex.string(coordinator.serialNumber))
        #expect(
            try await ca.coordinatorValidator().validate(
                derEncodedChain: [try der(coordinator)], host: host, at: referenceDate) == serial)
    }

    @Test(
        "a host the certificate does not list is a host mismatch, naming what it lists",
        arguments: [
            "other.example.org", "127.0.0.2", "example.org", "::2", "coord.example.org.evil",
        ])
    func refusesOtherHosts(host: String) async throws {
        let (ca, coordinator) = try Self.federation()
        let error = await pkiError {
            _ = try await ca.coordinatorValidator().validate(chain: [coordinator], host: host, at: referenceDate)
        }
        #expect(error?.code == .hostMismatch)
        #expect(error?.message.contains("coord.example.org, 127.0.0.1, ::1") == true)
        let empty = await pkiError {
            _ = try await ca.coordinatorValidator().validate(chain: [coordinator], host: "", at: referenceDate)
        }
        #expect(empty?.code == .hostMismatch)
    }

    @Test("a site's certificate presented by the coordinator is refused as the wrong role, even for a listed host")
    func refusesSiteCertificate() async throws {
        let (ca, _) = try Self.federation()
        let site = try ca.issueSiteCertificate(
            site: "hospital-a", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        let error = await pkiError {
            _ = try await ca.coordinatorValidator().validate(chain: [site], host: "localhost", at: referenceDate)
        }
        #expect(error?.code == .wrongRole)
        #expect(error?.message.contains("hospital-a") == true)

        let signing = try ca.issueSigningCredential(
            site: "hospital-a", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 60)
        let signingError = await pkiError {
            _ = try await ca.coordinatorValidator().validate(
                derEncodedChain: [signing.certificateDER], host: "localhost", at: referenceDate)
        }
        #expect(signingError?.code == .wrongRole)

        let caError = await pkiError {
            _ = try await ca.coordinatorValidator().validate(
                chain: [ca.caCertificate], host: "localhost", at: referenceDate)
        }
        #expect(caError?.code == .wrongRole)
    }

    @Test("hand-made server certificates without the coordinator's name, or with a site URI, are the wrong role")
    func refusesHandMadeImpostors() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let key = Certificate.PublicKey(P256ForTests.newKey().publicKey)
            let localhost = GeneralName.dnsName("localhost")
            let cases: [(String, Certificate)] = [
                (
                    "serverAuth, another CN",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: key, commonName: "not-the-coordinator", sans: [localhost],
                        usages: [.serverAuth])
                ),
                (
                    "coordinator CN and a site URI",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: key, commonName: "coordinator",
                        sans: [localhost, .uniformResourceIdentifier("TESSERA://site/x")], usages: [.serverAuth])
                ),
                (
                    "coordinator CN, clientAuth only",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: key, commonName: "coordinator", sans: [localhost],
                        usages: [.clientAuth])
                ),
                (
                    "coordinator CN, CA bit",
                    try handMadeLeaf(
                        signedBy: ca, publicKey: key, commonName: "coordinator", sans: [localhost],
                        usages: [.serverAuth], isCA: true)
                ),
            ]
            for (name, certificate) in cases {
                let error = await pkiError {
                    _ = try await ca.coordinatorValidator().validate(
                        chain: [certificate], host: "localhost", at: Date())
                }
                #expect(error?.code == .wrongRole, "\(name): \(String(describing: error))")
            }
            let good = try handMadeLeaf(
                signedBy: ca, publicKey: key, commonName: "coordinator", sans: [localhost], usages: [.serverAuth])
            _ = try await ca.coordinatorValidator().validate(chain: [good], host: "localhost", at: Date())
        }
    }

    @Test("a revoked coordinator certificate is refused, through a fixed set, revoked.json or a signed list")
    func refusesRevoked() async throws {
        let (ca, coordinator) = try Self.federation()
        let serial = SerialNumberHex.string(coordinator.serialNumber)
        let validator = ca.coordinatorValidator()
        _ = try await validator.validate(chain: [coordinator], host: "127.0.0.1", at: referenceDate)
        try ca.revoke(serial: serial)
        let error = await pkiError {
            _ = try await validator.validate(chain: [coordinator], host: "127.0.0.1", at: referenceDate)
        }
        #expect(error?.code == .revoked)
        #expect(error?.message.contains(serial) == true)

        let fixed = CoordinatorCertificateValidator(caCertificate: ca.caCertificate, revocation: .serials([serial]))
        #expect(
            await pkiError { _ = try await fixed.validate(chain: [coordinator], host: "::1", at: referenceDate) }?
                .code == .revoked)

        try await withTemporaryDirectory { root in
            let fileCA = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try fileCA.issueCoordinator(to: root.appendingPathComponent("coord"))
            let site = try fileCA.issue(site: "s1", to: root.appendingPathComponent("s1"))
            // The site checks against the signed list in its own folder, refreshed as the
            // coordinator forwards newer ones.
            let atSite = CoordinatorCertificateValidator(
                caCertificate: fileCA.certificate, revocation: .signedFile(site.files.signedRevocationList))
            _ = try await atSite.validate(chain: [issued.certificate], host: "localhost", at: Date())
            _ = try await fileCA.coordinatorValidator().validate(
                chain: [issued.certificate], host: "localhost", at: Date())
            try fileCA.revoke(site: "coordinator")
            #expect(
                await pkiError {
                    _ = try await fileCA.coordinatorValidator().validate(
                        chain: [issued.certificate], host: "localhost", at: Date())
                }?.code == .revoked)
            try FileManager.default.copyItem(
                at: fileCA.signedRevocationListURL, to: root.appendingPathComponent("forwarded"))
            try FileManager.default.removeItem(at: site.files.signedRevocationList)
            try FileManager.default.moveItem(
                at: root.appendingPathComponent("forwarded"), to: site.files.signedRevocationList)
            #expect(
                await pkiError {
                    _ = try await atSite.validate(chain: [issued.certificate], host: "localhost", at: Date())
                }?
                .code == .revoked)
        }
    }

    @Test("another federation's coordinator is refused as another CA's, even with the same names")
    func refusesOtherFederation() async throws {
        let (ours, _) = try Self.federation()
        let (_, theirs) = try Self.federation()
        let error = await pkiError {
            _ = try await ours.coordinatorValidator().validate(chain: [theirs], host: "127.0.0.1", at: referenceDate)
        }
        #expect(error?.code == .untrustedIssuer)
        #expect(error?.message.contains("issued by another CA") == true)
        let withTheirCA = await pkiError {
            _ = try await ours.coordinatorValidator().validate(
                chain: [theirs, ours.caCertificate], host: "127.0.0.1", at: referenceDate)
        }
        #expect(withTheirCA?.code == .untrustedIssuer)
    }

    @Test("validity is checked at the injected time, for the certificate and for the CA")
    func validityAtInjectedTime() async throws {
        let (ca, coordinator) = try Self.federation()
        let expired = await pkiError {
            _ = try await ca.coordinatorValidator().validate(
                chain: [coordinator], host: "::1", at: referenceDate + 3601)
        }
        #expect(expired?.code == .expired)
        let early = await pkiError {
            _ = try await ca.coordinatorValidator().validate(
                chain: [coordinator], host: "::1", at: referenceDate - 3601)
        }
        #expect(early?.code == .notYetValid)

        // A CA that ends before its leaf (which no Tessera CA issues) is reported as the CA's expiry.
        try await withTemporaryDirectory { root in
            let key = Certificate.PrivateKey(P256ForTests.newKey())
            let shortCertificate = try LeafIssuer.makeCA(
                name: "short", key: key, notValidBefore: referenceDate - 86_400, notValidAfter: referenceDate)
            let shortCA = FederationCA(directory: root, certificate: shortCertificate, privateKey: key)
            let leaf = try handMadeLeaf(
                signedBy: shortCA, publicKey: Certificate.PublicKey(P256ForTests.newKey().publicKey),
                commonName: "coordinator", sans: [.dnsName("localhost")], usages: [.serverAuth],
                notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
            let validator = CoordinatorCertificateValidator(caCertificate: shortCertificate, revocation: .serials([]))
            _ = try await validator.validate(chain: [leaf], host: "localhost", at: referenceDate - 1)
            let caExpired = await pkiError {
                _ = try await validator.validate(chain: [leaf], host: "localhost", at: referenceDate + 60)
            }
            #expect(caExpired?.code == .expired)
            #expect(caExpired?.message.contains("federation CA") == true)
        }
    }

    @Test("malformed and oversized chains are refused")
    func malformedChains() async throws {
        let (ca, coordinator) = try Self.federation()
        let validator = ca.coordinatorValidator()
        let empty = await pkiError { _ = try await validator.validate(chain: [], host: "::1", at: referenceDate) }
        #expect(empty?.code == .invalidCertificate)
        let garbage = await pkiError {
            _ = try await validator.validate(derEncodedChain: [[0x30, 0x03]], host: "::1", at: referenceDate)
        }
        #expect(garbage?.code == .invalidCertificate)
        let oversized = await pkiError {
            _ = try await validator.validate(
                derEncodedChain: [try der(coordinator), [UInt8](repeating: 0, count: 16 * 1024 + 1)], host: "::1",
                at: referenceDate)
        }
        #expect(oversized?.code == .tooLarge)
    }
}
