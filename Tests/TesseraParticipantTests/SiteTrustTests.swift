import Foundation
import TesseraPKI
import TesseraParticipant
import TesseraTesting
import Testing

/// The revocation list a site holds: it starts with the one in its folder, adopts only a newer
/// list the CA signed, and keeps what it adopted across a restart.
@Suite struct SiteTrustTests {
    /// A federation on disk with one site folder (its `revoked.signed` is the CA's list #1).
    struct Federation {
        let root: URL
        let ca: FederationCA
        let site: URL

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("site-trust-\(UUID().uuidString)")
            ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            site = root.appendingPathComponent("site-a")
            _ = try ca.issue(site: "site-a", to: site)
        }

        func trust() throws -> SiteTrust {
            try SiteTrust(
                identityDirectory: site, caCertificate: IssuedIdentity.Files(directory: site).caCertificate,
                logger: testLogger())
        }
    }

    @Test("A newer CA-signed list is adopted and written to the folder; an older or forged one is not")
    func adoption() throws {
        let federation = try Federation()
        defer { try? FileManager.default.removeItem(at: federation.root) }
        let trust = try federation.trust()
        #expect(trust.signer != nil)
        let initial = trust.revocationSequence
        #expect(initial >= 1 && trust.revokedSerials.isEmpty)

        let revoked = try federation.ca.revoke(site: "site-a")
        let newer = try federation.ca.signedRevocationList()
        #expect(newer.sequence > initial)
        trust.offer(signedRevocationList: newer.encoded)
        #expect(trust.revocationSequence == newer.sequence)
        #expect(trust.revokedSerials == Set(revoked.map(\.serial)))

        // Kept across a restart: the folder now holds the newer list.
        #expect(try federation.trust().revocationSequence == newer.sequence)

        // A list of another federation, or a tampered one, is ignored.
        let other = try Federation()
        defer { try? FileManager.default.removeItem(at: other.root) }
        _ = try other.ca.revoke(site: "site-a")
        trust.offer(signedRevocationList: try other.ca.signedRevocationList().encoded)
        var tampered = newer.encoded
        tampered[tampered.count / 2] ^= 1
        trust.offer(signedRevocationList: tampered)
        #expect(trust.revocationSequence == newer.sequence)
        #expect(trust.revokedSerials == Set(revoked.map(\.serial)))
    }

    @Test("An older list does not roll back the one held")
    func noRollback() throws {
        let federation = try Federation()
        defer { try? FileManager.default.removeItem(at: federation.root) }
        let trust = try federation.trust()
        let old = try federation.ca.signedRevocationList()
        _ = try federation.ca.revoke(site: "site-a")
        trust.offer(signedRevocationList: try federation.ca.signedRevocationList().encoded)
        let held = trust.revocationSequence
        trust.offer(signedRevocationList: old.encoded)
        #expect(trust.revocationSequence == held && !trust.revokedSerials.isEmpty)
    }
}
