import Crypto
public import Foundation
import SwiftASN1
import TesseraSupport
public import X509

/// The federation's revocation list, signed by the CA, so a site can trust it although it
/// arrives through the coordinator (which holds no CA key and is not trusted by sites).
///
/// File `revoked.signed`, JSON: `{"payload": "<base64>", "signature": "<base64>"}`. The
/// signature is ECDSA P-256 with SHA-256 by the CA key over the exact payload bytes, DER
/// encoded (as `openssl dgst -sha256 -sign` writes it). The payload is JSON with sorted keys:
/// - `federation`: SHA-256 hex of the CA certificate's SubjectPublicKeyInfo, so a list from
///   another federation is told apart even when both CAs have the same name;
/// - `sequence`: starts at 1 when the CA is created and grows by one with every change, so a
///   site keeps the newest list it has seen and a coordinator cannot replay an older one;
/// - `issuedAt`: ISO 8601, whole seconds;
/// - `serials`: the revoked serials, canonical hex (``SerialNumberHex``), sorted.
///
/// Sites keep the file's bytes exactly as signed (``encoded``), so they can forward the list
/// byte for byte. The sequence lives in the file itself: a CA directory that loses
/// `revoked.signed` starts again at 1, and sites ignore its lists until they pass the sequence
/// they hold, so the file must be backed up with `ca-key.pem`.
public struct SignedRevocationList: Sendable, Hashable {
    public static let fileName = "revoked.signed"
    /// Larger inputs are refused before parsing.
    public static let maximumEncodedSize = 4 << 20
    /// At most this many serials are accepted in one list (the size bound alone keeps a list
    /// below it; the count is checked as well, so the bound holds if the size bound grows).
    public static let maximumSerialCount = 1_000_000

    /// The CA fingerprint the payload names (``federationFingerprint(of:)``).
    public let federation: String
    public let sequence: UInt64
    public let issuedAt: Date
    /// The revoked serials, canonical hex.
    public let serials: Set<String>
    /// The file's exact bytes, to forward or store.
    public let encoded: [UInt8]

    /// The `federation` value of lists signed by `caCertificate`'s key: SHA-256 hex of its
    /// DER SubjectPublicKeyInfo (the key, not the name, identifies the CA).
    public static func federationFingerprint(of caCertificate: Certificate) -> String {
        var serializer = DER.Serializer()
        // Serializing a parsed certificate's own key cannot fail; an empty input would only
        // give a fingerprint no list matches.
        try? serializer.serialize(caCertificate.publicKey)
        return Hex.encode(SHA256.hash(data: serializer.serializedBytes))
    }

    /// Whether a site holding `current` should adopt this list: only a strictly higher
    /// sequence wins, so an old list replayed by the coordinator never undoes a revocation.
    public func isNewer(than current: SignedRevocationList?) -> Bool {
        guard let current else { return true }
        return sequence > current.sequence
    }

    /// Checks a `revoked.signed` document against the federation CA and returns its contents.
    ///
    /// Refuses, each with its own error code: input over ``maximumEncodedSize`` (`tooLarge`),
    /// anything that is not the documented JSON (`invalidRevocationList`), a list of another
    /// federation (`untrustedIssuer`), and a signature that does not verify
    /// (`invalidSignature`).
    public static func verify(_ bytes: [UInt8], caCertificate: Certificate) throws -> SignedRevocationList {
        try verify(bytes, caCertificate: caCertificate, maximumSerialCount: maximumSerialCount)
    }

    static func verify(
        _ bytes: [UInt8], caCertificate: Certificate, maximumSerialCount: Int
    ) throws -> SignedRevocationList {
        guard bytes.count <= maximumEncodedSize else {
            throw PKIError(
                .tooLarge,
                "the signed revocation list is \(bytes.count) bytes; at most \(maximumEncodedSize) are accepted")
        }
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: Data(bytes))
        } catch {
            throw PKIError(
                .invalidRevocationList,
                "the signed revocation list is not JSON of the form {\"payload\": base64, \"signature\": base64}",
                cause: error)
        }
        guard let payloadBytes = Data(base64Encoded: envelope.payload),
            let signatureBytes = Data(base64Encoded: envelope.signature)
        else {
            throw PKIError(.invalidRevocationList, "the signed revocation list's payload or signature is not base64")
        }
        let payload: Payload
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            payload = try decoder.decode(Payload.self, from: payloadBytes)
        } catch {
            throw PKIError(
                .invalidRevocationList,
                "the signed revocation list's payload is not JSON with federation, sequence, issuedAt and serials",
                cause: error)
        }
        // The federation field is read before the signature is checked only to word the error:
        // a list from another federation would fail the signature check anyway.
        let ours = federationFingerprint(of: caCertificate)
        guard payload.federation == ours else {
            throw PKIError(
                .untrustedIssuer,
                "the revocation list (sequence \(payload.sequence)) was issued by another federation's CA (key \(SiteName.quoted(payload.federation))), not by \(caCertificate.subject) (key \(ours))"
            )
        }
        guard let key = P256.Signing.PublicKey(caCertificate.publicKey),
            let signature = try? P256.Signing.ECDSASignature(derRepresentation: signatureBytes),
            key.isValidSignature(signature, for: payloadBytes)
        else {
            throw PKIError(
                .invalidSignature,
                "the revocation list (sequence \(payload.sequence)) is not signed by the federation CA \(caCertificate.subject); it was altered or forged on the way"
            )
        }
        guard payload.serials.count <= maximumSerialCount else {
            throw PKIError(
                .tooLarge,
                "the revocation list (sequence \(payload.sequence)) holds \(payload.serials.count) serials; at most \(maximumSerialCount) are accepted"
            )
        }
        for serial in payload.serials where (try? SerialNumberHex.canonical(serial)) != serial {
            throw PKIError(
                .invalidRevocationList,
                "the revocation list (sequence \(payload.sequence)) holds serial \(SiteName.quoted(serial)), which is not canonical hex"
            )
        }
        return SignedRevocationList(
            federation: payload.federation, sequence: payload.sequence, issuedAt: payload.issuedAt,
            serials: Set(payload.serials), encoded: bytes)
    }

    /// Reads and verifies a `revoked.signed` file, refusing one over the size bound unread.
    public static func load(from url: URL, caCertificate: Certificate) throws -> SignedRevocationList {
        let bytes = try PEMFile.readBytes(url, maximumSize: maximumEncodedSize)
        do {
            return try verify(bytes, caCertificate: caCertificate)
        } catch let error as PKIError {
            throw PKIError(code: error.code, message: "\(url.path): \(error.message)", cause: error.cause)
        }
    }

    /// Signs a list. Internal: only the CA (file-backed or ephemeral) holds the key.
    static func sign(
        serials: Set<String>, sequence: UInt64, issuedAt: Date, caCertificate: Certificate,
        caKey: Certificate.PrivateKey
    ) throws -> SignedRevocationList {
        // Whole seconds: what ISO 8601 in the payload keeps, so the value read back is equal.
        let issuedAt = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        let payload = Payload(
            federation: federationFingerprint(of: caCertificate), sequence: sequence, issuedAt: issuedAt,
            serials: serials.sorted())
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            let payloadBytes = try encoder.encode(payload)
            let signature = try caKey.sign(bytes: payloadBytes, signatureAlgorithm: .ecdsaWithSHA256)
            let envelope = Envelope(
                payload: payloadBytes.base64EncodedString(),
                signature: Data(signature.rawRepresentation).base64EncodedString())
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let bytes = Array(try encoder.encode(envelope)) + [UInt8(ascii: "\n")]
            return SignedRevocationList(
                federation: payload.federation, sequence: sequence, issuedAt: issuedAt, serials: serials,
                encoded: bytes)
        } catch {
            throw PKIError(.io, "cannot sign the revocation list (sequence \(sequence))", cause: error)
        }
    }

    private struct Envelope: Codable {
        var payload: String
        var signature: String
    }

    private struct Payload: Codable {
        var federation: String
        var sequence: UInt64
        var issuedAt: Date
        var serials: [String]
    }
}

extension SignedRevocationList: CustomStringConvertible {
    public var description: String {
        "SignedRevocationList(sequence \(sequence), \(serials.count) serials, issued \(issuedAt))"
    }
}
