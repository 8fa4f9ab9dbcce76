import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("Site signing certificates: issuing, loading, key separation")
struct SiteSigningIdentityTests {
    @Test("issue writes an Ed25519 signing certificate and key beside the TLS identity, and records both")
    func issueWritesSigningPair() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("a"))
            let files = issued.files
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: issued.directory.path)
            #expect(
                Set(leftovers) == [
                    "cert.pem", "key.pem", "ca.pem", "signing-cert.pem", "signing-key.pem", "revoked.signed",
                ])
            #expect(try permissions(files.signingPrivateKey) == 0o600)
            #expect(try permissions(files.signingCertificate) == 0o644)
            #expect(
                try String(contentsOf: files.signingPrivateKey, encoding: .utf8).hasPrefix(
                    "-----BEGIN PRIVATE KEY-----"))

            let signing = try SiteSigningIdentity.load(from: issued.directory)
            #expect(signing.site == "hospital-a")
            #expect(signing.ed25519PublicKey.count == 32)
            #expect(signing.serial != issued.serial)
            #expect(try Certificate(derEncoded: signing.certificateDER) == signing.certificate)

            // The seed really is the key of the certificate: a signature made from it verifies
            // under the certificate's public key.
            let seedWorks = try signing.withPrivateKeySeed { seed in
                #expect(seed.count == 32)
                return try Ed25519ForTests.signAndVerify(
                    seed: seed, publicKey: signing.ed25519PublicKey, message: Array("round 7 keys".utf8))
            }
            #expect(seedWorks)

            let index = try ca.issuedCertificates()
            #expect(index.count == 2)
            #expect(Set(index.map(\.role)) == [.site, .siteSigning])
            #expect(index.allSatisfy { $0.site == "hospital-a" && $0.directory == issued.directory.path })
            #expect(Set(index.map(\.serial)) == [issued.serial, signing.serial])
            let onDisk = try String(contentsOf: ca.issuedURL, encoding: .utf8)
            #expect(onDisk.contains("\"site-signing\""))
        }
    }

    @Test("the signing certificate's profile: same names, Ed25519, critical digitalSignature, only the Tessera usage")
    func signingProfile() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "lab_2.eu", to: root.appendingPathComponent("site"))
            let leaf = try SiteSigningIdentity.load(from: issued.directory).certificate
            #expect(leaf.subject == issued.certificate.subject)
            #expect(
                Array(try #require(try leaf.extensions.subjectAlternativeNames)) == [
                    .uniformResourceIdentifier("tessera://site/lab_2.eu")
                ])
            #expect(Array(try #require(try leaf.extensions.extendedKeyUsage)) == [.tesseraSecureAggregationSigning])
            let keyUsage = try #require(leaf.extensions[oid: .X509ExtensionID.keyUsage])
            #expect(keyUsage.critical)
            #expect(try KeyUsage(keyUsage) == KeyUsage(digitalSignature: true))
            #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
            #expect(leaf.publicKey.description.contains("Ed25519"))
            #expect(leaf.signatureAlgorithm == .ecdsaWithSHA256)
            #expect(ca.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
            #expect(leaf.serialNumber.bytes.count == 20)
            #expect(
                ASN1ObjectIdentifier.Tessera.secureAggregationSigning.description.hasPrefix("2.25."))
        }
    }

    @Test("an identity directory from before signing certificates gets one with issueSigningCertificate, once")
    func upgradeExistingDirectory() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "old-site", to: root.appendingPathComponent("old"))
            // Make it look like a directory issued before this change.
            for file in [
                issued.files.signingCertificate, issued.files.signingPrivateKey, issued.files.signedRevocationList,
            ] {
                try FileManager.default.removeItem(at: file)
            }
            let missing = await pkiError { _ = try SiteSigningIdentity.load(from: issued.directory) }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.contains("--signing-only") == true)
            #expect(missing?.message.contains("signing-cert.pem") == true)

            let added = try ca.issueSigningCertificate(site: "old-site", to: issued.directory)
            #expect(added.site == "old-site")
            let loaded = try SiteSigningIdentity.load(from: issued.directory)
            #expect(loaded.certificate == added.certificate)
            #expect(loaded.ed25519PublicKey == added.ed25519PublicKey)
            #expect(FileManager.default.fileExists(atPath: issued.files.signedRevocationList.path))
            #expect(try IssuedIdentity.load(from: issued.directory).certificate == issued.certificate)
            #expect(try ca.issuedCertificates().filter { $0.role == .siteSigning }.count == 2)

            // Never overwritten.
            let keyBefore = try Data(contentsOf: issued.files.signingPrivateKey)
            let again = await pkiError { _ = try ca.issueSigningCertificate(site: "old-site", to: issued.directory) }
            #expect(again?.code == .alreadyExists)
            #expect(try Data(contentsOf: issued.files.signingPrivateKey) == keyBefore)
        }
    }

    @Test("issueSigningCertificate refuses another site's folder, another federation's folder, and bad names")
    func upgradeRefusals() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let other = try FederationCA.initialize(at: root.appendingPathComponent("other"))
            let issued = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            for file in [issued.files.signingCertificate, issued.files.signingPrivateKey] {
                try FileManager.default.removeItem(at: file)
            }
            let wrongSite = await pkiError { _ = try ca.issueSigningCertificate(site: "s2", to: issued.directory) }
            #expect(wrongSite?.code == .invalidIdentity)
            #expect(wrongSite?.message.contains("\"s1\"") == true)

            let foreign = await pkiError { _ = try other.issueSigningCertificate(site: "s1", to: issued.directory) }
            #expect(foreign?.code == .untrustedIssuer)
            #expect(!FileManager.default.fileExists(atPath: issued.files.signingCertificate.path))

            // A cert.pem from another CA next to this CA's ca.pem is refused too.
            let mixed = root.appendingPathComponent("mixed")
            let foreignSite = try other.issue(site: "s1", to: root.appendingPathComponent("foreign"))
            try FileManager.default.createDirectory(at: mixed, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: foreignSite.files.certificate, to: mixed.appendingPathComponent("cert.pem"))
            let mixedError = await pkiError { _ = try ca.issueSigningCertificate(site: "s1", to: mixed) }
            #expect(mixedError?.code == .untrustedIssuer)

            let badName = await pkiError {
                _ = try ca.issueSigningCertificate(site: "coordinator", to: root.appendingPathComponent("c"))
            }
            #expect(badName?.code == .invalidSiteName)
            let badValidity = await pkiError {
                _ = try ca.issueSigningCertificate(site: "s1", to: issued.directory, validityDays: 0)
            }
            #expect(badValidity?.code == .invalidCertificate)
            // Only the certificate `issue` made: no refusal left a record behind.
            #expect(try ca.issuedCertificates().filter { $0.role == .siteSigning }.count == 1)
        }
    }

    @Test("issue refuses a folder that already holds a signing key, and writes nothing")
    func issueRefusesExistingSigningFiles() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let directory = root.appendingPathComponent("s1")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try PEMFile.writeAtomically(
                "placeholder", to: directory.appendingPathComponent("signing-key.pem"), mode: 0o600)
            let error = await pkiError { _ = try ca.issue(site: "s1", to: directory) }
            #expect(error?.code == .alreadyExists)
            #expect(error?.message.contains("signing-key.pem") == true)
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("cert.pem").path))
            #expect(try ca.issuedCertificates().isEmpty)
        }
    }

    @Test("revoke(site:) revokes the TLS and the signing certificate")
    func revokeSiteRevokesBoth() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let signing = try SiteSigningIdentity.load(from: issued.directory)
            let revoked = try ca.revoke(site: "s1")
            #expect(Set(revoked.map(\.serial)) == [issued.serial, signing.serial])
            #expect(try ca.signedRevocationList().serials == [issued.serial, signing.serial])
            let error = await pkiError {
                _ = try await ca.signingValidator().validate(derEncoded: signing.certificateDER, at: Date())
            }
            #expect(error?.code == .revoked)
        }
    }

    @Test("an issued.json written before signing certificates still decodes, and new entries append to it")
    func oldIndexDecodes() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let old = """
                [{"serial": "ab", "site": "s1", "role": "site", "notValidBefore": "2024-01-01T00:00:00Z",
                  "notValidAfter": "2026-01-01T00:00:00Z", "directory": "/old/s1"},
                 {"serial": "cd", "site": "coordinator", "role": "coordinator",
                  "notValidBefore": "2024-01-01T00:00:00Z", "notValidAfter": "2026-01-01T00:00:00Z",
                  "directory": "/old/coord"}]
                """
            try PEMFile.writeAtomically(old, to: ca.issuedURL)
            #expect(try ca.issuedCertificates().map(\.role) == [.site, .coordinator])
            _ = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            #expect(try ca.issuedCertificates().map(\.role) == [.site, .coordinator, .site, .siteSigning])
            #expect(try ca.revoke(site: "s1").count == 3)
        }
    }

    @Test("loading refuses a mixed-up directory, naming the file")
    func loadRefusals() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let a = try ca.issue(site: "a", to: root.appendingPathComponent("a"))
            let b = try ca.issue(site: "b", to: root.appendingPathComponent("b"))
            func copy(_ from: URL, to directory: URL, as name: String? = nil) throws {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try FileManager.default.copyItem(
                    at: from, to: directory.appendingPathComponent(name ?? from.lastPathComponent))
            }

            // b's signing key next to a's signing certificate.
            let swappedKey = root.appendingPathComponent("swapped-key")
            try copy(a.files.signingCertificate, to: swappedKey)
            try copy(b.files.signingPrivateKey, to: swappedKey)
            try copy(a.files.caCertificate, to: swappedKey)
            let keyError = await pkiError { _ = try SiteSigningIdentity.load(from: swappedKey) }
            #expect(keyError?.code == .invalidKey)
            #expect(keyError?.message.contains("signing-key.pem") == true)

            // b's signing certificate next to a's TLS certificate.
            let swappedSite = root.appendingPathComponent("swapped-site")
            try copy(b.files.signingCertificate, to: swappedSite)
            try copy(b.files.signingPrivateKey, to: swappedSite)
            try copy(a.files.caCertificate, to: swappedSite)
            try copy(a.files.certificate, to: swappedSite)
            let siteError = await pkiError { _ = try SiteSigningIdentity.load(from: swappedSite) }
            #expect(siteError?.code == .invalidIdentity)
            #expect(siteError?.message.contains("\"a\"") == true && siteError?.message.contains("\"b\"") == true)

            // Another federation's ca.pem.
            let other = try FederationCA.initialize(at: root.appendingPathComponent("other"))
            let foreignCA = root.appendingPathComponent("foreign-ca")
            try copy(a.files.signingCertificate, to: foreignCA)
            try copy(a.files.signingPrivateKey, to: foreignCA)
            try copy(other.certificateURL, to: foreignCA)
            let caError = await pkiError { _ = try SiteSigningIdentity.load(from: foreignCA) }
            #expect(caError?.code == .untrustedIssuer)

            // The TLS certificate and key under the signing names: wrong purpose.
            let tlsAsSigning = root.appendingPathComponent("tls-as-signing")
            try copy(a.files.certificate, to: tlsAsSigning, as: "signing-cert.pem")
            try copy(a.files.privateKey, to: tlsAsSigning, as: "signing-key.pem")
            try copy(a.files.caCertificate, to: tlsAsSigning)
            let purposeError = await pkiError { _ = try SiteSigningIdentity.load(from: tlsAsSigning) }
            #expect(purposeError?.code == .wrongPurpose)

            // A P-256 key under the signing key's name, with the right certificate.
            let p256Key = root.appendingPathComponent("p256-key")
            try copy(a.files.signingCertificate, to: p256Key)
            try copy(a.files.privateKey, to: p256Key, as: "signing-key.pem")
            try copy(a.files.caCertificate, to: p256Key)
            let keyTypeError = await pkiError { _ = try SiteSigningIdentity.load(from: p256Key) }
            #expect(keyTypeError?.code == .wrongKeyType)

            // A world-readable signing key.
            try FileManager.default.setAttributes(
                [.posixPermissions: 0o644], ofItemAtPath: a.files.signingPrivateKey.path)
            let modeError = await pkiError { _ = try SiteSigningIdentity.load(from: a.directory) }
            #expect(modeError?.code == .insecurePermissions)
            #expect(modeError?.message.contains("signing-key.pem") == true)

            // Not PEM, and PEM that is no key.
            try PEMFile.writeAtomically("not pem", to: b.files.signingPrivateKey, mode: 0o600)
            #expect(await pkiError { _ = try SiteSigningIdentity.load(from: b.directory) }?.code == .invalidPEM)
            try PEMFile.writeAtomically(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", to: b.files.signingPrivateKey,
                mode: 0o600)
            #expect(await pkiError { _ = try SiteSigningIdentity.load(from: b.directory) }?.code == .invalidKey)
            try PEMFile.writeAtomically(
                try String(contentsOf: b.files.certificate, encoding: .utf8), to: b.files.signingPrivateKey,
                mode: 0o600)
            #expect(await pkiError { _ = try SiteSigningIdentity.load(from: b.directory) }?.code == .invalidPEM)
        }
    }

    @Test("the Ed25519 key file is PKCS#8: other tools' variants load, other shapes are refused")
    func pkcs8Shapes() throws {
        let key = Ed25519ForTests.newKey()
        let seed = Array(key.rawRepresentation)
        let prefix: [UInt8] = [
            0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ]
        #expect(Ed25519PKCS8.seed(derEncoded: prefix + seed) == seed)
        #expect(try PEMFile.pem(of: key).contains("BEGIN PRIVATE KEY"))

        // Version 1 with the public key appended as [1] (RFC 5958), as some tools write it.
        let publicKey = Array(key.publicKey.rawRepresentation)
        let withPublic: [UInt8] =
            [0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20] + seed
            + [0x81, 0x21, 0x00] + publicKey
        #expect(Ed25519PKCS8.seed(derEncoded: withPublic) == seed)

        var x25519 = prefix + seed
        x25519[11] = 0x6E  // 1.3.101.110 is X25519, not Ed25519
        #expect(Ed25519PKCS8.seed(derEncoded: x25519) == nil)
        var shortSeed = prefix + seed.dropLast()
        shortSeed[1] = 0x2D
        shortSeed[13] = 0x21
        shortSeed[15] = 0x1F
        #expect(Ed25519PKCS8.seed(derEncoded: shortSeed) == nil)
        var version2 = prefix + seed
        version2[4] = 0x02
        #expect(Ed25519PKCS8.seed(derEncoded: version2) == nil)
        #expect(Ed25519PKCS8.seed(derEncoded: prefix + seed + [0x05, 0x00]) == nil)  // trailing bytes
        #expect(Ed25519PKCS8.seed(derEncoded: []) == nil)
    }

    @Test("no key byte reaches a description, a mirror or an error")
    func noKeyMaterialInDescriptions() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let issued = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            let signing = try SiteSigningIdentity.load(from: issued.directory)
            let secretLines = try pemBodyLines(issued.files.signingPrivateKey)
            let seedHex = signing.withPrivateKeySeed { $0.map { String(format: "%02x", $0) }.joined() }
            var dumped = ""
            dump(signing, to: &dumped)

            // The key's bytes under a certificate label: the parser sees real key material.
            let keyText = try String(contentsOf: issued.files.signingPrivateKey, encoding: .utf8)
            try PEMFile.writeAtomically(
                keyText.replacingOccurrences(of: "PRIVATE KEY", with: "CERTIFICATE"),
                to: issued.files.signingPrivateKey, mode: 0o600)
            let error = try #require(await pkiError { _ = try SiteSigningIdentity.load(from: issued.directory) })

            let ephemeral = try EphemeralFederationCA(notValidBefore: referenceDate - 86_400)
            let credential = try ephemeral.issueSigningCredential(
                site: "s1", notValidBefore: referenceDate, notValidAfter: referenceDate + 86_400)
            var dumpedCredential = ""
            dump(credential, to: &dumpedCredential)
            let credentialSeed = credential.ed25519Seed.map { String(format: "%02x", $0) }.joined()

            let rendered = [
                String(describing: signing), String(reflecting: signing), dumped, String(describing: error),
                String(reflecting: error), String(describing: credential), dumpedCredential,
                String(describing: ephemeral),
            ]
            for text in rendered {
                for secret in secretLines { #expect(!text.contains(secret), "key material in: \(text)") }
                #expect(!text.contains(seedHex))
                #expect(!text.contains(credentialSeed))
                #expect(!text.contains("BEGIN"))
            }
            #expect(!dumpedCredential.contains("\(credential.ed25519Seed)"))
        }
    }

    @Test(
        "openssl reads the signing key and certificate and verifies the certificate against ca.pem",
        .enabled(if: opensslPath != nil, "openssl is not installed"))
    func opensslAgrees() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "hospital-a", to: root.appendingPathComponent("site"))
            let text = try runOpenSSL(["x509", "-in", "signing-cert.pem", "-noout", "-text"], in: site.directory)
            #expect(text.status == 0, "\(text.output)")
            #expect(text.output.contains("ED25519"))
            #expect(text.output.contains("URI:tessera://site/hospital-a"))
            #expect(text.output.contains(ASN1ObjectIdentifier.Tessera.secureAggregationSigning.description))
            #expect(!text.output.contains("TLS Web Client Authentication"))
            #expect(text.output.contains("Digital Signature"))

            let verify = try runOpenSSL(["verify", "-CAfile", "ca.pem", "signing-cert.pem"], in: site.directory)
            #expect(verify.status == 0, "\(verify.output)")
            // openssl, too, will not accept it for TLS.
            let asClient = try runOpenSSL(
                ["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "signing-cert.pem"], in: site.directory)
            #expect(asClient.status != 0)

            let key = try runOpenSSL(["pkey", "-in", "signing-key.pem", "-pubout"], in: site.directory)
            #expect(key.status == 0, "\(key.output)")
            let certificateKey = try runOpenSSL(
                ["x509", "-in", "signing-cert.pem", "-noout", "-pubkey"], in: site.directory)
            #expect(key.output == certificateKey.output)
        }
    }
}
