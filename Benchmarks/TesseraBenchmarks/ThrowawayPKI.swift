import Foundation
import Logging
import TesseraPKI
import TesseraParticipant

/// A throwaway federation PKI in a temporary directory, for the benchmarks that open mTLS
/// connections on 127.0.0.1 or run the active-adversary protocol: a CA, the coordinator's
/// identity (for 127.0.0.1), one site's (every client may present it), and the identities of
/// the named sites, each with its signing certificate. ``remove()`` deletes it.
struct ThrowawayPKI {
    let root: URL
    let caDirectory: URL
    let caCertificate: URL
    /// `cert.pem` and `key.pem` of the coordinator.
    let coordinatorIdentity: URL
    /// `cert.pem`, `key.pem` and `ca.pem` of a site.
    let siteIdentity: URL
    /// The identity directory of each named site: its TLS and signing certificates and keys.
    let siteIdentities: [String: URL]

    init(purpose: String, sites: [String] = []) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(purpose)-\(UUID().uuidString)")
        caDirectory = root.appendingPathComponent("ca")
        caCertificate = caDirectory.appendingPathComponent(FederationCA.certificateFileName)
        coordinatorIdentity = root.appendingPathComponent("coordinator")
        siteIdentity = root.appendingPathComponent("site")
        var siteIdentities: [String: URL] = [:]
        do {
            let ca = try FederationCA.initialize(
                at: caDirectory, name: "Tessera benchmark CA (throwaway)", validityDays: 2)
            _ = try ca.issueCoordinator(hosts: ["127.0.0.1"], to: coordinatorIdentity, validityDays: 1)
            _ = try ca.issue(site: "site", to: siteIdentity, validityDays: 1)
            for site in sites {
                let directory = root.appendingPathComponent("sites").appendingPathComponent(site)
                _ = try ca.issue(site: site, to: directory, validityDays: 1)
                siteIdentities[site] = directory
            }
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
        self.siteIdentities = siteIdentities
    }

    /// What `site` trusts and signs with, loaded from its identity directory as
    /// `tessera-participant` loads it: its signing key and certificate, and its check of its
    /// peers' signing certificates.
    func trust(of site: String) throws -> SiteTrust {
        guard let directory = siteIdentities[site] else {
            throw BenchmarkError("the benchmark PKI issued no identity for \(site)")
        }
        return try Self.trust(identityDirectory: directory)
    }

    /// The trust of a site identity directory issued by a ``FederationCA``; refuses one without a
    /// signing certificate, which every benchmark site needs.
    static func trust(identityDirectory directory: URL) throws -> SiteTrust {
        let trust = try SiteTrust(
            identityDirectory: directory,
            caCertificate: directory.appendingPathComponent(IssuedIdentity.caCertificateFileName),
            logger: Logger(label: "tessera.bench") { _ in SwiftLogNoOpLogHandler() })
        guard trust.signer != nil else {
            throw BenchmarkError("\(directory.path) has no signing certificate")
        }
        return trust
    }

    /// The coordinator's check of the signing certificates sites offer, as `tessera-coordinator`
    /// builds it from its CA directory: the CA certificate and `revoked.json`.
    func coordinatorSigningValidator() throws -> SigningCertificateValidator {
        SigningCertificateValidator(
            caCertificate: try PEMFile.loadCertificate(from: caCertificate),
            revocation: .file(caDirectory.appendingPathComponent(FederationCA.revokedFileName)))
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}
