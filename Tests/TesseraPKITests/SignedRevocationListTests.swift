import Foundation
import Testing
import X509

@testable import TesseraPKI

@Suite("SignedRevocationList: the CA-signed list sites get through the coordinator")
struct SignedRevocationListTests {
    /// Re-encodes a list's envelope with a different payload and/or signature.
    static func envelope(payload: [UInt8], signature: [UInt8]) -> [UInt8] {
        let json =
            "{\"payload\":\"\(Data(payload).base64EncodedString())\",\"signature\":\"\(Data(signature).base64EncodedString())\"}"
        return Array(json.utf8)
    }

    static func parts(_ list: SignedRevocationList) throws -> (payload: [UInt8], signature: [UInt8]) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(list.encoded)) as? [String: String])
        let payloadText = try #require(object["payload"])
        let signatureText = try #require(object["signature"])
        let payload = try #require(Data(base64Encoded: payloadText))
        let signature = try #require(Data(base64Encoded: signatureText))
        return (Array(payload), Array(signature))
    }

    @Test("init writes sequence 1 with no serials; each revocation re-signs with the next sequence")
    func sequenceFollowsRevocations() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let initial = try SignedRevocationList.load(from: ca.signedRevocationListURL, caCertificate: ca.certificate)
            #expect(initial.sequence == 1)
            #expect(initial.serials.isEmpty)
            #expect(initial.federation == SignedRevocationList.federationFingerprint(of: ca.certificate))
            #expect(initial.encoded == Array(try Data(contentsOf: ca.signedRevocationListURL)))

            let a = try ca.issue(site: "a", to: root.appendingPathComponent("a"))
            let b = try ca.issue(site: "b", to: root.appendingPathComponent("b"))
            try ca.revoke(serial: a.serial)
            let second = try ca.signedRevocationList()
            #expect(second.sequence == 2)
            #expect(second.serials == [a.serial])
            #expect(second.isNewer(than: initial) && !initial.isNewer(than: second) && !second.isNewer(than: second))
            #expect(second.isNewer(than: nil))

            // Revoking what is already revoked changes nothing and signs nothing new.
            try ca.revoke(serial: a.serial)
            #expect(try ca.signedRevocationList() == second)

            let bSerials = try ca.revoke(site: "b").map(\.serial)
            let third = try ca.signedRevocationList()
            #expect(third.sequence == 3)
            #expect(third.serials == Set([a.serial] + bSerials))
            #expect(third.serials == (try ca.revokedSerials()))
            #expect(bSerials.contains(b.serial))

            // The payload is the documented JSON.
            let payload = try #require(
                try JSONSerialization.jsonObject(with: Data(try Self.parts(third).payload)) as? [String: Any])
            #expect(Set(payload.keys) == ["federation", "sequence", "issuedAt", "serials"])
            #expect(payload["sequence"] as? Int == 3)
            #expect((payload["serials"] as? [String]) == third.serials.sorted())
        }
    }

    @Test("issue puts the current signed list in the identity folder; a CA from before signed lists gets one")
    func identityFoldersAndOldCAs() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let a = try ca.issue(site: "a", to: root.appendingPathComponent("a"))
            try ca.revoke(site: "a")
            let b = try ca.issue(site: "b", to: root.appendingPathComponent("b"))
            let coordinator = try ca.issueCoordinator(to: root.appendingPathComponent("coord"))
            let atA = try SignedRevocationList.load(from: a.files.signedRevocationList, caCertificate: ca.certificate)
            let atB = try SignedRevocationList.load(from: b.files.signedRevocationList, caCertificate: ca.certificate)
            let atCoordinator = try SignedRevocationList.load(
                from: coordinator.files.signedRevocationList, caCertificate: ca.certificate)
            #expect(atA.sequence == 1)
            #expect(atB.sequence == 2)
            #expect(atB.serials.contains(a.serial))
            #expect(atCoordinator == atB)

            // A CA directory made before revoked.signed existed: the list appears on first use,
            // continuing from revoked.json.
            try FileManager.default.removeItem(at: ca.signedRevocationListURL)
            let recreated = try ca.signedRevocationList()
            #expect(recreated.sequence == 1)
            #expect(recreated.serials == atB.serials)
            _ = try ca.issue(site: "c", to: root.appendingPathComponent("c"))
            #expect(try ca.signedRevocationList() == recreated)

            // An interrupted revocation (revoked.json written, revoked.signed not) heals on next use.
            var entries = try ca.revokedCertificates()
            entries.append(RevokedCertificate(serial: "abc", site: nil, revokedAt: Date(timeIntervalSince1970: 0)))
            try JSONRecords.write(entries, to: ca.revokedURL)
            let healed = try ca.signedRevocationList()
            #expect(healed.sequence == 2)
            #expect(healed.serials.contains("abc"))

            // A corrupt revoked.signed stops the CA from signing a new one, with the file named.
            try PEMFile.writeAtomically("{}", to: ca.signedRevocationListURL)
            let corrupt = await pkiError { _ = try ca.revoke(serial: "def") }
            #expect(corrupt?.code == .invalidRevocationList)
            #expect(corrupt?.message.contains("revoked.signed") == true)
        }
    }

    @Test("a list signed by another federation's CA is refused as another federation's, whatever its name")
    func refusesOtherFederation() async throws {
        let ours = try EphemeralFederationCA(notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        let theirs = try EphemeralFederationCA(
            notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        #expect(ours.caCertificate.subject == theirs.caCertificate.subject)
        let list = try theirs.signedRevocationList(issuedAt: referenceDate)
        let error = await pkiError {
            _ = try SignedRevocationList.verify(list.encoded, caCertificate: ours.caCertificate)
        }
        #expect(error?.code == .untrustedIssuer)
        #expect(error?.message.contains("another federation") == true)
        #expect(try SignedRevocationList.verify(list.encoded, caCertificate: theirs.caCertificate) == list)
    }

    @Test("a payload changed on the way, or a signature swapped in, fails the signature check")
    func refusesTampering() async throws {
        let ca = try EphemeralFederationCA(notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        try ca.revoke(serial: "0a")
        let old = try ca.signedRevocationList(issuedAt: referenceDate)
        try ca.revoke(serial: "0b")
        let new = try ca.signedRevocationList(issuedAt: referenceDate + 60)
        let (payload, signature) = try Self.parts(new)

        // Dropping a serial from the payload (a coordinator sparing a revoked site).
        let text = String(decoding: payload, as: UTF8.self)
        let spared = Array(text.replacingOccurrences(of: "\"a\",", with: "").utf8)
        #expect(spared != payload)
        let dropped = await pkiError {
            _ = try SignedRevocationList.verify(
                Self.envelope(payload: spared, signature: signature), caCertificate: ca.caCertificate)
        }
        #expect(dropped?.code == .invalidSignature)

        // The new payload with the old list's signature.
        let swapped = await pkiError {
            _ = try SignedRevocationList.verify(
                Self.envelope(payload: payload, signature: try Self.parts(old).signature),
                caCertificate: ca.caCertificate)
        }
        #expect(swapped?.code == .invalidSignature)
        #expect(swapped?.message.contains("sequence 2") == true)

        let garbage = await pkiError {
            _ = try SignedRevocationList.verify(
                Self.envelope(payload: payload, signature: [0x30, 0x00]), caCertificate: ca.caCertificate)
        }
        #expect(garbage?.code == .invalidSignature)
        #expect(try SignedRevocationList.verify(new.encoded, caCertificate: ca.caCertificate).serials == ["a", "b"])
        #expect(new.isNewer(than: old))
    }

    @Test("malformed input is refused with invalidRevocationList, oversized input with tooLarge")
    func refusesMalformed() async throws {
        let ca = try EphemeralFederationCA(notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        let signature = try Self.parts(ca.signedRevocationList(issuedAt: referenceDate)).signature
        let malformed: [[UInt8]] = [
            [],
            Array("not json".utf8),
            Array("[]".utf8),
            Array("{\"payload\": \"AAAA\"}".utf8),
            Array("{\"payload\": \"%%%\", \"signature\": \"AAAA\"}".utf8),
            Self.envelope(payload: Array("{}".utf8), signature: signature),
            Self.envelope(payload: Array("not json".utf8), signature: signature),
            Self.envelope(
                payload: Array(
                    "{\"federation\":\"x\",\"sequence\":-1,\"issuedAt\":\"2030-01-01T00:00:00Z\",\"serials\":[]}".utf8),
                signature: signature),
            Self.envelope(
                payload: Array(
                    "{\"federation\":\"x\",\"sequence\":1,\"issuedAt\":\"yesterday\",\"serials\":[]}".utf8),
                signature: signature),
        ]
        for bytes in malformed {
            let error = await pkiError { _ = try SignedRevocationList.verify(bytes, caCertificate: ca.caCertificate) }
            #expect(error?.code == .invalidRevocationList, "\(String(decoding: bytes, as: UTF8.self))")
        }
        let oversized = [UInt8](repeating: 0x20, count: SignedRevocationList.maximumEncodedSize + 1)
        let error = await pkiError { _ = try SignedRevocationList.verify(oversized, caCertificate: ca.caCertificate) }
        #expect(error?.code == .tooLarge)

        try await withTemporaryDirectory { root in
            let url = root.appendingPathComponent("revoked.signed")
            try Data(oversized).write(to: url)
            let fromFile = await pkiError {
                _ = try SignedRevocationList.load(from: url, caCertificate: ca.caCertificate)
            }
            #expect(fromFile?.code == .tooLarge)
            #expect(fromFile?.message.contains(url.path) == true)
            let missing = await pkiError {
                _ = try SignedRevocationList.load(
                    from: root.appendingPathComponent("none.signed"), caCertificate: ca.caCertificate)
            }
            #expect(missing?.code == .notFound)
        }
    }

    @Test("a properly signed list with a non-canonical serial is still refused")
    func refusesNonCanonicalSerials() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            for serial in ["0A", "00a", "xyz", ""] {
                let list = try SignedRevocationList.sign(
                    serials: [serial], sequence: 9, issuedAt: referenceDate, caCertificate: ca.certificate,
                    caKey: ca.privateKey)
                let error = await pkiError {
                    _ = try SignedRevocationList.verify(list.encoded, caCertificate: ca.certificate)
                }
                #expect(error?.code == .invalidRevocationList, "\(serial)")
            }
            // The size bound already keeps a list under the serial bound; the count check is
            // exercised with a lower bound.
            let three = try SignedRevocationList.sign(
                serials: ["a", "b", "c"], sequence: 9, issuedAt: referenceDate, caCertificate: ca.certificate,
                caKey: ca.privateKey)
            let error = await pkiError {
                _ = try SignedRevocationList.verify(
                    three.encoded, caCertificate: ca.certificate, maximumSerialCount: 2)
            }
            #expect(error?.code == .tooLarge)
            #expect(
                try SignedRevocationList.verify(three.encoded, caCertificate: ca.certificate, maximumSerialCount: 3)
                    .serials.count == 3)
        }
    }

    @Test(
        "openssl verifies the list's signature with the key in ca.pem",
        .enabled(if: opensslPath != nil, "openssl is not installed"))
    func opensslVerifiesSignature() async throws {
        try await withTemporaryDirectory { root in
            let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
            let site = try ca.issue(site: "s1", to: root.appendingPathComponent("s1"))
            try ca.revoke(serial: site.serial)
            let (payload, signature) = try Self.parts(try ca.signedRevocationList())
            try Data(payload).write(to: root.appendingPathComponent("payload.json"))
            try Data(signature).write(to: root.appendingPathComponent("payload.sig"))
            let key = try runOpenSSL(["x509", "-in", ca.certificateURL.path, "-noout", "-pubkey"], in: root)
            try Data(key.output.utf8).write(to: root.appendingPathComponent("ca-pub.pem"))
            let verify = try runOpenSSL(
                ["dgst", "-sha256", "-verify", "ca-pub.pem", "-signature", "payload.sig", "payload.json"], in: root)
            #expect(verify.status == 0, "\(verify.output)")
            #expect(verify.output.contains("Verified OK"))
        }
    }
}
