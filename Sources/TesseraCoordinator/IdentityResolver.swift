public import Foundation
public import GRPCCore
import GRPCNIOTransportHTTP2
public import TesseraFederation
public import TesseraPKI
import TesseraState
public import TesseraTransport
import X509

/// Establishes which site opened a session stream.
///
/// The site is a property of the *connection*, never of a message: with mTLS it is the name in
/// the verified client certificate (see ``PeerCertificateIdentityResolver``). A resolver that
/// throws refuses the stream before any message is read.
public protocol IdentityResolver: Sendable {
    func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID

    /// The site and the serial of the certificate that proves it, so that a revocation of that
    /// certificate can end what the connection opened. Defaults to ``site(metadata:context:)``
    /// with no serial (transports without certificates).
    func peer(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> PeerIdentity
}

extension IdentityResolver {
    public func peer(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> PeerIdentity {
        PeerIdentity(site: try await site(metadata: metadata, context: context))
    }
}

/// Who opened a stream: its site, and the certificate serial that proved it.
public struct PeerIdentity: Sendable, Hashable {
    public var site: SiteID
    /// The client certificate's serial, canonical hex (``SerialNumberHex``); `nil` when the
    /// transport carries no certificate (in-process).
    public var certificateSerial: String?
    /// SHA-256 (hex) of the certificate's DER bytes: what the participant registry records.
    public var certificateFingerprint: String?

    public init(site: SiteID, certificateSerial: String? = nil, certificateFingerprint: String? = nil) {
        self.site = site
        self.certificateSerial = certificateSerial
        self.certificateFingerprint = certificateFingerprint
    }
}

/// Identifies a site by the client certificate it presented in the mTLS handshake.
///
/// The TLS layer has already checked the chain against the federation CA; this checks it again
/// with TesseraPKI's ``PeerValidator`` (issuer, validity, client-auth usage) and, on every new
/// stream, against the CA's current revocation list, so a revocation takes effect on the next
/// connection without restarting the coordinator. The site name comes from the certificate.
public struct PeerCertificateIdentityResolver: IdentityResolver {
    public let validator: PeerValidator

    public init(validator: PeerValidator) {
        self.validator = validator
    }

    /// A resolver for the federation CA whose `ca.pem` is in `caDirectory`; revocations come from
    /// its `revoked.signed` (verified against `ca.pem`), or from `revoked.json` in a CA directory
    /// made before signed lists existed, re-read for every new stream. A ``TrustFolder`` works
    /// here as well as a CA directory.
    public init(caDirectory: URL) throws(TesseraRuntimeError) {
        do {
            let ca = try PEMFile.loadCertificate(
                from: caDirectory.appendingPathComponent(FederationCA.certificateFileName))
            let signed = caDirectory.appendingPathComponent(FederationCA.signedRevocationListFileName)
            let revocation: RevocationSource =
                FileManager.default.fileExists(atPath: signed.path)
                ? .signedFile(signed) : .file(caDirectory.appendingPathComponent(FederationCA.revokedFileName))
            self.validator = PeerValidator(caCertificate: ca, revocation: revocation)
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot load the federation CA from \(caDirectory.path)", cause: error)
        }
    }

    public func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
        try await peer(metadata: metadata, context: context).site
    }

    /// The client certificate of the connection `context` belongs to; without one, the call is
    /// refused as unauthenticated (`what` requires mTLS).
    static func clientCertificate(
        in context: ServerContext, for what: String
    ) throws(TesseraRuntimeError) -> Certificate {
        guard let tls = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = tls.peerCertificate
        else {
            throw TesseraRuntimeError(
                .unauthenticated, "the peer presented no client certificate; \(what) require mTLS.")
        }
        return certificate
    }

    public func peer(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> PeerIdentity {
        let certificate = try Self.clientCertificate(in: context, for: "sessions")
        do {
            // In a child task: a task keeps the memory its frames once took until it ends, and the
            // session's task lives as long as the session.
            let validator = validator
            let site = try await withThrowingTaskGroup(of: SiteID.self) { group in
                group.addTask { try await validator.validate(leaf: certificate) }
                return try await group.next()!
            }
            let fingerprint = (try? certificate.derBytes()).map(BlobStore.digest(of:))
            return PeerIdentity(
                site: site, certificateSerial: SerialNumberHex.string(of: certificate),
                certificateFingerprint: fingerprint)
        } catch {
            throw TesseraRuntimeError(.unauthenticated, "the client certificate was refused: \(error)")
        }
    }
}
