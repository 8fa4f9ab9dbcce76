import ArgumentParser
import TesseraCoordinator
import TesseraTransport

/// The coordinator's transport limits as flags; each defaults to ``CoordinatorLimits``' own
/// default (the README's "Transport limits" table explains them).
struct LimitOptions: ParsableArguments {
    private static let defaults = CoordinatorLimits()

    @Option(help: "Seconds a connection may take to complete its TLS handshake before it is closed.")
    var handshakeTimeout = defaults.handshakeTimeout.inSeconds

    @Option(help: "The most TCP connections open at once; more are closed when accepted.")
    var maxConnections = defaults.maximumConnections

    @Option(help: "The most TCP connections open at once from one IP address.")
    var maxConnectionsPerAddress = defaults.maximumConnectionsPerAddress

    @Option(help: "The most connections in their TLS handshake at once.")
    var maxPendingHandshakes = defaults.maximumPendingHandshakes

    @Option(help: "The most connections in their TLS handshake at once from one IP address.")
    var maxPendingHandshakesPerAddress = defaults.maximumPendingHandshakesPerAddress

    @Option(help: "Seconds a connection with no open RPC is kept before it is closed.")
    var idleTimeout = defaults.idleTimeout.inSeconds

    @Option(help: "Seconds of silence on a connection before the coordinator pings it.")
    var keepaliveInterval = defaults.keepaliveInterval.inSeconds

    @Option(help: "Seconds a ping may go unanswered before the connection is closed.")
    var keepaliveTimeout = defaults.keepaliveTimeout.inSeconds

    @Option(help: "The shortest interval, in seconds, at which a site may ping; faster pings close its connection.")
    var minClientPingInterval = defaults.minimumClientPingInterval.inSeconds

    @Option(help: "The most concurrent RPCs on one connection.")
    var maxStreamsPerConnection = defaults.maximumStreamsPerConnection

    @Option(help: "The largest message a site may send, in bytes (never below one chunk message).")
    var maxMessageBytes = defaults.maximumMessageBytes

    @Option(help: "The most session streams one site may have open at once.")
    var maxSessionsPerSite = defaults.maximumSessionsPerSite

    @Option(help: "The most messages queued for a site that it has not read; one more closes its session.")
    var maxQueuedEnvelopes = defaults.maximumQueuedEnvelopes

    @Option(help: "Rejected messages within --rejection-window that close a session.")
    var maxRejectionsPerSession = defaults.maximumRejectionsPerSession

    @Option(help: "Seconds over which --max-rejections-per-session counts.")
    var rejectionWindow = defaults.rejectionWindow.inSeconds

    @Option(help: "How many rejection records are kept for the results (the most recent).")
    var retainedRejections = defaults.retainedRejections

    @Option(help: "Seconds between log lines about one site's rejected messages (the rest are counted).")
    var rejectionLogInterval = defaults.rejectionLogInterval.inSeconds

    @Option(help: "Bytes per second an upload or model fetch must move, averaged over --transfer-window (0: off).")
    var minTransferBytesPerSecond = defaults.minimumTransferBytesPerSecond

    @Option(help: "Seconds over which an upload's or fetch's rate is averaged.")
    var transferWindow = defaults.transferWindow.inSeconds

    @Option(help: "Seconds a model fetch may wait for its turn before it fails.")
    var fetchAdmissionTimeout = defaults.fetchAdmissionTimeout.inSeconds

    var limits: CoordinatorLimits {
        CoordinatorLimits(
            handshakeTimeout: Self.duration(handshakeTimeout),
            maximumConnections: maxConnections,
            maximumConnectionsPerAddress: maxConnectionsPerAddress,
            maximumPendingHandshakes: maxPendingHandshakes,
            maximumPendingHandshakesPerAddress: maxPendingHandshakesPerAddress,
            idleTimeout: Self.duration(idleTimeout),
            keepaliveInterval: Self.duration(keepaliveInterval),
            keepaliveTimeout: Self.duration(keepaliveTimeout),
            minimumClientPingInterval: Self.duration(minClientPingInterval),
            maximumStreamsPerConnection: maxStreamsPerConnection,
            maximumMessageBytes: maxMessageBytes,
            maximumSessionsPerSite: maxSessionsPerSite,
            maximumQueuedEnvelopes: maxQueuedEnvelopes,
            maximumRejectionsPerSession: maxRejectionsPerSession,
            rejectionWindow: Self.duration(rejectionWindow),
            retainedRejections: retainedRejections,
            rejectionLogInterval: Self.duration(rejectionLogInterval),
            minimumTransferBytesPerSecond: minTransferBytesPerSecond,
            transferWindow: Self.duration(transferWindow),
            fetchAdmissionTimeout: Self.duration(fetchAdmissionTimeout))
    }

    func validate() throws {
        do {
            try limits.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    private static func duration(_ seconds: Double) -> Duration {
        guard seconds.isFinite else { return .zero }
        return .milliseconds(Int64((min(seconds, 1e12) * 1000).rounded()))
    }
}
