import Foundation
import SwiftASN1
import Testing
import X509

@testable import TesseraPKI

@Suite("EphemeralFederationCA: an in-memory federation for simulations")
struct EphemeralFederationCATests {
    @Test("it issues the same signing profile as the file-backed CA and refuses what that CA refuses")
    func profileAndRefusals() async throws {
        let ca = try EphemeralFederationCA(
            name: "Sim CA", notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        #expect(ca.caCertificate.subject.description == "CN=Sim CA")
        #expect(try ca.caCertificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let credential = try ca.issueSigningCredential(
            site: "s1", notValidBefore: referenceDate, notValidAfter: referenceDate + 60)
        let certificate = try Certificate(derEncoded: credential.certificateDER)
        #expect(Array(try #require(try certificate.extensions.extendedKeyUsage)) == [.tesseraSecureAggregationSigning])
        #expect(SerialNumberHex.string(certificate.serialNumber) == credential.serial)
        #expect(credential.ed25519Seed.count == 32)

        let outlives = await pkiError {
            _ = try ca.issueSigningCredential(
                site: "s1", notValidBefore: referenceDate, notValidAfter: referenceDate + 86_401)
        }
        #expect(outlives?.code == .invalidCertificate)
        #expect(outlives?.message.contains("outlive") == true)
        let backwards = await pkiError {
            _ = try ca.issueSigningCredential(site: "s1", notValidBefore: referenceDate, notValidAfter: referenceDate)
        }
        #expect(backwards?.code == .invalidCertificate)
        let reserved = await pkiError {
            _ = try ca.issueSigningCredential(
                site: "coordinator", notValidBefore: referenceDate, notValidAfter: referenceDate + 60)
        }
        #expect(reserved?.code == .invalidSiteName)
        let noHosts = await pkiError {
            _ = try ca.issueCoordinatorCertificate(
                hosts: [], notValidBefore: referenceDate, notValidAfter: referenceDate + 60)
        }
        #expect(noHosts?.code == .invalidCertificate)
        #expect(await pkiError { try ca.revoke(serial: "not hex") }?.code == .invalidSerial)
    }

    @Test("revocations reach validators already handed out, and the signed list counts up")
    func revocationsAndSignedList() async throws {
        let ca = try EphemeralFederationCA(notValidBefore: referenceDate - 60, notValidAfter: referenceDate + 86_400)
        let a = try ca.issueSigningCredential(
            site: "a", notValidBefore: referenceDate, notValidAfter: referenceDate + 60)
        let validator = ca.signingValidator()
        let first = try ca.signedRevocationList(issuedAt: referenceDate)
        #expect(first.sequence == 1 && first.serials.isEmpty)
        try ca.revoke(serial: a.serial)
        #expect(
            await pkiError { _ = try await validator.validate(derEncoded: a.certificateDER, at: referenceDate) }?.code
                == .revoked)
        let second = try ca.signedRevocationList(issuedAt: referenceDate + 1)
        #expect(second.sequence == 2 && second.serials == [a.serial])
        #expect(second.issuedAt == referenceDate + 1)
        #expect(try SignedRevocationList.verify(second.encoded, caCertificate: ca.caCertificate) == second)
    }
}
