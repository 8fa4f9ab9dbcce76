import Foundation
import TesseraPKI

/// A throwaway federation PKI in a temporary directory, for the benchmarks that open mTLS
/// connections on 127.0.0.1: a CA, the coordinator's identity (for 127.0.0.1) and one site's
/// (every client may present it). ``remove()`` deletes it.
struct ThrowawayPKI {
    let root: URL
    let caCertificate: URL
    /// `cert.pem` and `key.pem` of the coordinator.
    let coordinatorIdentity: URL
    /// `cert.pem`, `key.pem` and `ca.pem` of a site.
    let siteIdentity: URL

    init(purpose: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(purpose)-\(UUID().uuidString)")
        let caDirectory = root.appendingPathComponent("ca")
        caCertificate = caDirectory.appendingPathComponent(FederationCA.certificateFileName)
        coordinatorIdentity = root.appendingPathComponent("coordinator")
        siteIdentity = root.appendingPathComponent("site")
        do {
            let ca = try FederationCA.initialize(
                at: caDirectory, name: "Tessera benchmark CA (throwaway)", validityDays: 2)
            _ = try ca.issueCoordinator(hosts: ["127.0.0.1"], to: coordinatorIdentity, validityDays: 1)
            _ = try ca.issue(site: "site", to: siteIdentity, validityDays: 1)
        } catch {
            remove()
            throw error
        }
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}
