import Logging
import SwiftASN1
import TesseraPKI
import TesseraParticipant
import X509

/// The signed revocation list, which a site receives through the coordinator (untrusted) in
/// every Welcome and must verify against the federation CA before adopting it.
enum RevocationTarget {
    /// The fixture CA (``RevocationFixture``) whose key signed the seed corpus.
    static let caCertificate: Certificate? = try? Certificate(pemEncoded: RevocationFixture.caCertificatePEM)

    /// Input: framed lists, offered in turn to one site (as successive Welcomes would).
    static func revocationList(_ bytes: [UInt8]) -> Int {
        guard let caCertificate else { return 0 }
        let trust = SiteTrust(
            caCertificate: caCertificate, signer: nil,
            logger: Logger(label: "fuzz") { _ in
                SwiftLogNoOpLogHandler()
            })
        var input = FuzzInput(bytes)
        var accepted = 0
        while !input.isAtEnd {
            let offered = input.piece()
            let held = trust.revocationSequence
            trust.offer(signedRevocationList: offered)
            fuzzExpect(trust.revocationSequence >= held, "a site adopted an older revocation list")
            guard let list = try? SignedRevocationList.verify(offered, caCertificate: caCertificate) else {
                fuzzExpect(trust.revocationSequence == held, "a site adopted a list that does not verify")
                continue
            }
            fuzzExpect(list.encoded == offered, "a verified list does not keep its exact bytes")
            fuzzExpect(
                list.federation == SignedRevocationList.federationFingerprint(of: caCertificate),
                "a list of another federation verified")
            fuzzExpect(
                list.serials.allSatisfy { (try? SerialNumberHex.canonical($0)) == $0 },
                "a verified list holds a serial that is not canonical hex")
            fuzzExpect(trust.revocationSequence == max(held, list.sequence), "a site did not adopt a newer list")
            accepted += 1
        }
        // Serials typed by an operator (`tessera pki revoke`): canonical hex is a fixed point.
        if let canonical = try? SerialNumberHex.canonical(String(decoding: bytes.prefix(80), as: UTF8.self)) {
            fuzzExpect((try? SerialNumberHex.canonical(canonical)) == canonical, "canonical hex is not canonical")
        }
        return accepted
    }
}
