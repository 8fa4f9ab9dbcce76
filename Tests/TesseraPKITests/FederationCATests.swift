import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("Federation CA: files, issuing, revoking")
struct FederationCATests {
    @Test("init writes the documented layout; load and IssuedIdentity.load read it back")
    func roundTrip() async throws {
        try await withTemporaryDirectory { root in
            let caDirectory = root.appendingPathComponent("ca")
            let ca = try FederationCA.initialize(at: caDirectory, name: "Test Federation CA")
            for file in ["ca.pem", "ca-key.pem", "revoked.json", "revoked.signed", "issued.json"] {
                #expect(
                    FileManager.default.fileExists(atPath: caDirectory.appendingPathComponent(file).path), "\(file)")
            }
            #expect(try ca.revokedSerials().isEmpty)
            let revokedJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: ca.revokedURL))
            #expect((revokedJSON as? [Any])?.isEmpty == true)

            let loaded = try FederationCA.load(from: caDirectory)
            #expect(loaded.certificate == ca.certificate)
            #expect(loaded.certificate.subject.description.contains("Test Federation CA"))

            let siteDirectory = root.appendingPathComponent("hospital-a")
            let issued = try loaded.issue(site: "hospital-a", to: siteDirectory)
            #expect(issued.name == "hospital-a")
            #expect(issued.serial.count == 40)

            let identity = try IssuedIdentity.load(from: siteDirectory)
            #expect(identity.certificate == issued.certificate)
            #expect(identity.caCertificate == ca.certificate)
            #expect(identity.name == "hospital-a")
            #expect(identity.role == .site)
            #expect(try identity.privateKey().publicKey == identity.certificate.publicKey)

            // PEM files parse with swift-certificates directly, not only through our helpers.
            let certificate = try Certificate(
                pemEncoded: String(contentsOf: identity.files.certificate, encoding: .utf8))
            #expect(certificate == issued.certificate)
            #expect(
                try String(contentsOf: identity.files.privateKey, encoding: .utf8).hasPrefix(
                    "-----BEGIN PRIVATE KEY-----"))
            #expect(try String(contentsOf: ca.privateKeyURL, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))

            let index = try loaded.issuedCertificates()
            #expect(index.first?.serial == issued.serial)
            #expect(index.first?.site == "hospital-a")
            #expect(index.first?.role == .site)
            #expect(index.map(\.role) == [.site, .siteSigning])
        }
    }

    @Test("a site certificate has CN, the site URI, clientAuth only, digitalSignature, a 20-byte positive serial")
    func siteCertificateProfile() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let leaf = try ca.issue(site: "lab_2.eu", to: root.appendingPathComponent("site")).certificate
            #expect(leaf.subject.description == "CN=lab_2.eu")
            #expect(leaf.issuer == ca.certificate.subject)
            let sans = try #require(try leaf.extensions.subjectAlternativeNames)
            #expect(Array(sans) == [.uniformResourceIdentifier("tessera://site/lab_2.eu")])
            let usages = try #require(try leaf.extensions.extendedKeyUsage)
            #expect(Array(usages) == [.clientAuth])
            let keyUsage = try #require(try leaf.extensions.keyUsage)
            #expect(keyUsage.digitalSignature && !keyUsage.keyCertSign)
            #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
            #expect(leaf.serialNumber.bytes.count == 20)
            #expect(leaf.serialNumber.bytes.first! & 0x80 == 0)
            #expect(leaf.signatureAlgorithm == .ecdsaWithSHA256)
            #expect(ca.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
            let days = leaf.notValidAfter.timeIntervalSince(Date()) / 86_400
            #expect(abs(days - Double(FederationCA.defaultLeafValidityDays)) < 0.01)
            #expect(FederationCA.defaultLeafValidityDays == 365)
        }
    }

    @Test("the coordinator certificate carries its DNS and IP SANs, serverAuth and clientAuth")
    func coordinatorCertificate() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issueCoordinator(
                hosts: ["coord.example.org", "localhost", "127.0.0.1", "::1"], to: root.appendingPathComponent("coord"))
            let sans = try #require(try issued.certificate.extensions.subjectAlternativeNames)
            #expect(
                Array(sans) == [
                    .dnsName("coord.example.org"), .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                ])
            let usages = try #require(try issued.certificate.extensions.extendedKeyUsage)
            #expect(usages.contains(.serverAuth) && usages.contains(.clientAuth))
            #expect(issued.role == .coordinator)
            #expect(try IssuedIdentity.load(from: issued.directory).role == .coordinator)

            let defaults = try ca.issueCoordinator(to: root.appendingPathComponent("coord-default"))
            #expect(
                Array(try #require(try defaults.certificate.extensions.subjectAlternativeNames)) == [
                    .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ])

            for bad in ["", "bad host", "-x.org", "a..b", "x/y"] {
                let error = await pkiError {
                    _ = try ca.issueCoordinator(hosts: [bad], to: root.appendingPathComponent("coord-bad"))
                }
                #expect(error?.code == .invalidCertificate, "\(bad)")
            }
        }
    }

    @Test(
        "bad site names are refused before anything is written",
        arguments: [
            "", "a b", "coordinator", "Coordinator", String(repeating: "a", count: 65), "../x", "x/y", "é", ".", "..",
            "a\nb",
        ])
    func badSiteNames(name: String) async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let out = root.appendingPathComponent("site")
            let error = await pkiError { _ = try ca.issue(site: name, to: out) }
            #expect(error?.code == .invalidSiteName)
            #expect(error?.message.contains("\n") == false)
            #expect(!FileManager.default.fileExists(atPath: out.path))
            #expect(try ca.issuedCertificates().isEmpty)
        }
    }

    @Test(
        "names at the edges of the rules are accepted", arguments: ["a", String(repeating: "z", count: 64), "A-b_c.9"])
    func goodSiteNames(name: String) throws {
        try SiteName.validate(name)
    }

    @Test("init refuses to overwrite an existing CA and leaves it intact")
    func initRefusesOverwrite() async throws {
        try await withTemporaryDirectory { root in
            let directory = root.appendingPathComponent("ca")
            let ca = try FederationCA.initialize(at: directory)
            let keyBefore = try Data(contentsOf: ca.privateKeyURL)
            let error = await pkiError { _ = try FederationCA.initialize(at: directory) }
            #expect(error?.code == .alreadyExists)
            #expect(error?.message.contains(directory.path) == true)
            #expect(try Data(contentsOf: ca.privateKeyURL) == keyBefore)
            #expect(try FederationCA.load(from: directory).certificate == ca.certificate)

            // Issuing twice into one identity directory is refused too.
            _ = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let again = await pkiError { _ = try ca.issue(site: "s1", to: root.appendingPathComponent("s1")) }
            #expect(again?.code == .alreadyExists)
        }
    }

    @Test("key files are mode 0600 and their directories 0700")
    func keyPermissions() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let coordinator = try ca.issueCoordinator(to: root.appendingPathComponent("coord"))
            #expect(try permissions(ca.privateKeyURL) == 0o600)
            #expect(try permissions(site.files.privateKey) == 0o600)
            #expect(try permissions(coordinator.files.privateKey) == 0o600)
            #expect(try permissions(ca.directory) == 0o700)
            #expect(try permissions(site.directory) == 0o700)
            #expect(try permissions(site.files.certificate) == 0o644)
            // No temporary file is left behind by the atomic writes.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: site.directory.path)
            #expect(
                Set(leftovers) == [
                    "cert.pem", "key.pem", "ca.pem", "signing-cert.pem", "signing-key.pem", "revoked.signed",
                ])
            #expect(try permissions(site.files.signingPrivateKey) == 0o600)
        }
    }

    @Test("a key file other users can read is refused, with the file named")
    func insecureKeyRefused() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: ca.privateKeyURL.path)
            let error = await pkiError { _ = try FederationCA.load(from: ca.directory) }
            #expect(error?.code == .insecurePermissions)
            #expect(error?.message.contains("ca-key.pem") == true)
            #expect(
                try PEMFile.loadPrivateKey(from: ca.privateKeyURL, requireOwnerOnly: false).publicKey
                    == ca.certificate.publicKey)
        }
    }

    @Test("a key behind a symbolic link is judged by the file it points to (a Kubernetes Secret volume)")
    func symlinkedKeyJudgedByItsTarget() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let link = root.appendingPathComponent("linked-key.pem")
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: ca.privateKeyURL)
            #expect(try PEMFile.loadPrivateKey(from: link).publicKey == ca.certificate.publicKey)
            try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: ca.privateKeyURL.path)
            let error = await pkiError { _ = try PEMFile.loadPrivateKey(from: link) }
            #expect(error?.code == .insecurePermissions)
        }
    }

    @Test("key material never appears in error descriptions")
    func noKeyMaterialInErrors() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let secretLines = try pemBodyLines(ca.privateKeyURL) + pemBodyLines(site.files.privateKey)
            #expect(!secretLines.isEmpty)

            var errors: [PKIError] = []
            func collect(_ body: () async throws -> Void) async {
                if let error = await pkiError(body) { errors.append(error) }
            }
            let keyText = try String(contentsOf: site.files.privateKey, encoding: .utf8)

            // The right key bytes under the wrong label: the parser sees real key material.
            let relabelled = root.appendingPathComponent("relabelled.pem")
            try PEMFile.writeAtomically(
                keyText.replacingOccurrences(of: "PRIVATE KEY", with: "EC PRIVATE KEY"), to: relabelled, mode: 0o600)
            await collect { _ = try PEMFile.loadPrivateKey(from: relabelled) }

            // Truncated base64.
            let truncated = root.appendingPathComponent("truncated.pem")
            var lines = keyText.split(separator: "\n").map(String.init)
            lines[1] = String(lines[1].dropLast(7))
            try PEMFile.writeAtomically(lines.joined(separator: "\n"), to: truncated, mode: 0o600)
            await collect { _ = try PEMFile.loadPrivateKey(from: truncated) }

            // A key that is not P-256 in its DER: a certificate's bytes labelled as a key.
            let certificateAsKey = root.appendingPathComponent("cert-as-key.pem")
            try PEMFile.writeAtomically(
                try String(contentsOf: site.files.certificate, encoding: .utf8).replacingOccurrences(
                    of: "CERTIFICATE", with: "PRIVATE KEY"),
                to: certificateAsKey, mode: 0o600)
            await collect { _ = try PEMFile.loadPrivateKey(from: certificateAsKey) }

            // Someone else's key next to the CA certificate.
            let swapped = root.appendingPathComponent("swapped")
            try FileManager.default.createDirectory(at: swapped, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: ca.certificateURL, to: swapped.appendingPathComponent("ca.pem"))
            try FileManager.default.copyItem(
                at: site.files.privateKey, to: swapped.appendingPathComponent("ca-key.pem"))
            await collect { _ = try FederationCA.load(from: swapped) }

            // World-readable key.
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: relabelled.path)
            await collect { _ = try PEMFile.loadPrivateKey(from: relabelled) }

            #expect(errors.count == 5)
            #expect(Set(errors.map(\.code)) == [.invalidKey, .invalidPEM, .insecurePermissions])
            let rendered =
                errors.flatMap { [String(describing: $0), String(reflecting: $0)] }
                + [String(describing: ca), String(reflecting: ca), String(describing: site)]
            for text in rendered {
                for secret in secretLines {
                    #expect(!text.contains(secret), "key material in: \(text)")
                }
                #expect(!text.contains("BEGIN"), "PEM in: \(text)")
            }
        }
    }

    @Test("revoke(serial:) accepts openssl's spelling; revoke(site:) revokes every certificate of the site")
    func revocationList() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let first = try ca.issue(site: "s1", to: root.appendingPathComponent("s1-a"))
            let second = try ca.issue(site: "s1", to: root.appendingPathComponent("s1-b"))
            let other = try ca.issue(site: "s2", to: root.appendingPathComponent("s2"))

            // openssl x509 -serial prints upper case; some tools use colons and a leading 00.
            let spelled =
                "00:"
                + stride(from: 0, to: other.serial.count, by: 2).map { i -> String in
                    let start = other.serial.index(other.serial.startIndex, offsetBy: i)
                    return String(other.serial[start..<other.serial.index(start, offsetBy: 2)]).uppercased()
                }.joined(separator: ":")
            let entry = try ca.revoke(serial: spelled)
            #expect(entry.serial == other.serial)
            #expect(entry.site == "s2")
            #expect(try ca.revoke(serial: other.serial).revokedAt == entry.revokedAt)  // idempotent

            // Both issues of s1, each with its TLS and its signing certificate.
            let s1Serials = try [first, second].flatMap { issued in
                [issued.serial, try SiteSigningIdentity.load(from: issued.directory).serial]
            }
            let bySite = try ca.revoke(site: "s1")
            #expect(Set(bySite.map(\.serial)) == Set(s1Serials))
            #expect(try ca.revoke(site: "s1").isEmpty)
            #expect(try ca.revokedSerials() == Set(s1Serials + [other.serial]))
            #expect(try RevocationList.load(from: ca.revokedURL).count == 5)
            #expect(try FederationCA.load(from: ca.directory).revokedSerials().count == 5)

            let unknown = await pkiError { _ = try ca.revoke(site: "never-issued") }
            #expect(unknown?.code == .unknownSite)
            #expect(unknown?.message.contains("never-issued") == true)
            let badSerial = await pkiError { _ = try ca.revoke(serial: "xyz") }
            #expect(badSerial?.code == .invalidSerial)
        }
    }

    @Test("serials are canonical lowercase hex; only ASCII hex digits are accepted")
    func serialSpellings() throws {
        #expect(try SerialNumberHex.canonical("00:0A:bC") == "abc")
        #expect(try SerialNumberHex.canonical(" 0x000 ") == "0")
        // Fullwidth letters count as hex digits for Character.isHexDigit but name no serial.
        for bad in ["ａｂ", "1g", "", "0x", String(repeating: "f", count: 65)] {
            #expect(throws: PKIError.self, "\(bad)") { _ = try SerialNumberHex.canonical(bad) }
        }
    }

    @Test("concurrent revocations of one CA all land in revoked.json (the directory lock serialises them)")
    func concurrentRevocations() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let sites = (0..<8).map { "site-\($0)" }
            for site in sites { _ = try ca.issue(site: site, to: root.appendingPathComponent(site)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for site in sites {
                    group.addTask { _ = try FederationCA.load(from: ca.directory).revoke(site: site) }
                }
                try await group.waitForAll()
            }
            let revoked = try ca.revokedCertificates()
            #expect(revoked.count == 2 * sites.count)  // a TLS and a signing certificate per site
            #expect(try ca.signedRevocationList().serials == Set(revoked.map(\.serial)))
            #expect(Set(revoked.compactMap(\.site)) == Set(sites))
        }
    }

    @Test("the site name comes from the single tessera:// URI, which must agree with the CN")
    func siteIdentityRules() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            func make(cn: String?, sans: [GeneralName]) throws -> Certificate {
                let key = Certificate.PrivateKey(P256ForTests.newKey())
                return try Certificate(
                    version: .v3, serialNumber: FederationCA.randomSerialNumber(), publicKey: key.publicKey,
                    notValidBefore: Date() - 60, notValidAfter: Date() + 3600, issuer: ca.certificate.subject,
                    subject: try DistinguishedName { if let cn { CommonName(cn) } },
                    signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: try Certificate.Extensions {
                        try ExtendedKeyUsage([.clientAuth])
                        SubjectAlternativeNames(sans)
                    },
                    issuerPrivateKey: ca.privateKey)
            }
            #expect(
                try SiteIdentity.siteName(of: make(cn: "a", sans: [.uniformResourceIdentifier("tessera://site/a")]))
                    == "a")
            #expect(
                try SiteIdentity.siteName(of: make(cn: nil, sans: [.uniformResourceIdentifier("tessera://site/a")]))
                    == "a")
            // Fallback: no Tessera URI at all, a single valid CN.
            #expect(try SiteIdentity.siteName(of: make(cn: "b", sans: [.dnsName("b.example")])) == "b")

            let rejected: [(String?, [GeneralName])] = [
                (
                    "a",
                    [.uniformResourceIdentifier("tessera://site/a"), .uniformResourceIdentifier("tessera://site/b")]
                ),
                (
                    "a",
                    [.uniformResourceIdentifier("tessera://site/a"), .uniformResourceIdentifier("TESSERA://site/a")]
                ),
                ("a", [.uniformResourceIdentifier("tessera://site/b")]),
                ("a", [.uniformResourceIdentifier("tessera://site/a/b")]),
                (nil, [.uniformResourceIdentifier("tessera://site/")]),
                ("x", [.uniformResourceIdentifier("tessera://site/coordinator")]),
                (nil, []),
                ("coordinator", []),
                ("has space", []),
            ]
            for (cn, sans) in rejected {
                let error = await pkiError { _ = try SiteIdentity.siteName(of: make(cn: cn, sans: sans)) }
                #expect(error?.code == .invalidIdentity, "cn \(cn ?? "-") sans \(sans)")
            }
        }
    }
}
