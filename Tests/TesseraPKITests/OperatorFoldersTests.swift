import Foundation
import Testing
import X509

@testable import TesseraPKI

@Suite("Operator folders: the CA key stays in ca-private, the coordinator gets trust")
struct OperatorFoldersTests {
    @Test("init lays out ca-private (0700, with the key) and trust (ca.pem and revoked.signed only)")
    func layout() async throws {
        try await withTemporaryDirectory { root in
            let folders = OperatorFolders(root: root.appendingPathComponent("fed"))
            let ca = try FederationCA.initializeOperatorFolders(at: folders.root)
            #expect(ca.directory.standardizedFileURL.path == folders.privateDirectory.standardizedFileURL.path)
            #expect(try permissions(folders.privateDirectory) == 0o700)
            #expect(
                FileManager.default.fileExists(
                    atPath: folders.privateDirectory.appendingPathComponent("ca-key.pem").path))
            let trustFiles = try FileManager.default.contentsOfDirectory(atPath: folders.trustDirectory.path).sorted()
            #expect(trustFiles == ["ca.pem", "revoked.signed"])
            #expect(ca.trustDirectory?.standardizedFileURL.path == folders.trustDirectory.standardizedFileURL.path)

            let trust = try TrustFolder.open(folders.trustDirectory)
            #expect(trust.caCertificate == ca.certificate)
            #expect(try trust.revokedSerials().isEmpty)
            // The operator folder itself is accepted wherever the CA folder is.
            #expect(try FederationCA.load(from: folders.root).certificate == ca.certificate)
            // A second init over it is refused.
            let again = await pkiError { _ = try FederationCA.initializeOperatorFolders(at: folders.root) }
            #expect(again?.code == .alreadyExists)
        }
    }

    @Test("a revocation reaches the trust folder, signed with the next sequence")
    func revocationReachesTrust() async throws {
        try await withTemporaryDirectory { root in
            let folders = OperatorFolders(root: root)
            let ca = try FederationCA.initializeOperatorFolders(at: root)
            let issued = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("hospital-a"))
            try ca.revoke(site: "hospital-a")
            let list = try TrustFolder.open(folders.trustDirectory).signedRevocationList()
            #expect(list.serials.contains(issued.serial))
            #expect(list.sequence == 2)
        }
    }

    @Test("a trust folder holding ca-key.pem is refused, naming the key and what to run")
    func trustWithKeyIsRefused() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let error = await pkiError { _ = try TrustFolder.open(ca.directory) }
            #expect(error?.code == .exposedCAKey)
            #expect(error?.message.contains("ca-key.pem") == true)
            #expect(error?.message.contains("tessera pki publish") == true)
            // Publishing into the CA folder itself, or into a folder with a key, is refused too.
            let intoItself = await pkiError { try ca.publishTrust(to: ca.directory) }
            #expect(intoItself?.code == .exposedCAKey)
        }
    }

    @Test("a CA made before trust folders gets one beside it, which later revocations update")
    func publishForAnOldCA() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            #expect(ca.trustDirectory == nil)
            let trustDirectory = root.appendingPathComponent("trust")
            try ca.publishTrust(to: trustDirectory)
            #expect(ca.trustDirectory != nil)
            let issued = try ca.issue(site: "hospital-b", to: root.appendingPathComponent("hospital-b"))
            try ca.revoke(serial: issued.serial)
            #expect(try TrustFolder.open(trustDirectory).revokedSerials() == [issued.serial])
            // Another federation's trust folder is never overwritten.
            let other = try FederationCA.initialize(at: root.appendingPathComponent("other"))
            let refused = await pkiError { try other.publishTrust(to: trustDirectory) }
            #expect(refused?.code == .untrustedIssuer)
        }
    }

    @Test("leaf certificates last one year by default; the issuer may choose")
    func leafValidity() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "hospital-c", to: root.appendingPathComponent("hospital-c"))
            let coordinator = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
            let signing = try SiteSigningIdentity.load(from: root.appendingPathComponent("hospital-c"))
            let year: TimeInterval = 365 * 86_400 + FederationCA.clockSkew
            for certificate in [site.certificate, coordinator.certificate, signing.certificate] {
                let lifetime = certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore)
                #expect(abs(lifetime - year) < 5, "\(lifetime)")
            }
            let short = try ca.issue(
                site: "hospital-d", to: root.appendingPathComponent("hospital-d"), validityDays: 30)
            let lifetime = short.certificate.notValidAfter.timeIntervalSince(short.certificate.notValidBefore)
            #expect(abs(lifetime - (30 * 86_400 + FederationCA.clockSkew)) < 5)
        }
    }
}
