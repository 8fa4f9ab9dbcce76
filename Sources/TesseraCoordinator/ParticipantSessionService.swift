import GRPCCore
import TesseraFederation
import TesseraTransport
import TesseraWire

/// The `tessera.v1.ParticipantSession` service: one long-lived stream per participant.
struct ParticipantSessionService: Tessera_V1_ParticipantSession.ServiceProtocol {
    let coordinator: CoordinatorService

    /// Once the coordinator closes a stream, how long what is queued for the site may take to
    /// leave before the RPC ends without it: a site that reads nothing cannot keep it open.
    static let closeGracePeriod = Duration.seconds(5)

    func session(
        request: StreamingServerRequest<Tessera_V1_ParticipantEnvelope>, context: ServerContext
    ) async throws -> StreamingServerResponse<Tessera_V1_CoordinatorEnvelope> {
        let peer: PeerIdentity
        do {
            peer = try await coordinator.identity.peer(metadata: request.metadata, context: context)
        } catch {
            throw RPCError(code: .unauthenticated, message: error.message)
        }
        let site = peer.site
        return StreamingServerResponse { writer in
            let (id, outbound) = try await coordinator.connect(
                site: site, certificateSerial: peer.certificateSerial,
                certificateFingerprint: peer.certificateFingerprint)
            let clock = coordinator.clock
            let inboundFailure = await withTaskGroup(of: (any Error)?.self) { group in
                group.addTask {
                    for await envelope in outbound {
                        do { try await writer.write(envelope) } catch { return nil }
                    }
                    return nil
                }
                group.addTask {
                    do {
                        for try await envelope in request.messages {
                            if envelope.opensUpload { await coordinator.acquireUploadSlot(for: id) }
                            await coordinator.receive(envelope, on: id)
                        }
                        return nil
                    } catch {
                        // Undecodable bytes or a reset: the session is over.
                        return error
                    }
                }
                group.addTask {
                    await coordinator.waitForClose(of: id)
                    try? await clock.sleep(for: Self.closeGracePeriod)
                    return nil
                }
                // Whichever side ends first ends the session.
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if let inboundFailure, !(inboundFailure is CancellationError) {
                _ = await coordinator.disconnect(id)
                throw RPCError(
                    code: .invalidArgument, message: "the session from \(site) failed and is closed: \(inboundFailure)",
                    cause: inboundFailure)
            }
            switch await coordinator.disconnect(id) {
            case .experimentFinished?, .refused?, nil:
                return [:]
            case .unavailable(let reason)?:
                throw RPCError(code: .unavailable, message: reason)
            case .revoked(let reason)?:
                throw RPCError(code: .permissionDenied, message: reason)
            case .overloaded(let reason)?:
                throw RPCError(code: .resourceExhausted, message: reason)
            case .replaced?:
                throw RPCError(
                    code: .failedPrecondition,
                    message:
                        "a newer session of site \(site) replaced this one; only one instance of a site may be connected"
                )
            }
        }
    }
}
