import TesseraFederation
import TesseraWire

/// Why the coordinator closed a stream: it decides the status the RPC ends with, and so whether
/// the participant reconnects.
enum SessionCloseReason: Sendable, Equatable {
    /// The experiment is over: the stream ends OK and the participant stops.
    case experimentFinished
    /// The coordinator is stopping or dropped the session: UNAVAILABLE, so the participant
    /// reconnects with backoff.
    case unavailable(String)
    /// A newer session of the same site took over: FAILED_PRECONDITION, and this one stops (two
    /// running instances of a site must not take turns replacing each other).
    case replaced
    /// The session broke the protocol before Hello (a fatal Rejection was sent).
    case refused
    /// The certificate that opened the stream was revoked: PERMISSION_DENIED with the reason.
    case revoked(String)
    /// The site overloaded the session (it stopped reading, or drew too many rejections):
    /// RESOURCE_EXHAUSTED, and the participant reconnects with backoff.
    case overloaded(String)
}

/// The coordinator's open session streams, and which one speaks for each site.
///
/// Invariants: a site has at most one registered (active) stream, and the newer Hello wins; a
/// closed stream is forgotten at once, but the reason it was closed is kept until its handler
/// takes it to end the RPC; every site's registrations are counted, reconnects included.
struct SessionRegistry {
    struct Connection {
        let site: SiteID
        /// The serial of the certificate that opened the stream (`nil` in process).
        var certificateSerial: String?
        /// SHA-256 (hex) of that certificate (`nil` in process).
        var certificateFingerprint: String?
        let outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>.Continuation
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder: ParticipantEnvelopeDecoder
        var expected: ExpectedRound?
        var stage: RoundStage = .selection
        var registered = false
        /// When the last envelope (of any kind, heartbeats included) arrived.
        var lastSeen: Duration
    }

    /// Open streams by id. Mutated in place (`connections[id]!.decoder…`): a copy of a
    /// connection alive while it decodes would make every chunk copy the partial vector.
    var connections: [UInt64: Connection] = [:]
    /// The registered stream of each site.
    private(set) var active: [SiteID: UInt64] = [:]
    /// How many sessions each site has registered (a reconnect counts again).
    private(set) var joins: [SiteID: Int] = [:]
    private var closeReasons: [UInt64: SessionCloseReason] = [:]
    private var lastID: UInt64 = 0

    /// A new, not yet registered stream from `site`.
    mutating func open(
        site: SiteID, outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>.Continuation,
        decoder: ParticipantEnvelopeDecoder,
        now: Duration, certificateSerial: String? = nil, certificateFingerprint: String? = nil
    ) -> UInt64 {
        lastID += 1
        connections[lastID] = Connection(
            site: site, certificateSerial: certificateSerial, certificateFingerprint: certificateFingerprint,
            outbound: outbound, decoder: decoder, lastSeen: now)
        return lastID
    }

    /// Makes stream `id` its site's session; returns the stream it replaces, if any (still open:
    /// the caller closes it).
    mutating func register(_ id: UInt64) -> UInt64? {
        guard let site = connections[id]?.site else { return nil }
        let previous = active[site].flatMap { $0 == id ? nil : $0 }
        connections[id]!.registered = true
        active[site] = id
        joins[site, default: 0] += 1
        return previous
    }

    /// The site's registered stream.
    func stream(of site: SiteID) -> UInt64? { active[site] }

    /// How many streams of `site` are open, registered or not.
    func openStreams(of site: SiteID) -> Int {
        connections.values.count { $0.site == site }
    }

    /// Whether `id` is its site's registered stream.
    func isActive(_ id: UInt64) -> Bool {
        guard let site = connections[id]?.site else { return false }
        return active[site] == id
    }

    /// Unregisters stream `id` from its site (it stays open); returns whether it was registered.
    mutating func deactivate(_ id: UInt64) -> Bool {
        guard let site = connections[id]?.site, active[site] == id else { return false }
        active[site] = nil
        return true
    }

    /// Unregisters the site's stream, if it has one, and returns it.
    mutating func deactivate(site: SiteID) -> UInt64? {
        active.removeValue(forKey: site)
    }

    mutating func deactivateAll() {
        active.removeAll()
    }

    /// Forgets stream `id` and finishes its outbound sequence; `reason`, when given, is kept for
    /// its handler. Returns the connection if it was open.
    @discardableResult
    mutating func close(_ id: UInt64, reason: SessionCloseReason?) -> Connection? {
        guard let connection = connections.removeValue(forKey: id) else { return nil }
        connection.outbound.finish()
        if let reason { closeReasons[id] = reason }
        return connection
    }

    /// Why the coordinator closed stream `id` (once: the reason is forgotten).
    mutating func takeCloseReason(_ id: UInt64) -> SessionCloseReason? {
        closeReasons.removeValue(forKey: id)
    }

    /// The streams nothing arrived on for longer than `limit`, except those in `excluding`.
    func silentStreams(now: Duration, limit: Duration, excluding: Set<UInt64>) -> [UInt64] {
        connections.filter { !excluding.contains($0.key) && now - $0.value.lastSeen > limit }.map(\.key).sorted()
    }

    /// The open streams whose certificate serial is in `serials`, registered or not.
    func streams(presenting serials: Set<String>) -> [UInt64] {
        connections.filter { connection in connection.value.certificateSerial.map { serials.contains($0) } ?? false }
            .map(\.key).sorted()
    }

    /// The registered stream of every site.
    var activeStreams: [UInt64] { active.values.sorted() }

    var connectedSites: [SiteID] { active.keys.sorted() }

    /// When each site's registered stream last carried an envelope.
    var lastHeard: [SiteID: Duration] {
        active.compactMapValues { connections[$0]?.lastSeen }
    }
}
