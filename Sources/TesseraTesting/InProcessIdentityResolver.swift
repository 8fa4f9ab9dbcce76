public import GRPCCore
public import TesseraCoordinator
public import TesseraFederation
public import TesseraTransport

/// **Test and simulation only.** Identifies in-process participants by a secret token the
/// harness hands each of them (metadata key ``metadataKey``).
///
/// The in-process transport has no certificates and every stream looks alike, so the harness
/// that creates both ends keeps a trusted token → site mapping. The tokens are random and never
/// leave the process; a stream with a missing or unknown token is refused. Never use this over
/// a network transport: there the identity must come from the peer certificate.
public struct InProcessIdentityResolver: IdentityResolver {
    public static let metadataKey = "tessera-in-process-token"
    private let sites: [String: SiteID]

    /// `tokens`: token → site, made by the harness that also configures the clients.
    public init(tokens: [String: SiteID]) {
        self.sites = tokens
    }

    public func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
        let tokens = Array(metadata[stringValues: Self.metadataKey])
        guard tokens.count == 1, let site = sites[tokens[0]] else {
            throw TesseraRuntimeError(
                .unauthenticated, "in-process session without a known \(Self.metadataKey) token; the stream is refused."
            )
        }
        return site
    }

    /// The metadata a client for the site holding `token` sends.
    public static func metadata(token: String) -> Metadata {
        var metadata = Metadata()
        metadata.addString(token, forKey: metadataKey)
        return metadata
    }
}
