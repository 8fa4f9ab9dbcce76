public import Foundation
import X509

/// Where a validator learns which serials are revoked. It is asked afresh on every validation,
/// so a revocation takes effect on the next check without rebuilding the validator; if it
/// cannot answer, the certificate is refused (failing open would let a revoked peer back in
/// whenever the list is briefly unreadable).
public struct RevocationSource: Sendable {
    enum Kind: Sendable {
        case fixed(Set<String>)
        case file(URL)
        case signedFile(URL)
        case provider(@Sendable () throws -> Set<String>)
    }

    let kind: Kind

    /// A fixed set of revoked serials, in any hex spelling (``SerialNumberHex``).
    public static func serials(_ serials: Set<String>) -> RevocationSource {
        RevocationSource(kind: .fixed(Set(serials.map { (try? SerialNumberHex.canonical($0)) ?? $0 })))
    }

    /// A CA directory's `revoked.json` (for the coordinator, which reads the operator's list).
    public static func file(_ url: URL) -> RevocationSource {
        RevocationSource(kind: .file(url))
    }

    /// A `revoked.signed` file (for a site): its signature is checked against the validator's
    /// federation CA on every read, so a list forged or swapped on the way is refused.
    public static func signedFile(_ url: URL) -> RevocationSource {
        RevocationSource(kind: .signedFile(url))
    }

    /// A closure asked on every validation, for a caller that keeps revocations itself (the
    /// newest signed list a site has adopted, or a coordinator's store). Serials must be
    /// canonical hex.
    public static func provider(_ revokedSerials: @escaping @Sendable () throws -> Set<String>) -> RevocationSource {
        RevocationSource(kind: .provider(revokedSerials))
    }

    /// The revoked serials, with any failure reworded as a refusal of `subject`.
    func revokedSerials(caCertificate: Certificate, refusing subject: String) throws -> Set<String> {
        do {
            switch kind {
            case .fixed(let serials): return serials
            case .file(let url): return try RevocationList.serials(from: url)
            case .signedFile(let url):
                return try SignedRevocationList.load(from: url, caCertificate: caCertificate).serials
            case .provider(let provider): return try provider()
            }
        } catch let error as PKIError {
            throw PKIError(
                code: error.code, message: "refusing \(subject): cannot check revocation: \(error.message)",
                cause: error.cause)
        } catch {
            throw PKIError(.io, "refusing \(subject): cannot check revocation", cause: error)
        }
    }
}
