public import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
public import TesseraTransport

/// Which TCP connections the coordinator takes, counted before any identity is known: at most
/// so many open in all and per peer IP address, and at most so many whose TLS handshake has not
/// completed, in all and per address.
///
/// Memory is one entry per open connection and one counter per address with open connections;
/// both are forgotten when the connections close.
struct ConnectionAdmission: Sendable {
    struct Limits: Sendable, Equatable {
        var connections: Int
        var connectionsPerAddress: Int
        var pendingHandshakes: Int
        var pendingHandshakesPerAddress: Int
    }

    /// Why a connection was refused.
    enum Refusal: String, Error, Sendable, Hashable, CustomStringConvertible {
        case connections = "the coordinator has its maximum of connections open"
        case connectionsFromAddress = "its address has the maximum of connections open"
        case pendingHandshakes = "the maximum of connections are in their TLS handshake"
        case pendingHandshakesFromAddress = "its address has the maximum of connections in their TLS handshake"

        var description: String { rawValue }
    }

    struct AddressCount: Sendable, Equatable {
        var open = 0
        var pending = 0
    }

    private struct Entry: Sendable {
        var address: String
        var pending = true
    }

    let limits: Limits
    private var entries: [UInt64: Entry] = [:]
    private(set) var addresses: [String: AddressCount] = [:]
    private(set) var pending = 0
    private var lastID: UInt64 = 0

    init(limits: Limits) {
        self.limits = limits
    }

    /// Connections admitted and not closed.
    var open: Int { entries.count }

    /// Admits a connection from `address`, in its handshake; returns its id, or why not.
    mutating func admit(address: String) -> Result<UInt64, Refusal> {
        let count = addresses[address] ?? AddressCount()
        if entries.count >= limits.connections { return .failure(.connections) }
        if count.open >= limits.connectionsPerAddress { return .failure(.connectionsFromAddress) }
        if pending >= limits.pendingHandshakes { return .failure(.pendingHandshakes) }
        if count.pending >= limits.pendingHandshakesPerAddress { return .failure(.pendingHandshakesFromAddress) }
        lastID += 1
        entries[lastID] = Entry(address: address)
        addresses[address, default: AddressCount()].open += 1
        addresses[address]!.pending += 1
        pending += 1
        return .success(lastID)
    }

    /// Connection `id` completed its TLS handshake.
    mutating func handshakeCompleted(_ id: UInt64) {
        guard let entry = entries[id], entry.pending else { return }
        entries[id]!.pending = false
        pending -= 1
        addresses[entry.address]!.pending -= 1
    }

    /// Connection `id` closed.
    mutating func closed(_ id: UInt64) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        var count = addresses[entry.address]!
        count.open -= 1
        if entry.pending {
            count.pending -= 1
            pending -= 1
        }
        addresses[entry.address] = count.open == 0 ? nil : count
    }
}

/// The coordinator's gate for TCP connections: ``ConnectionAdmission`` behind a lock, and the
/// handler it installs on every accepted connection to close it when it is refused or when its
/// TLS handshake has not completed within the timeout. Refusals and timeouts are logged one
/// line per kind and interval, with a count.
public final class ConnectionGate: Sendable {
    /// What the gate has seen so far.
    public struct Counts: Sendable, Equatable {
        /// Connections admitted and not closed.
        public var open: Int
        /// Of those, the ones still in their TLS handshake.
        public var pendingHandshakes: Int
        /// Connections refused at once, since the gate was made.
        public var refused: Int
        /// Connections closed because their handshake took too long, since the gate was made.
        public var handshakeTimeouts: Int
        /// Addresses with open connections.
        public var addresses: Int
    }

    private struct Watcher {
        let condition: @Sendable (Counts) -> Bool
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var admission: ConnectionAdmission
        var refused = 0
        var timedOut = 0
        var log: BurstLog<String>
        var watchers: [Watcher] = []

        var counts: Counts {
            Counts(
                open: admission.open, pendingHandshakes: admission.pending, refused: refused,
                handshakeTimeouts: timedOut, addresses: admission.addresses.count)
        }
    }

    public let handshakeTimeout: Duration
    private let state: Mutex<State>
    private let clock: any ServiceClock
    private let logger: Logger

    public init(limits: CoordinatorLimits, clock: any ServiceClock, logger: Logger) {
        handshakeTimeout = limits.handshakeTimeout
        state = Mutex(
            State(
                admission: ConnectionAdmission(
                    limits: .init(
                        connections: limits.maximumConnections,
                        connectionsPerAddress: limits.maximumConnectionsPerAddress,
                        pendingHandshakes: limits.maximumPendingHandshakes,
                        pendingHandshakesPerAddress: limits.maximumPendingHandshakesPerAddress)),
                log: BurstLog(interval: limits.rejectionLogInterval)))
        self.clock = clock
        self.logger = logger
    }

    public var counts: Counts { state.withLock { $0.counts } }

    /// Returns once `condition` holds of the counts (at once if it does); checked after every
    /// change, so tests wait for a state instead of polling.
    public func waitUntil(_ condition: @escaping @Sendable (Counts) -> Bool) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if condition(state.counts) { return true }
                state.watchers.append(Watcher(condition: condition, continuation: continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Admits or refuses an accepted connection whose pipeline gRPC has set up (TLS first), and
    /// installs the handler that carries the decision out.
    func install(on channel: any Channel) -> EventLoopFuture<Void> {
        let address = channel.remoteAddress?.ipAddress ?? "local"
        let admitted = change { $0.admission.admit(address: address) }
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            switch admitted {
            case .failure(let refusal):
                change { $0.refused += 1 }
                note("refused a connection from \(address): \(refusal)", key: refusal.rawValue)
                // Closed once it is active: the accepted channel is not registered yet here.
                try pipeline.addHandler(ConnectionGuardHandler(mode: .refuse))
            case .success(let id):
                channel.closeFuture.whenComplete { _ in self.change { $0.admission.closed(id) } }
                guard let tls = try? pipeline.context(handlerType: NIOSSLServerHandler.self) else {
                    // No TLS: there is no handshake to wait for.
                    change { $0.admission.handshakeCompleted(id) }
                    return
                }
                let timeout = handshakeTimeout
                let handler = ConnectionGuardHandler(
                    mode: .awaitHandshake(TimeAmount(timeout)),
                    onHandshake: { self.change { $0.admission.handshakeCompleted(id) } },
                    onTimeout: {
                        self.change { $0.timedOut += 1 }
                        self.note(
                            "closed a connection from \(address) that did not complete its TLS handshake in \(timeout)",
                            key: "handshake timeout")
                    })
                try pipeline.addHandler(handler, position: .after(tls.handler))
            }
        }
    }

    /// Applies `body` to the state and resumes the watchers whose condition now holds.
    @discardableResult
    private func change<T>(_ body: (inout State) -> T) -> T {
        let (result, ready) = state.withLock { state in
            let result = body(&state)
            let counts = state.counts
            var ready: [Watcher] = []
            state.watchers.removeAll { watcher in
                guard watcher.condition(counts) else { return false }
                ready.append(watcher)
                return true
            }
            return (result, ready)
        }
        for watcher in ready { watcher.continuation.resume() }
        return result
    }

    /// Logs `line` unless a line of the same kind was logged within the interval (then it is
    /// counted, and the count logged when the interval is over).
    private func note(_ line: String, key: String) {
        let now = clock.now
        let (log, ended) = state.withLock { state in
            let summaries = state.log.flush(now: now)
            let (log, ended) = state.log.record(key, now: now)
            return (log, summaries + (ended.map { [$0] } ?? []))
        }
        for summary in ended {
            logger.warning(
                "\(summary.suppressed) more connections refused or closed in the last \(summary.interval)",
                metadata: ["reason": "\(summary.key)"])
        }
        if log { logger.warning("\(line)") }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Carries out the gate's decision on one connection: closes a refused one as soon as it is
/// active, and closes an admitted one whose TLS handshake has not completed within the timeout.
/// It sits right after the TLS handler, which announces the handshake with a user event.
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    enum Mode {
        case refuse
        case awaitHandshake(TimeAmount)
    }

    private let mode: Mode
    private let onHandshake: @Sendable () -> Void
    private let onTimeout: @Sendable () -> Void
    private var timer: Scheduled<Void>?
    private var handshakeCompleted = false

    init(
        mode: Mode, onHandshake: @escaping @Sendable () -> Void = {}, onTimeout: @escaping @Sendable () -> Void = {}
    ) {
        self.mode = mode
        self.onHandshake = onHandshake
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        switch mode {
        case .refuse:
            context.close(promise: nil)
        case .awaitHandshake(let timeout):
            guard timer == nil, !handshakeCompleted else { return }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let onTimeout = onTimeout
            timer = context.eventLoop.scheduleTask(in: timeout) {
                onTimeout()
                bound.value.close(promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !handshakeCompleted {
            handshakeCompleted = true
            timer?.cancel()
            timer = nil
            onHandshake()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}
