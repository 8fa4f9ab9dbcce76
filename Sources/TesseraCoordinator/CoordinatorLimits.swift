/// The bounds the coordinator holds against strangers and against misbehaving sites: on TCP
/// connections before and after the TLS handshake, on HTTP/2, on each session, and on the rate
/// at which uploads and model fetches must move.
///
/// Every limit holds before any identity is known or is charged to one site, so that no peer can
/// make the coordinator hold more than these bounds allow. Each field's default is what a
/// deployment gets without a flag; `tessera-coordinator --help` names the flags, and the README's
/// "Transport limits" table says what happens when each is hit.
public struct CoordinatorLimits: Sendable, Equatable {
    // MARK: Connections, before any identity is known

    /// A TCP connection that has not completed its TLS handshake this long after it was accepted
    /// is closed. Default 10 s: a handshake takes a few round trips, and a silent stranger must
    /// not hold a file descriptor and a connection's buffers for longer.
    public var handshakeTimeout: Duration
    /// The most TCP connections open at once, handshake done or not; a connection past it is
    /// closed as soon as it is accepted. Default 2,048: room for a thousand sites with the
    /// handshakes of reconnecting ones, well below a typical file-descriptor limit.
    public var maximumConnections: Int
    /// The most TCP connections open at once from one peer IP address. Default 256: sites behind
    /// one NAT share an address, but one address cannot take the whole coordinator.
    public var maximumConnectionsPerAddress: Int
    /// The most connections whose TLS handshake has not completed, across all addresses.
    /// Default 256: strangers cannot crowd out the handshakes of real sites for longer than
    /// ``handshakeTimeout``.
    public var maximumPendingHandshakes: Int
    /// The most connections from one IP address whose handshake has not completed. Default 16:
    /// a site opens one connection at a time, so more unfinished handshakes from one address are
    /// a flood.
    public var maximumPendingHandshakesPerAddress: Int

    // MARK: HTTP/2

    /// A connection with no open RPC for this long is sent GOAWAY and closed. Default 60 s: a
    /// site keeps its session stream open, so only abandoned connections are idle.
    public var idleTimeout: Duration
    /// The coordinator pings a connection that has sent nothing for this long. Default 30 s:
    /// sites heartbeat every 10 s, so a healthy session is never pinged, and a dead peer under a
    /// model fetch is found within a minute.
    public var keepaliveInterval: Duration
    /// A ping unanswered for this long closes the connection. Default 10 s.
    public var keepaliveTimeout: Duration
    /// The shortest interval at which a site may ping the coordinator (with or without open
    /// RPCs); more frequent pings are strikes, and too many strikes close the connection with
    /// GOAWAY `too_many_pings`. Default 5 s: a site's own keepalive must be at least this.
    public var minimumClientPingInterval: Duration
    /// The most concurrent streams (RPCs) on one connection. Default 16: a site uses one session
    /// stream and one model fetch at a time.
    public var maximumStreamsPerConnection: Int
    /// The largest message (one gRPC request payload) a site may send; a larger one ends its RPC
    /// with RESOURCE_EXHAUSTED before it is decoded. Default 1 MiB (16 default chunks): a chunk
    /// message is at most `maximumChunkBytes` plus its envelope, and the largest unchunked one,
    /// a SecAgg ShareKeys for every neighbour, is about 130 bytes per neighbour. Never below a
    /// chunk message (see ``effectiveMaximumMessageBytes(maximumChunkBytes:)``).
    public var maximumMessageBytes: Int

    // MARK: Sessions (per site identity)

    /// The most session streams one site may have open at once; one more is refused with
    /// RESOURCE_EXHAUSTED. Default 4: a reconnecting site briefly has its old stream and its new
    /// one, and a Hello on the new one closes the old.
    public var maximumSessionsPerSite: Int
    /// The most envelopes queued for one session that the site has not read; one more closes the
    /// session (RESOURCE_EXHAUSTED), rather than dropping a protocol message. Default 64: a round
    /// sends a site a handful of messages, so only a site that stopped reading fills it.
    public var maximumQueuedEnvelopes: Int
    /// A session whose envelopes are rejected this many times within ``rejectionWindow`` is
    /// closed (RESOURCE_EXHAUSTED) at the last one. Default 100: an honest site is rejected at
    /// most a few times a round (a late message), a flood within a second.
    public var maximumRejectionsPerSession: Int
    /// The window over which ``maximumRejectionsPerSession`` counts. Default 60 s.
    public var rejectionWindow: Duration
    /// How many rejection records the coordinator keeps for the run's outcome (the most recent
    /// ones; every rejection is still counted per site). Default 1,000: a few hundred kilobytes,
    /// whatever sites send over months.
    public var retainedRejections: Int
    /// Rejections of one site are logged one line per interval: the first in full, the rest as a
    /// count. Default 10 s: a flood becomes one line per 10 s, not one per envelope.
    public var rejectionLogInterval: Duration

    // MARK: Progress of uploads and fetches

    /// An upload holding a slot, or a model fetch holding a share of the fetch budget, must move
    /// at least this many bytes per second, averaged over ``transferWindow``, or it is ended and
    /// the slot or share passes on. Default 16 KiB/s (128 kbit/s): seven default chunks per
    /// 30 s, so a site that drips one chunk every 29 s (2.2 KiB/s) loses its slot, while any
    /// link a site can train over passes. 0 turns the check off.
    public var minimumTransferBytesPerSecond: Int
    /// The window over which a transfer's rate is averaged; a transfer is judged once it has
    /// held its slot or share for a whole window. Default 30 s. For a masked input the window
    /// starts when the request is sent, so it must cover computing the masks.
    public var transferWindow: Duration
    /// A model fetch that waits this long for a share of the fetch budget fails with
    /// RESOURCE_EXHAUSTED (the site retries). Default 60 s: ten fetches run at once, so a wave
    /// of a hundred sites is served well within it, while a fetch stuck behind slow ones does
    /// not wait for ever.
    public var fetchAdmissionTimeout: Duration

    public init(
        handshakeTimeout: Duration = .seconds(10),
        maximumConnections: Int = 2048,
        maximumConnectionsPerAddress: Int = 256,
        maximumPendingHandshakes: Int = 256,
        maximumPendingHandshakesPerAddress: Int = 16,
        idleTimeout: Duration = .seconds(60),
        keepaliveInterval: Duration = .seconds(30),
        keepaliveTimeout: Duration = .seconds(10),
        minimumClientPingInterval: Duration = .seconds(5),
        maximumStreamsPerConnection: Int = 16,
        maximumMessageBytes: Int = 1 << 20,
        maximumSessionsPerSite: Int = 4,
        maximumQueuedEnvelopes: Int = 64,
        maximumRejectionsPerSession: Int = 100,
        rejectionWindow: Duration = .seconds(60),
        retainedRejections: Int = 1000,
        rejectionLogInterval: Duration = .seconds(10),
        minimumTransferBytesPerSecond: Int = 16 << 10,
        transferWindow: Duration = .seconds(30),
        fetchAdmissionTimeout: Duration = .seconds(60)
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.maximumPendingHandshakes = maximumPendingHandshakes
        self.maximumPendingHandshakesPerAddress = maximumPendingHandshakesPerAddress
        self.idleTimeout = idleTimeout
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveTimeout = keepaliveTimeout
        self.minimumClientPingInterval = minimumClientPingInterval
        self.maximumStreamsPerConnection = maximumStreamsPerConnection
        self.maximumMessageBytes = maximumMessageBytes
        self.maximumSessionsPerSite = maximumSessionsPerSite
        self.maximumQueuedEnvelopes = maximumQueuedEnvelopes
        self.maximumRejectionsPerSession = maximumRejectionsPerSession
        self.rejectionWindow = rejectionWindow
        self.retainedRejections = retainedRejections
        self.rejectionLogInterval = rejectionLogInterval
        self.minimumTransferBytesPerSecond = minimumTransferBytesPerSecond
        self.transferWindow = transferWindow
        self.fetchAdmissionTimeout = fetchAdmissionTimeout
    }

    /// What a chunk message adds to its payload at most: the envelope header (experiment id,
    /// round, stage, sequence), the chunk's offsets and totals, and gRPC's framing.
    public static let envelopeOverheadBytes = 4 << 10

    /// The message-size bound in force: ``maximumMessageBytes``, raised to fit one chunk message
    /// of `maximumChunkBytes` if it is smaller.
    public func effectiveMaximumMessageBytes(maximumChunkBytes: Int) -> Int {
        max(maximumMessageBytes, maximumChunkBytes + Self.envelopeOverheadBytes)
    }

    /// Checks every limit: the first one out of range is named, with the flag that sets it.
    public func validate() throws(LimitError) {
        let counts: [(String, Int, Int)] = [
            ("max-connections", maximumConnections, 1),
            ("max-connections-per-address", maximumConnectionsPerAddress, 1),
            ("max-pending-handshakes", maximumPendingHandshakes, 1),
            ("max-pending-handshakes-per-address", maximumPendingHandshakesPerAddress, 1),
            ("max-streams-per-connection", maximumStreamsPerConnection, 1),
            ("max-message-bytes", maximumMessageBytes, 1024),
            ("max-sessions-per-site", maximumSessionsPerSite, 1),
            ("max-queued-envelopes", maximumQueuedEnvelopes, 8),
            ("max-rejections-per-session", maximumRejectionsPerSession, 1),
            ("retained-rejections", retainedRejections, 0),
            ("min-transfer-bytes-per-second", minimumTransferBytesPerSecond, 0),
        ]
        for (flag, value, minimum) in counts where value < minimum {
            throw LimitError(flag: flag, "must be at least \(minimum), not \(value)")
        }
        let durations: [(String, Duration)] = [
            ("handshake-timeout", handshakeTimeout), ("idle-timeout", idleTimeout),
            ("keepalive-interval", keepaliveInterval), ("keepalive-timeout", keepaliveTimeout),
            ("min-client-ping-interval", minimumClientPingInterval), ("rejection-window", rejectionWindow),
            ("rejection-log-interval", rejectionLogInterval), ("transfer-window", transferWindow),
            ("fetch-admission-timeout", fetchAdmissionTimeout),
        ]
        for (flag, value) in durations where value <= .zero {
            throw LimitError(flag: flag, "must be longer than zero, not \(value)")
        }
    }
}

/// A coordinator limit out of range, naming the flag that sets it.
public struct LimitError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable { case outOfRange }
    public var code: Code
    /// The command-line flag of the limit (without `--`).
    public var flag: String
    public var message: String

    public init(flag: String, _ message: String) {
        self.code = .outOfRange
        self.flag = flag
        self.message = message
    }

    public var description: String { "--\(flag) \(message)" }
}
