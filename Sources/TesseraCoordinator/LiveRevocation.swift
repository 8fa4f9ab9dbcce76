public import GRPCCore
import Synchronization
import TesseraFederation
import TesseraTransport
public import TesseraWire

/// What the coordinator knows of revocation between two reads of its list: the serials it read
/// last, and the model fetches in flight by certificate serial, so that a revocation ends a
/// site's fetches as it ends its sessions.
///
/// Shared by the session actor (which adopts each list it reads) and the model store service
/// (which runs on gRPC's tasks), hence a lock rather than an actor: a fetch must be refused or
/// registered without a hop.
final class LiveRevocation: Sendable {
    private struct Fetch {
        let site: SiteID
        let serial: String
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var revoked: Set<String> = []
        var nextID: UInt64 = 0
        var fetches: [UInt64: Fetch] = [:]
    }
    private let state = Mutex(State())

    /// The reason a revoked certificate's session or fetch is ended with.
    static func reason(site: SiteID, serial: String) -> String {
        "certificate revoked: the certificate of site \(site) (serial \(serial)) has been revoked by the federation"
    }

    /// Whether `serial` was on the list read last (`nil`, no certificate: never).
    func isRevoked(_ serial: String?) -> Bool {
        guard let serial else { return false }
        return state.withLock { $0.revoked.contains(serial) }
    }

    /// Adopts `serials` as the revoked ones and ends the fetches of certificates among them;
    /// returns how many it ended.
    @discardableResult
    func update(_ serials: Set<String>) -> Int {
        let ended = state.withLock { state in
            state.revoked = serials
            let ids = state.fetches.filter { serials.contains($0.value.serial) }.map(\.key)
            return ids.compactMap { state.fetches.removeValue(forKey: $0) }
        }
        for fetch in ended {
            fetch.continuation.resume(
                throwing: RPCError(
                    code: .permissionDenied, message: Self.reason(site: fetch.site, serial: fetch.serial)))
        }
        return ended.count
    }

    /// How many fetches are watched (for tests).
    var watchedFetches: Int { state.withLock { $0.fetches.count } }

    /// Returns only by throwing: `PERMISSION_DENIED` once `serial` is revoked (at once if it is),
    /// or `CancellationError` when the task is cancelled first.
    func watch(serial: String, site: SiteID) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let revoked: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.revoked.contains(serial) { return true }
                    state.fetches[id] = Fetch(site: site, serial: serial, continuation: continuation)
                    return nil
                }
                switch revoked {
                case true?:
                    continuation.resume(
                        throwing: RPCError(code: .permissionDenied, message: Self.reason(site: site, serial: serial)))
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let fetch = state.withLock { $0.fetches.removeValue(forKey: id) }
            fetch?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// The `tessera.v1.ModelStore` service as the network sees it: a fetch is served only to a peer
/// the ``IdentityResolver`` accepts (as a session is: under mTLS a valid site certificate of the
/// federation, not revoked), and it ends with `PERMISSION_DENIED` when that certificate is
/// revoked while the fetch runs.
public struct AuthenticatedModelStoreService: Tessera_V1_ModelStore.ServiceProtocol {
    public let store: ModelStoreService
    public let identity: any IdentityResolver
    let revocation: LiveRevocation

    init(store: ModelStoreService, identity: any IdentityResolver, revocation: LiveRevocation) {
        self.store = store
        self.identity = identity
        self.revocation = revocation
    }

    public func fetchModel(
        request: StreamingServerRequest<Tessera_V1_FetchModelMessage>, context: ServerContext
    ) async throws -> StreamingServerResponse<Tessera_V1_ModelChunk> {
        let peer: PeerIdentity
        do {
            peer = try await identity.peer(metadata: request.metadata, context: context)
        } catch {
            throw RPCError(code: .unauthenticated, message: "model fetch refused: \(error.message)")
        }
        if let serial = peer.certificateSerial, revocation.isRevoked(serial) {
            throw RPCError(code: .permissionDenied, message: LiveRevocation.reason(site: peer.site, serial: serial))
        }
        let store = store
        let revocation = revocation
        return StreamingServerResponse { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await store.fetchModel(request: request.messages, response: writer, context: context)
                }
                if let serial = peer.certificateSerial {
                    group.addTask { try await revocation.watch(serial: serial, site: peer.site) }
                }
                // The fetch ends, or the revocation watch throws first (which cancels the fetch).
                try await group.next()
                group.cancelAll()
            }
            return [:]
        }
    }
}
