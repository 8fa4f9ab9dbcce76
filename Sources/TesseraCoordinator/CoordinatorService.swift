import Foundation
public import GRPCCore
public import Logging
public import TesseraFederation
import TesseraSecAgg
public import TesseraTransport
public import TesseraWire
public import Tracing

/// The coordinator at run time: it owns the ``CoordinatorStateMachine`` and carries out its
/// actions over live session streams.
///
/// It holds no round logic and few rules of its own: the round is the machine's, which streams
/// speak for which site is the ``SessionRegistry``'s, and how many uploads run at once is the
/// ``UploadSlots``'. The actor turns stream events into `CoordinatorEvent`s (a Hello becomes
/// `participantAvailable`, a decoded envelope `message(from:)`, the end of a stream
/// `participantGone`), and the machine's actions into envelopes, deadline timers, rejections and
/// published models. Time comes from the injected ``ServiceClock``.
///
/// - Identity: the site of a stream comes from the ``IdentityResolver`` (the client certificate
///   under mTLS), never from a message.
/// - Duplicate connections: a new Hello from a connected site **replaces** the old stream; the
///   machine sees the site go and come back, so it is counted once (a site replaced mid-round is
///   a dropout of that round).
/// - Checks: every envelope is checked by a per-stream `ParticipantEnvelopeDecoder` against the
///   round and stage the coordinator last asked of that site. Malformed, stale and replayed
///   envelopes are answered with a `Rejection` and never reach the machine; the round goes on.
/// - Memory: O(model), flat in the number of participants. Models are served from a bounded
///   ``ModelStore``; the machine keeps one running sum per round (a plaintext round of a
///   mean-only strategy too), and at most ``uploadSlots`` uploads are assembled at once. A
///   masked-input request is sent only when a slot is free, and the stream of a participant that
///   opens an upload without a slot is not read until one frees, so its chunks wait in HTTP/2 flow
///   control. A slot holder whose upload moves less than
///   ``CoordinatorLimits/minimumTransferBytesPerSecond`` over a window is dropped.
/// - Bounds: every session's outbound queue, the rejections it may draw, what is kept of
///   rejections and how often they are logged are bounded by ``Configuration/limits``; a site
///   that floods the coordinator loses its session, not the coordinator its memory.
///   A masked input is added to the sum only once its last chunk is verified, never chunk by
///   chunk: a participant that dropped out half way would leave part of its input in the sum,
///   and removing it would need both its self-mask and pairwise-mask secrets, which SecAgg never
///   reveals for the same participant.
public actor CoordinatorService {
    /// What a run produced.
    public struct Outcome: Sendable {
        public var records: [RoundRecord]
        public var completedRounds: Int
        public var finalModel: [Float]
        public var finalVersion: ModelVersion
        public var publishedVersions: [ModelVersion]
        /// The most recent rejections sent (by the wire checks or by the round), in order: at
        /// most ``CoordinatorLimits/retainedRejections``.
        public var rejections: [RejectionRecord]
        /// How many rejections each site drew in all, including those no longer kept.
        public var rejectionTotals: [SiteID: Int]
        /// The most uploads that were assembled at once (at most
        /// ``CoordinatorService/uploadSlots``).
        public var peakConcurrentUploads: Int
    }

    public struct RejectionRecord: Sendable, Hashable {
        public var site: SiteID
        public var rejection: Rejection
    }

    public struct Configuration: Sendable {
        /// How often participants must send a heartbeat while idle.
        public var heartbeatInterval: Duration
        /// The largest chunk the participants may send and the model store serves.
        public var maximumChunkBytes: Int
        /// A session silent for this many heartbeat intervals is closed (UNAVAILABLE) and its site
        /// counted gone: a half-open connection must not hold a cohort slot until every deadline.
        public var missedHeartbeats: Int
        /// Memory for uploads being assembled: as many run at once as there are whole vectors of
        /// the model's size in it (at least one). More slots make secure rounds faster and the
        /// coordinator's peak memory larger.
        public var uploadBufferBytes: Int
        /// The largest window of a model fetch (see ``ModelStoreService``); fetches are admitted
        /// while ``ModelStoreService/defaultWindowsInFlight`` windows are in flight at once.
        public var modelWindowBytes: Int
        /// Overrides the number of concurrent uploads that ``uploadBufferBytes`` gives.
        public var maximumConcurrentUploads: Int?
        /// The bounds on connections, sessions and transfers (see ``CoordinatorLimits``). An
        /// upload holding a slot that moves too little is abandoned: its session is closed
        /// (UNAVAILABLE) and the site counts as a dropout of the round, so a stalled or
        /// malicious participant cannot keep the others waiting.
        public var limits: CoordinatorLimits
        /// Checks the signing certificate a site offers in its Hello (it must name the site its
        /// TLS certificate names). `nil`: no site has a signing credential, so active-adversary
        /// rounds cannot run.
        public var signingVerifier: (any SigningCredentialVerifier)?
        /// The federation CA's signed revocation list to relay in every Welcome, read at each
        /// Hello so a new list reaches the sites that connect after it was replaced.
        public var signedRevocationList: (@Sendable () -> [UInt8])?
        /// The revoked certificate serials (canonical hex), read now and every
        /// ``revocationCheckInterval``: the sessions and model fetches of a revoked certificate
        /// end at the next read. `nil`: no live revocation (in-process transports carry no
        /// certificates).
        public var revokedSerials: (@Sendable () throws -> Set<String>)?
        /// How often ``revokedSerials`` is read.
        public var revocationCheckInterval: Duration
        /// Where rounds, stages, dropouts, bytes and slots are counted; `nil` counts nothing.
        public var metrics: CoordinatorMetrics?
        /// Traces each round (one trace per round, a span per stage) and stamps its context on the round's messages
        /// for the sites. `nil`: no tracing, at no cost.
        public var tracer: (any Tracer)?
        /// Where the round's progress is published after every event, for the dashboard.
        public var liveStatus: LiveRoundBoard?

        public init(
            heartbeatInterval: Duration = .seconds(10), maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
            missedHeartbeats: Int = 3, uploadBufferBytes: Int = 16 << 20, maximumConcurrentUploads: Int? = nil,
            limits: CoordinatorLimits = CoordinatorLimits(),
            modelWindowBytes: Int = ModelStoreService.defaultMaximumWindowBytes,
            signingVerifier: (any SigningCredentialVerifier)? = nil,
            signedRevocationList: (@Sendable () -> [UInt8])? = nil,
            revokedSerials: (@Sendable () throws -> Set<String>)? = nil,
            revocationCheckInterval: Duration = .seconds(10), tracer: (any Tracer)? = nil
        ) {
            self.tracer = tracer
            self.revokedSerials = revokedSerials
            self.revocationCheckInterval = max(.milliseconds(1), revocationCheckInterval)
            self.signingVerifier = signingVerifier
            self.signedRevocationList = signedRevocationList
            self.uploadBufferBytes = uploadBufferBytes
            self.modelWindowBytes = modelWindowBytes
            self.heartbeatInterval = heartbeatInterval
            self.maximumChunkBytes = maximumChunkBytes
            self.missedHeartbeats = max(1, missedHeartbeats)
            self.maximumConcurrentUploads = maximumConcurrentUploads.map { max(1, $0) }
            self.limits = limits
        }
    }

    private var machine: CoordinatorStateMachine
    public nonisolated let modelStore: any ModelStore
    public nonisolated let identity: any IdentityResolver
    public nonisolated let configuration: Configuration
    public nonisolated let clock: any ServiceClock
    /// How many uploads are assembled at once (see ``Configuration/uploadBufferBytes``).
    public nonisolated let uploadSlots: Int
    /// Admits TCP connections before their TLS handshake (see ``withServer(listeningOn:identityDirectory:caCertificate:_:)``).
    public nonisolated let connections: ConnectionGate
    private let logger: Logger
    /// Where rounds are committed before the next message leaves; `nil` keeps state in memory.
    public nonisolated let persistence: (any RoundPersistence)?
    /// Why the run stopped early, if a commit failed (see ``handle(_:)``).
    public private(set) var failure: (any Error)?
    /// The descriptors of the registered sites, for the persistence's registry.
    /// The serials read last and the model fetches to end when one is revoked.
    nonisolated let revocation = LiveRevocation()

    private var sessions = SessionRegistry()
    private var slots: UploadSlots
    /// Readers suspended until their stream gets an upload slot.
    private var suspendedReaders: [UInt64: CheckedContinuation<Void, Never>] = [:]
    /// Masked-input requests held back until their stream gets an upload slot.
    private var heldRequests: [UInt64: CoordinatorMessage] = [:]
    /// Callers of ``waitUntil(_:)``, resumed once their condition holds.
    private var watchers:
        [(condition: @Sendable (SessionState) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
    private var digests: [ModelVersion: ModelDigest]
    private var publishedVersions: [ModelVersion] = []
    private var rejections: RejectionLedger
    /// Rejections logged one line per site and interval.
    private var rejectionLog: BurstLog<SiteID>
    /// What each open session may still draw of rejections.
    private var rejectionBudgets: [UInt64: RejectionBudget] = [:]
    /// Sites whose session was closed for overload in the middle of an event: the machine hears
    /// they are gone once that event is over (see ``notifyChange()``).
    private var overloadedSites: [SiteID] = []
    /// Session handlers waiting for their stream to be closed (see ``waitForClose(of:)``).
    private var closeWatchers: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private let deadlines: AsyncStream<(token: Int, at: Duration)>
    private let deadlineContinuation: AsyncStream<(token: Int, at: Duration)>.Continuation
    private var started = false
    private var tracing: RoundTracing

    public init(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, identity: any IdentityResolver,
        modelStore: any ModelStore = BoundedModelStore(), configuration: Configuration = Configuration(),
        clock: any ServiceClock, logger: Logger
    ) {
        self.init(
            machine: CoordinatorStateMachine(plan: plan, initialModel: initialModel, strategy: strategy),
            identity: identity, modelStore: modelStore, configuration: configuration, persistence: nil, clock: clock,
            logger: logger)
    }

    /// A coordinator that runs `machine` (a new experiment, or one resumed from the state) and
    /// commits every round through `persistence` before the next message leaves.
    public init(
        machine: CoordinatorStateMachine, identity: any IdentityResolver,
        modelStore: any ModelStore = BoundedModelStore(), configuration: Configuration = Configuration(),
        persistence: (any RoundPersistence)?, clock: any ServiceClock, logger: Logger
    ) {
        var machine = machine
        let initialModel = machine.globalModel
        machine.clock = { clock.now.inSeconds }
        self.machine = machine
        self.tracing = RoundTracing(
            tracer: configuration.tracer, experimentID: machine.plan.experimentID, round: machine.round)
        self.persistence = persistence
        self.digests = [machine.version: modelStore.put(initialModel)]
        self.modelStore = modelStore
        self.identity = identity
        self.configuration = configuration
        self.clock = clock
        // A distributed-noise round uploads the update padded to a power of two, plus a word.
        var uploadWords = QuantizationCodec.encodedLength(dimension: initialModel.count)
        if machine.plan.privacy?.mode == .distributed {
            uploadWords = max(uploadWords, 1 << (Int.bitWidth - max(0, initialModel.count - 1).leadingZeroBitCount) + 1)
        }
        let uploadBytes = uploadWords * 4
        let uploadSlots =
            configuration.maximumConcurrentUploads ?? max(1, configuration.uploadBufferBytes / max(1, uploadBytes))
        self.uploadSlots = uploadSlots
        self.slots = UploadSlots(capacity: uploadSlots, progress: configuration.limits.transferProgress)
        var logger = logger
        // Every line names its experiment, so one collector can hold several coordinators' logs.
        logger[metadataKey: "experiment"] = "\(machine.plan.experimentID)"
        self.logger = logger
        self.connections = ConnectionGate(limits: configuration.limits, clock: clock, logger: logger)
        self.rejections = RejectionLedger(capacity: configuration.limits.retainedRejections)
        self.rejectionLog = BurstLog(interval: configuration.limits.rejectionLogInterval)
        (deadlines, deadlineContinuation) = AsyncStream.makeStream(of: (token: Int, at: Duration).self)
    }

    /// The gRPC services to register with the server: the session service and the model store.
    public nonisolated var services: [any RegistrableRPCService] {
        var store = ModelStoreService(
            store: modelStore, maximumChunkBytes: configuration.maximumChunkBytes,
            maximumWindowBytes: configuration.modelWindowBytes,
            maximumBytesInFlight: ModelStoreService.defaultWindowsInFlight * configuration.modelWindowBytes,
            progress: configuration.limits.transferProgress,
            admissionTimeout: configuration.limits.fetchAdmissionTimeout, clock: clock)
        store.metrics = configuration.metrics
        return [
            ParticipantSessionService(coordinator: self),
            AuthenticatedModelStoreService(store: store, identity: identity, revocation: revocation),
        ]
    }

    public var isFinished: Bool { machine.isFinished }

    /// The sites with a live, registered session.
    public var connectedSites: [SiteID] { sessions.connectedSites }

    /// How many sessions each site has registered (a reconnect counts again).
    public var joins: [SiteID: Int] { sessions.joins }

    /// What ``waitUntil(_:)`` conditions see of the sessions.
    public struct SessionState: Sendable {
        /// The sites with a live, registered session.
        public var connectedSites: [SiteID]
        /// How many sessions each site has registered.
        public var joins: [SiteID: Int]
        /// How many upload slots are held.
        public var uploadSlotsInUse: Int
        /// How many session readers wait for an upload slot.
        public var readersWaitingForSlots: Int
        /// When the coordinator last heard from each connected site (any envelope, heartbeats
        /// included), on its clock.
        public var lastHeard: [SiteID: Duration]
    }

    private var sessionState: SessionState {
        SessionState(
            connectedSites: sessions.connectedSites, joins: sessions.joins, uploadSlotsInUse: slots.inUse,
            readersWaitingForSlots: slots.waitingReaders.count, lastHeard: sessions.lastHeard)
    }

    /// Returns once `condition` holds of the sessions (at once if it does): it is checked after
    /// every stream event and timer, so tests wait for a state instead of polling on a timer.
    public func waitUntil(_ condition: @escaping @Sendable (SessionState) -> Bool) async {
        if condition(sessionState) { return }
        await withCheckedContinuation { watchers.append((condition, $0)) }
    }

    /// Starts the experiment and runs its timers until it finishes (or ``stop()`` is called, for
    /// a graceful stop); returns what it produced.
    ///
    /// Timers are child tasks of this call: none outlives it. A timer that fires for a stage
    /// already over is ignored by the machine (stale token). Deadlines are absolute instants of
    /// the clock, so a timer that wakes late still fires for the instant it was set for.
    public func run() async -> Outcome {
        if !started {
            started = true
            handle(.start)
        }
        let clock = clock
        let interval = configuration.heartbeatInterval
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Liveness: every heartbeat interval, close the sessions that have gone silent.
                var tick = clock.now
                while true {
                    tick += interval
                    do { try await clock.sleep(until: tick) } catch { return }
                    await self.checkLiveness()
                }
            }
            if let revokedSerials = configuration.revokedSerials {
                let interval = configuration.revocationCheckInterval
                group.addTask {
                    // Live revocation: the list is read off the actor (file I/O and a signature
                    // check), now and every interval.
                    var tick = clock.now
                    while true {
                        await self.applyRevocations(Result { try revokedSerials() })
                        tick += interval
                        do { try await clock.sleep(until: tick) } catch { return }
                    }
                }
            }
            // The machine keeps one deadline at a time: a new one supersedes the last, so the
            // last one's sleeper is cancelled. Left sleeping, every stage of every round would
            // hold a task and a timer until its time passed, however early the stage ended.
            var timer: Task<Void, Never>?
            for await deadline in deadlines {
                timer?.cancel()
                timer = Task { [clock] in
                    do { try await clock.sleep(until: deadline.at) } catch { return }
                    await self.handle(.deadlinePassed(token: deadline.token))
                }
            }
            timer?.cancel()
            group.cancelAll()
        }
        closeAll()
        tracing.stop()
        return outcome
    }

    /// Ends ``run()`` early (a graceful stop): sessions are closed with UNAVAILABLE so sites
    /// reconnect to the next coordinator, and rounds completed so far are kept.
    public nonisolated func stop() {
        deadlineContinuation.finish()
    }

    public var outcome: Outcome {
        Outcome(
            records: machine.records, completedRounds: machine.completedRounds, finalModel: machine.globalModel,
            finalVersion: machine.version, publishedVersions: publishedVersions, rejections: rejections.records,
            rejectionTotals: rejections.totals, peakConcurrentUploads: slots.peak)
    }

    // MARK: Liveness

    /// Closes the sessions whose upload moved too little over the last window and those that
    /// went silent (no envelope, not even a heartbeat, for ``Configuration/missedHeartbeats``
    /// intervals), and logs what the rejection log held back. The heartbeat timer calls it
    /// every interval.
    func checkLiveness() {
        defer { notifyChange() }
        let now = clock.now
        for (id, verdict) in slots.slowHolders(now: now) {
            guard let site = sessions.connections[id]?.site else { continue }
            logger.warning("closing a session whose upload is too slow: \(verdict)", metadata: ["site": "\(site)"])
            drop(id, reason: "your upload is too slow: \(verdict); reconnect")
        }
        for summary in rejectionLog.flush(now: now) { logSuppressed(summary) }
        // A stream waiting for an upload slot is silent because this coordinator is not reading it.
        let limit = configuration.heartbeatInterval * configuration.missedHeartbeats
        for id in sessions.silentStreams(now: now, limit: limit, excluding: Set(slots.waitingReaders)) {
            guard let site = sessions.connections[id]?.site else { continue }
            logger.warning("closing a silent session (no heartbeat for \(limit))", metadata: ["site": "\(site)"])
            drop(id, reason: "no message or heartbeat for \(limit); reconnect")
        }
        // The coordinator's own heartbeat: a site that hears nothing for its silence limit
        // takes the coordinator for gone and reconnects.
        for id in sessions.activeStreams {
            enqueue(sessions.connections[id]!.encoder.heartbeat(), on: id)
        }
    }

    /// Adopts a revocation list just read (``Configuration/revokedSerials``): the open sessions
    /// and model fetches of revoked certificates end now, sessions with PERMISSION_DENIED and
    /// "certificate revoked", and the machine counts those sites gone. A list that cannot be
    /// read is reported and changes nothing (new streams are refused meanwhile by the identity
    /// check, which reads the same list).
    func applyRevocations(_ read: Result<Set<String>, any Error>) {
        defer { notifyChange() }
        let serials: Set<String>
        switch read {
        case .success(let read): serials = read
        case .failure(let error):
            logger.error(
                "cannot re-read the revocation list; open sessions are kept until it reads again",
                metadata: ["error": "\(error)"])
            return
        }
        let fetches = revocation.update(serials)
        for id in sessions.streams(presenting: serials) {
            guard let connection = sessions.connections[id] else { continue }
            let serial = connection.certificateSerial ?? ""
            logger.warning(
                "closing a session: certificate revoked",
                metadata: ["site": "\(connection.site)", "serial": "\(serial)"])
            end(id, .revoked(LiveRevocation.reason(site: connection.site, serial: serial)))
        }
        if fetches > 0 { logger.warning("ended \(fetches) model fetches of revoked certificates") }
    }

    /// Closes stream `id` with UNAVAILABLE (the participant reconnects) and, if it was its site's
    /// live session, tells the machine the site is gone.
    private func drop(_ id: UInt64, reason: String) {
        end(id, .unavailable(reason))
    }

    /// Closes stream `id` for `reason` and, if it was its site's live session, tells the machine
    /// the site is gone.
    private func end(_ id: UInt64, _ reason: SessionCloseReason) {
        guard let site = sessions.connections[id]?.site else { return }
        let wasActive = sessions.deactivate(id)
        close(id, reason)
        if wasActive { siteGone(site) }
    }

    /// A site's registered session ended: the registry records it, and the machine counts the
    /// site gone.
    private func siteGone(_ site: SiteID) {
        do {
            try persistence?.siteDisconnected(site)
        } catch {
            logger.error("cannot record the site's disconnection: \(error)", metadata: ["site": "\(site)"])
        }
        handle(.participantGone(site))
    }

    // MARK: Streams (called by the session handler)

    /// A new stream from `site` (already authenticated); its outbound envelopes come out of the
    /// returned sequence, which finishes when the coordinator closes the stream. Throws
    /// RESOURCE_EXHAUSTED when the site has ``CoordinatorLimits/maximumSessionsPerSite`` open.
    func connect(
        site: SiteID, certificateSerial: String? = nil, certificateFingerprint: String? = nil
    ) throws(RPCError) -> (
        id: UInt64, outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>
    ) {
        defer { notifyChange() }
        let limits = configuration.limits
        guard sessions.openStreams(of: site) < limits.maximumSessionsPerSite else {
            logger.warning(
                "refused a session: the site has the most sessions allowed open",
                metadata: ["site": "\(site)", "open": "\(limits.maximumSessionsPerSite)"])
            throw RPCError(
                code: .resourceExhausted,
                message:
                    "site \(site) already has \(limits.maximumSessionsPerSite) sessions open (the most allowed); close one or wait for it to time out"
            )
        }
        // Bounded: a site that stops reading fills its queue and loses the session (see `enqueue`).
        let (stream, continuation) = AsyncStream.makeStream(
            of: Tessera_V1_CoordinatorEnvelope.self, bufferingPolicy: .bufferingOldest(limits.maximumQueuedEnvelopes))
        let decoder = ParticipantEnvelopeDecoder(maximumChunkBytes: configuration.maximumChunkBytes)
        let id = sessions.open(
            site: site, outbound: continuation, decoder: decoder, now: clock.now, certificateSerial: certificateSerial,
            certificateFingerprint: certificateFingerprint)
        rejectionBudgets[id] = RejectionBudget(
            maximum: limits.maximumRejectionsPerSession, window: limits.rejectionWindow)
        if machine.isFinished { close(id, .experimentFinished) }
        if let serial = certificateSerial, revocation.isRevoked(serial) {
            close(id, .revoked(LiveRevocation.reason(site: site, serial: serial)))
        }
        logger.debug("session opened", metadata: ["site": "\(site)", "connection": "\(id)"])
        return (id, stream)
    }

    /// The stream `id` ended (the participant left, the connection failed, or the coordinator
    /// closed it); returns why the coordinator closed it, if it did.
    func disconnect(_ id: UInt64) -> SessionCloseReason? {
        defer { notifyChange() }
        let reason = sessions.takeCloseReason(id)
        guard let site = sessions.connections[id]?.site else { return reason }
        let wasActive = sessions.deactivate(id)
        close(id, nil)
        guard wasActive else { return reason }
        logger.info("participant left", metadata: ["site": "\(site)"])
        siteGone(site)
        return reason
    }

    /// What the coordinator holds per session and of rejections: each count bounded by the open
    /// sessions, the sites, or ``CoordinatorLimits/retainedRejections`` (for tests).
    struct RetainedState: Sendable, Equatable {
        var sessions: Int
        var rejectionBudgets: Int
        var closeWatchers: Int
        var rejectionRecords: Int
        var rejectionLogBursts: Int
    }

    var retainedState: RetainedState {
        RetainedState(
            sessions: sessions.connections.count, rejectionBudgets: rejectionBudgets.count,
            closeWatchers: closeWatchers.count, rejectionRecords: rejections.records.count,
            rejectionLogBursts: rejectionLog.bursts.count)
    }

    /// Returns once the coordinator has closed stream `id` (at once if it has), or the task is
    /// cancelled.
    func waitForClose(of id: UInt64) async {
        guard sessions.connections[id] != nil else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled || sessions.connections[id] == nil { return continuation.resume() }
                closeWatchers[id] = continuation
            }
        } onCancel: {
            Task { await self.resumeCloseWatcher(id) }
        }
    }

    private func resumeCloseWatcher(_ id: UInt64) {
        closeWatchers.removeValue(forKey: id)?.resume()
    }

    /// Ends the session of `site` (an operator's kick, or a test): the site counts as gone and
    /// reconnects with backoff.
    public func endSession(of site: SiteID, reason: String = "the coordinator ended the session") {
        defer { notifyChange() }
        guard let id = sessions.deactivate(site: site) else { return }
        close(id, .unavailable(reason))
        logger.notice("ended a session", metadata: ["site": "\(site)", "reason": "\(reason)"])
        siteGone(site)
    }

    /// One envelope from stream `id`.
    func receive(_ envelope: Tessera_V1_ParticipantEnvelope, on id: UInt64) {
        defer { notifyChange() }
        guard let site = sessions.connections[id]?.site, let registered = sessions.connections[id]?.registered else {
            return
        }
        let now = clock.now
        let expected = sessions.connections[id]!.expected
        sessions.connections[id]!.lastSeen = now
        let inbound: ParticipantInbound?
        defer { releaseUploadSlotIfDone(id) }
        // Heartbeats keep a session alive but are no progress of its upload.
        if !envelope.isHeartbeat {
            let payload = envelope.payloadBytes
            slots.recordProgress(id, bytes: payload.update + payload.secAgg, now: now)
            configuration.metrics?.bytes(payload.update, .received, .update)
            configuration.metrics?.bytes(payload.secAgg, .received, .secagg)
        }
        do {
            inbound = try sessions.connections[id]!.decoder.decode(envelope, expecting: expected)
        } catch {
            var rejection = Rejection(error, rejectedSequence: envelope.header.sequence)
            // Hello must open the session: anything else first ends it.
            if !registered { rejection.fatal = true }
            reject(rejection, on: id)
            if rejection.fatal { close(id, .refused) }
            // A site that sends the current round something malformed will not send it right:
            // it leaves the round at once instead of holding it until the stage's deadline.
            if registered, rejection.code == .malformedMessage, let round = expected?.position.round,
                envelope.header.round == UInt64(round)
            {
                handle(
                    .message(from: site, .failed(round: round, reason: "sent a malformed message: \(rejection.reason)"))
                )
            }
            return
        }
        guard let inbound else { return }
        switch inbound {
        case .hello(let hello):
            register(hello, site: site, on: id)
        case .heartbeat:
            break
        case .message(let message):
            handle(.message(from: site, message))
        case .maskedInputChunk:
            // The decoder assembles masked inputs (`.assemble`); slices never come out.
            break
        }
    }

    private func register(_ hello: ParticipantHello, site: SiteID, on id: UInt64) {
        if let previous = sessions.register(id) {
            // The newer connection wins: close the old stream, and let the machine see the site
            // leave before it comes back, so it is never counted twice.
            logger.notice("site connected again; the new session replaces the old one", metadata: ["site": "\(site)"])
            close(previous, .replaced)
            handle(.participantGone(site))
        }
        let welcome = SessionWelcome(
            sessionID: "\(site)-\(id)", site: site, heartbeatInterval: configuration.heartbeatInterval,
            maximumChunkBytes: configuration.maximumChunkBytes,
            signedRevocationList: configuration.signedRevocationList?() ?? [])
        do {
            let envelope = try sessions.connections[id]!.encoder.welcome(welcome)
            enqueue(envelope, on: id)
        } catch {
            logger.error("could not encode the welcome", metadata: ["site": "\(site)", "error": "\(error)"])
        }
        let descriptor = hello.descriptor(site: site, signing: signingCredential(in: hello, site: site))
        // Names and versions are the site's own words: escaped and cut short for the log.
        let offers = descriptor.datasets.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        logger.info(
            "participant joined",
            metadata: [
                "site": "\(site)", "datasets": "\(UntrustedText.loggableList(offers))",
                "version": "\(UntrustedText.loggable(descriptor.softwareVersion, limit: 64))",
            ])
        do {
            try persistence?.siteConnected(descriptor, fingerprint: sessions.connections[id]?.certificateFingerprint)
        } catch {
            logger.error("cannot record the site in the participant registry: \(error)", metadata: ["site": "\(site)"])
        }
        handle(.participantAvailable(descriptor))
    }

    /// The signing credential a Hello offers, if it checks out: issued by the federation to the
    /// very site the TLS certificate names. A credential that does not is logged and ignored:
    /// the site stays connected but cannot be selected for active-adversary rounds.
    private func signingCredential(in hello: ParticipantHello, site: SiteID) -> SigningCredential? {
        guard !hello.signingCertificate.isEmpty else { return nil }
        guard let verifier = configuration.signingVerifier else {
            logger.warning(
                "site offers a signing certificate, but this coordinator has no verifier for it",
                metadata: ["site": "\(site)"])
            return nil
        }
        do {
            let verified = try verifier.verify(certificate: hello.signingCertificate)
            guard verified.site == site else {
                logger.warning(
                    "site offers another site's signing certificate; ignored",
                    metadata: ["site": "\(site)", "certificate site": "\(verified.site)"])
                return nil
            }
            return SigningCredential(certificate: hello.signingCertificate, publicKey: verified.publicKey)
        } catch {
            logger.warning(
                "site's signing certificate refused; it cannot take part in active-adversary rounds",
                metadata: ["site": "\(site)", "reason": "\(error)"])
            return nil
        }
    }

    /// Closes stream `id` (its outbound sequence finishes), wakes its reader if it waits for an
    /// upload slot, and passes on a slot it held.
    private func close(_ id: UInt64, _ reason: SessionCloseReason?) {
        guard sessions.close(id, reason: reason) != nil else { return }
        heldRequests[id] = nil
        rejectionBudgets[id] = nil
        closeWatchers.removeValue(forKey: id)?.resume()
        let (woken, grants) = slots.remove(id, now: clock.now)
        if woken { suspendedReaders.removeValue(forKey: id)?.resume() }
        carryOut(grants)
    }

    private func closeAll() {
        let reason: SessionCloseReason =
            machine.isFinished ? .experimentFinished : .unavailable("the coordinator is shutting down")
        for site in sessions.connectedSites {
            do {
                try persistence?.siteDisconnected(site)
            } catch {
                logger.error("cannot record the site's disconnection: \(error)", metadata: ["site": "\(site)"])
            }
        }
        sessions.deactivateAll()
        for id in Array(sessions.connections.keys) { close(id, reason) }
    }

    private func reject(_ rejection: Rejection, on id: UInt64) {
        guard let site = sessions.connections[id]?.site else { return }
        record(RejectionRecord(site: site, rejection: rejection))
        do {
            let position = sessions.connections[id]!.expected?.position
            let envelope = try sessions.connections[id]!.encoder.rejection(rejection, at: position)
            enqueue(envelope, on: id)
        } catch {
            logger.error("could not encode a rejection", metadata: ["site": "\(site)", "error": "\(error)"])
        }
        guard sessions.connections[id] != nil, rejectionBudgets[id]?.spend(now: clock.now) == false else { return }
        let limits = configuration.limits
        overload(
            id,
            reason:
                "\(limits.maximumRejectionsPerSession) of this session's messages were rejected within \(limits.rejectionWindow); the session is closed"
        )
    }

    /// Keeps `record` (bounded) and logs it, one line per site and interval.
    private func record(_ record: RejectionRecord) {
        rejections.append(record)
        let (log, ended) = rejectionLog.record(record.site, now: clock.now)
        if let ended { logSuppressed(ended) }
        guard log else { return }
        logger.warning(
            "rejected a participant message",
            metadata: [
                "site": "\(record.site)", "reason": "\(UntrustedText.loggable(record.rejection.reason, limit: 300))",
            ])
    }

    private func logSuppressed(_ summary: BurstLog<SiteID>.Summary) {
        logger.warning(
            "rejected \(summary.suppressed) more messages of the site in \(summary.interval) (not logged one by one)",
            metadata: ["site": "\(summary.key)", "total": "\(rejections.totals[summary.key] ?? 0)"])
    }

    /// Queues `envelope` for stream `id`. A full queue means the site has not read its messages
    /// for ``CoordinatorLimits/maximumQueuedEnvelopes`` of them: its session is closed rather
    /// than a protocol message dropped.
    private func enqueue(_ envelope: Tessera_V1_CoordinatorEnvelope, on id: UInt64) {
        guard let connection = sessions.connections[id] else { return }
        guard case .dropped = connection.outbound.yield(envelope) else { return }
        overload(
            id,
            reason:
                "the site did not read the coordinator's messages: \(configuration.limits.maximumQueuedEnvelopes) are queued, the most allowed; the session is closed"
        )
    }

    /// Closes stream `id` with RESOURCE_EXHAUSTED. The machine hears that its site is gone when
    /// the event under way is over, since this may run in the middle of carrying out its actions.
    private func overload(_ id: UInt64, reason: String) {
        guard let site = sessions.connections[id]?.site else { return }
        logger.warning("closing a session: \(reason)", metadata: ["site": "\(site)"])
        let wasActive = sessions.deactivate(id)
        close(id, .overloaded(reason))
        if wasActive { overloadedSites.append(site) }
    }

    /// Called at the end of every event: tells the machine of the sites that lost their session
    /// for overload meanwhile, then resumes the watchers whose condition holds.
    private func notifyChange() {
        while !overloadedSites.isEmpty { siteGone(overloadedSites.removeFirst()) }
        configuration.metrics?.sessions(
            connected: sessions.active.count, uploadSlotsInUse: slots.inUse, of: uploadSlots)
        configuration.liveStatus?.publish(
            LiveRoundStatus(machine, connectedSites: sessions.active.count), now: clock.now.inSeconds)
        guard !watchers.isEmpty else { return }
        let state = sessionState
        var waiting: [(condition: @Sendable (SessionState) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
            []
        for watcher in watchers {
            if watcher.condition(state) { watcher.continuation.resume() } else { waiting.append(watcher) }
        }
        watchers = waiting
    }

    // MARK: Upload slots

    /// Returns when stream `id` may go on with an upload it is opening: at once if a slot is
    /// free, otherwise when one frees (or the stream closes). Meanwhile its reader is suspended,
    /// so the participant's chunks wait in HTTP/2 flow control, not in this process.
    func acquireUploadSlot(for id: UInt64) async {
        guard sessions.connections[id] != nil, !slots.holds(id) else { return }
        if slots.acquire(id, now: clock.now) {
            sessions.connections[id]!.lastSeen = clock.now
            return
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // A session cancelled before this point is not left waiting for a slot.
                if Task.isCancelled { return continuation.resume() }
                slots.waitAsReader(id)
                suspendedReaders[id] = continuation
                notifyChange()
            }
        } onCancel: {
            Task { await self.wakeReader(id) }
        }
    }

    /// Wakes the reader of stream `id` if it waits for a slot (its session is ending).
    private func wakeReader(_ id: UInt64) {
        guard let continuation = suspendedReaders.removeValue(forKey: id) else { return }
        carryOut(slots.remove(id, now: clock.now).grants)
        continuation.resume()
        notifyChange()
    }

    /// Frees the slot of stream `id` once its upload has begun and nothing is partly received
    /// (the upload completed, failed and was discarded, or the site reported a failure).
    private func releaseUploadSlotIfDone(_ id: UInt64) {
        guard let connection = sessions.connections[id], slots.hasOpenedUpload(id),
            !connection.decoder.hasPartialMessage
        else { return }
        carryOut(slots.release(id, now: clock.now))
    }

    /// Resumes the readers and sends the requests that freed slots went to.
    private func carryOut(_ grants: [UploadSlots.Grant]) {
        for grant in grants {
            switch grant {
            case .reader(let id):
                sessions.connections[id]?.lastSeen = clock.now
                suspendedReaders.removeValue(forKey: id)?.resume()
            case .request(let id):
                guard let message = heldRequests.removeValue(forKey: id) else { continue }
                sessions.connections[id]?.lastSeen = clock.now
                deliver(message, on: id)
            }
        }
    }

    // MARK: The machine

    private func handle(_ event: CoordinatorEvent) {
        guard failure == nil else { return }
        let now = clock.now.inSeconds
        tracing.eventBegins()
        let actions = machine.handle(event, now: now)
        if let persistence {
            // Committed before any of it is carried out: a finished round is on disk before the
            // next round's first message leaves, and a round's start before its own first.
            do {
                try persistence.persist(actions, now: now)
            } catch let cancelled as ExperimentCancelled {
                logger.notice("stopping at the round boundary: \(cancelled)")
                failure = cancelled
                deadlineContinuation.finish()
                return
            } catch {
                logger.critical(
                    "cannot commit the coordinator's state; stopping so that nothing runs ahead of the disk: \(error)")
                failure = error
                deadlineContinuation.finish()
                return
            }
        }
        // A round that ends (a failed round ends in the middle of a stage) asks nothing more:
        // drop its held-back requests before the actions free slots, or a freed slot would send
        // one of them to a site about to be told to leave that round.
        for case .roundFinished(let record) in actions {
            slots.dropRequests(ofRound: record.round)
            heldRequests = heldRequests.filter { slots.deferredRequests.map(\.id).contains($0.key) }
        }
        for action in actions {
            tracing.willPerform(action)
            perform(action)
        }
        tracing.eventEnded(round: machine.round, stage: machine.currentStage, isFinished: machine.isFinished)
        configuration.metrics?.observe(actions)
        notifyChange()
    }

    private func perform(_ action: CoordinatorAction) {
        switch action {
        case .send(let site, let message):
            send(message, to: site)
        case .scheduleDeadline(let token, let seconds):
            deadlineContinuation.yield((token, clock.now + .seconds(seconds)))
        case .reject(let site, let reason):
            let rejection = Rejection(code: .protocolViolation, reason: reason)
            if let id = sessions.stream(of: site) {
                reject(rejection, on: id)
            } else {
                record(RejectionRecord(site: site, rejection: rejection))
            }
        case .publish(let model):
            digests[model.version] = modelStore.put(model.parameters)
            digests = digests.filter { modelStore.parameters(for: $0.value) != nil }
            publishedVersions.append(model.version)
            logger.info(
                "published model \(model.version)",
                metadata: roundMetadata(model.round, ["contributors": "\(model.contributors)"]))
        case .roundFinished(let record):
            logger.info("\(record.summaryLine)", metadata: roundMetadata(record.round))
        case .experimentFinished(let completed, let version):
            logger.info("experiment finished: \(completed) rounds completed, final model \(version)")
            deadlineContinuation.finish()
        case .log(let line):
            // The stage the round is in once the event is handled (the machine emits its lines
            // with the event's other actions).
            var metadata = roundMetadata(machine.round)
            if let stage = machine.currentStage { metadata["stage"] = "\(stage.rawValue)" }
            logger.info("\(line)", metadata: metadata)
        case .roundStarted, .siteOutcomes, .participantLost:
            break
        }
    }

    /// A round's log metadata: its number and, while it is traced, its trace id.
    private func roundMetadata(_ round: Int, _ more: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = more
        metadata["round"] = "\(round)"
        if let traceID = tracing.traceID { metadata["trace_id"] = "\(traceID)" }
        return metadata
    }

    private func digest(of parameters: [Float], version: ModelVersion) -> ModelDigest {
        if let known = digests[version], modelStore.parameters(for: known) != nil { return known }
        let digest = modelStore.put(parameters)
        digests[version] = digest
        return digest
    }

    private func send(_ message: CoordinatorMessage, to site: SiteID) {
        // A site with no live stream misses the message; the stage deadline counts it out.
        guard let id = sessions.stream(of: site), sessions.connections[id] != nil else { return }
        switch message {
        case .secAgg(let round, let request) where request.stage == .maskedInputCollection:
            // The request is what starts the upload: it waits for a slot.
            if !slots.holds(id) {
                guard slots.acquire(id, now: clock.now) else {
                    slots.deferRequest(id, round: round)
                    heldRequests[id] = message
                    return
                }
                sessions.connections[id]!.lastSeen = clock.now
            }
        case .train, .leaveRound:
            // A new round, or the site's part in this one is over: nothing of the old round may
            // still be asked for or hold a slot.
            slots.dropRequests(of: id)
            heldRequests[id] = nil
            carryOut(slots.release(id, now: clock.now))
        default:
            break
        }
        deliver(message, on: id)
    }

    /// The words of the metrics block a secure assignment adds to the masked vector.
    private static func metricWords(_ assignment: SecureRoundAssignment) -> Int {
        (try? assignment.metrics().wordCount) ?? 0
    }

    /// Encodes `message` for stream `id` and queues it on the stream.
    private func deliver(_ message: CoordinatorMessage, on id: UInt64) {
        guard sessions.connections[id] != nil else { return }
        let site = sessions.connections[id]!.site
        let experimentID = machine.plan.experimentID
        var modelDigest: ModelDigest?
        switch message {
        case .train(let instruction):
            sessions.connections[id]!.decoder.discardPartialMessage()
            modelDigest = digest(of: instruction.parameters, version: instruction.modelVersion)
            let secure = instruction.secure.map {
                ExpectedRound.Secure(
                    secAggRoundID: $0.roundID, participantIndex: $0.participantIndex,
                    // Distributed noise sends its own encoding (rotated, padded to a power of two).
                    vectorLength: instruction.privacy?.maskedWords
                        ?? QuantizationCodec.encodedLength(dimension: instruction.parameters.count)
                        + Self.metricWords($0))
            }
            sessions.connections[id]!.expected = ExpectedRound(
                position: RoundPosition(experimentID: experimentID, round: instruction.round, stage: .training),
                parameterCount: instruction.parameters.count, secure: secure)
            sessions.connections[id]!.stage = .training
        case .evaluate(let instruction):
            modelDigest = digest(of: instruction.parameters, version: instruction.modelVersion)
            // A secure evaluation masks its metrics block alone.
            let secure = instruction.secure.map {
                ExpectedRound.Secure(
                    secAggRoundID: $0.roundID, participantIndex: $0.participantIndex,
                    vectorLength: Self.metricWords($0))
            }
            sessions.connections[id]!.expected = ExpectedRound(
                position: RoundPosition(experimentID: experimentID, round: instruction.round, stage: .evaluation),
                parameterCount: instruction.parameters.count, secure: secure)
            sessions.connections[id]!.stage = .evaluation
        case .secAgg(_, let request):
            let stage = RoundStage(request.stage)
            sessions.connections[id]!.expected?.position.stage = stage
            sessions.connections[id]!.stage = stage
        case .leaveRound:
            sessions.connections[id]!.expected = nil
            sessions.connections[id]!.decoder.discardPartialMessage()
        }
        do {
            let stage = sessions.connections[id]!.stage
            var envelope = try sessions.connections[id]!.encoder.encode(
                message, experimentID: experimentID, currentStage: stage, modelDigest: modelDigest)
            if case .secagg(let payload)? = envelope.body {
                configuration.metrics?.bytes(payload.message.count, .sent, .secagg)
            }
            if let traceparent = tracing.traceparent { envelope.header.traceparent = traceparent }
            enqueue(envelope, on: id)
        } catch {
            logger.error(
                "could not encode a message for a participant", metadata: ["site": "\(site)", "error": "\(error)"])
        }
    }
}
