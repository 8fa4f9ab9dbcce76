import Crypto
import Foundation
import Testing
import X509

@testable import TesseraPKI

@Suite("PeerRole: researchers and operators, told apart from sites and the coordinator")
struct PeerRoleTests {
    @Test("a researcher certificate is issued with its role and read back as a researcher")
    func issuesAResearcher() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issueResearcher("alice", to: root.appendingPathComponent("alice"))
            #expect(issued.role == .researcher)
            #expect(try permissions(issued.files.privateKey) == 0o600)
            let loaded = try IssuedIdentity.load(from: issued.directory)
            #expect(loaded.role == .researcher)
            #expect(loaded.name == "alice")
            let usages = try #require(try loaded.certificate.extensions.extendedKeyUsage)
            #expect(usages.contains(.clientAuth) && usages.contains(.tesseraResearcher))
            #expect(!usages.contains(.serverAuth))

            let peer = try await ca.peerValidator().identify(chain: [loaded.certificate])
            #expect(peer == PeerIdentity(role: .researcher, name: "alice"))
            #expect(peer.allows(.submitExperiment) && peer.allows(.listExperiments) && peer.allows(.readModels))
            #expect(!peer.allows(.joinRounds) && !peer.allows(.changeModelStage))
            let record = try #require(try ca.issuedCertificates().first { $0.serial == loaded.serial })
            #expect(record.role == .researcher && record.site == "alice")
        }
    }

    @Test("an operator certificate reads back as an operator, with the operator's rights")
    func issuesAnOperator() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issueOperator("ops", to: root.appendingPathComponent("ops"))
            let peer = try await ca.peerValidator().identify(chain: [issued.certificate])
            #expect(peer == PeerIdentity(role: .operator, name: "ops"))
            #expect(peer.allows(.changeModelStage) && peer.allows(.cancelExperiment))
            #expect(!peer.allows(.joinRounds))
        }
    }

    @Test("a site certificate is a site: it joins rounds and cannot submit, list or cancel experiments")
    func aSiteIsNotAResearcher() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "alice", to: root.appendingPathComponent("site"))
            let peer = try await ca.peerValidator().identify(chain: [site.certificate])
            #expect(peer == PeerIdentity(role: .site, name: "alice"))
            for action in [FederationAction.submitExperiment, .listExperiments, .cancelExperiment, .readModels] {
                #expect(!peer.allows(action), "a site may not \(action)")
            }
            #expect(peer.allows(.joinRounds))
            // Same name, other role: a researcher "alice" is not the site "alice".
            let researcher = try ca.issueResearcher("alice", to: root.appendingPathComponent("researcher"))
            #expect(!peer.mayCancel(experimentSubmittedBy: PeerIdentity(role: .researcher, name: "alice")))
            #expect(try PeerIdentity(certificate: researcher.certificate) != peer)
        }
    }

    @Test("the coordinator's certificate reads back as the coordinator, with no client rights")
    func theCoordinator() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let coordinator = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
            let peer = try PeerIdentity(certificate: coordinator.certificate)
            #expect(peer == PeerIdentity(role: .coordinator, name: SiteName.reserved))
            #expect(FederationAction.allCases.allSatisfy { !peer.allows($0) })
        }
    }

    @Test("a researcher certificate cannot open a site session, whatever its common name")
    func aResearcherIsNotASite() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let researcher = try ca.issueResearcher("hospital-a", to: root.appendingPathComponent("r"))
            let error = await pkiError { _ = try await ca.peerValidator().validate(chain: [researcher.certificate]) }
            #expect(error?.code == .wrongRole)
            #expect(error?.message.contains("researcher's certificate") == true)
            // Nor may a hand-made certificate carrying the researcher URI without the usage fall
            // back to its common name as a site.
            let key = P256.Signing.PrivateKey()
            let uriOnly = try handMadeLeaf(
                signedBy: ca, publicKey: Certificate.PublicKey(key.publicKey), commonName: "hospital-b",
                sans: [.uniformResourceIdentifier("tessera://researcher/hospital-b")], usages: [.clientAuth])
            let asSite = await pkiError { _ = try await ca.peerValidator().validate(chain: [uriOnly]) }
            #expect(asSite?.code == .wrongRole)
            let asPeer = await pkiError { _ = try PeerIdentity(certificate: uriOnly) }
            #expect(asPeer?.code == .invalidIdentity)
        }
    }

    @Test("role marks that disagree are refused: a researcher usage with a site URI, or two roles")
    func disagreeingMarks() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let key = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
            let siteURI = try handMadeLeaf(
                signedBy: ca, publicKey: key, commonName: "bob",
                sans: [.uniformResourceIdentifier("tessera://site/bob")], usages: [.clientAuth, .tesseraResearcher])
            let mixed = await pkiError { _ = try PeerIdentity(certificate: siteURI) }
            #expect(mixed?.code == .invalidIdentity)
            #expect(mixed?.message.contains("exactly one Tessera URI") == true)
            let both = try handMadeLeaf(
                signedBy: ca, publicKey: key, commonName: "bob",
                sans: [.uniformResourceIdentifier("tessera://researcher/bob")],
                usages: [.clientAuth, .tesseraResearcher, .tesseraOperator])
            let twoRoles = await pkiError { _ = try PeerIdentity(certificate: both) }
            #expect(twoRoles?.code == .invalidIdentity)
            let otherName = try handMadeLeaf(
                signedBy: ca, publicKey: key, commonName: "mallory",
                sans: [.uniformResourceIdentifier("tessera://researcher/bob")],
                usages: [.clientAuth, .tesseraResearcher])
            let disagree = await pkiError { _ = try PeerIdentity(certificate: otherName) }
            #expect(disagree?.message.contains("must agree") == true)
        }
    }

    @Test("revoking a researcher works as for a site, and leaves a site of the same name alone")
    func revokesAResearcher() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let researcher = try ca.issueResearcher("alice", to: root.appendingPathComponent("researcher"))
            let site = try ca.issue(site: "alice", to: root.appendingPathComponent("site"))
            let revoked = try ca.revoke(researcher: "alice")
            #expect(revoked.map(\.serial) == [researcher.serial])
            #expect(try ca.revokedSerials() == [researcher.serial])
            let error = await pkiError { _ = try await ca.peerValidator().identify(chain: [researcher.certificate]) }
            #expect(error?.code == .revoked)
            #expect(error?.message.contains("researcher alice") == true)
            // The signed list the coordinator reads carries it too.
            #expect(try ca.signedRevocationList().serials.contains(researcher.serial))
            #expect(try await ca.peerValidator().validate(chain: [site.certificate]) == "alice")
            // Again: nothing new; an unknown researcher is an error naming it.
            #expect(try ca.revoke(researcher: "alice").isEmpty)
            let unknown = await pkiError { _ = try ca.revoke(researcher: "nobody") }
            #expect(unknown?.code == .unknownSite)
            #expect(unknown?.message.contains("researcher \"nobody\"") == true)
            // And revoking the site leaves nothing of the researcher's unrevoked by mistake: only
            // the site's two certificates are added.
            let siteEntries = try ca.revoke(site: "alice")
            #expect(siteEntries.count == 2)
            #expect(!siteEntries.map(\.serial).contains(researcher.serial))
        }
    }

    @Test("a researcher cancels only its own experiments; an operator any; a site none")
    func cancelRights() {
        let alice = PeerIdentity(role: .researcher, name: "alice")
        let bob = PeerIdentity(role: .researcher, name: "bob")
        let ops = PeerIdentity(role: .operator, name: "ops")
        let site = PeerIdentity(role: .site, name: "alice")
        #expect(alice.mayCancel(experimentSubmittedBy: alice))
        #expect(!alice.mayCancel(experimentSubmittedBy: bob))
        #expect(ops.mayCancel(experimentSubmittedBy: bob))
        #expect(!site.mayCancel(experimentSubmittedBy: site))
    }

    @Test("researcher names follow the site-name rules, with the role in the message")
    func researcherNames() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let error = await pkiError { _ = try ca.issueResearcher("a/b", to: root.appendingPathComponent("x")) }
            #expect(error?.code == .invalidSiteName)
            #expect(error?.message.contains("researcher name") == true)
            let reserved = await pkiError {
                _ = try ca.issueResearcher("Coordinator", to: root.appendingPathComponent("y"))
            }
            #expect(reserved?.code == .invalidSiteName)
        }
    }
}
