import Foundation
import GRPCCore
import Logging
import TesseraFederation
import TesseraSecAgg
import TesseraTensor
import TesseraWire

/// The coordinator at run time: it owns the ``CoordinatorStateMachine`` and carries out its
/// actions over live session streams.
///
/// It holds no round logic. It turns stream events into `CoordinatorEvent`s (a Hello becomes
/// `participantAvailable`, a decoded envelope `message(from:)`, the end of a stream
/// `participantGone`), and the machine's actions into envelopes, deadline timers, rejections and
/// published models.
///
/// - Identity: the site of a stream comes from the ``IdentityResolver`` (the client certificate
///   under mTLS), never from a message.
/// - Duplicate connections: when a site that is already connected completes a new Hello, the new
///   stream **replaces** the old one. The old stream is closed and the machine sees the site go
///   and come back, so it is counted once (a site replaced mid-round counts as a dropout of that
///   round, as the design asks of a reconnect that cannot resume).
/// - Checks: every envelope is checked by a per-stream `ParticipantEnvelopeDecoder` against the
///   round and stage the coordinator last asked of that site. Malformed, stale and replayed
///   envelopes are answered with a `Rejection` and never reach the machine; the round goes on.
/// - Memory: models are served from an ``InMemoryModelStore`` that keeps the last two versions;
///   under secure aggregation the machine keeps one running sum per round, and each masked
///   input is added to it as soon as its last chunk has been verified. At most
///   ``uploadSlots`` masked inputs are in flight at once (as many model-sized vectors as fit in
///   ``Configuration/uploadBufferBytes``, 16 MiB by default: 4 for a 1M-parameter model): a
///   masked-input request is sent only when a slot is free (a participant uploads only when
///   asked), and the stream of a participant that opens a masked input without a slot is not
///   read until one frees, so it waits in HTTP/2 flow control (a window of two chunks). A
///   slot-holder that makes no progress for ``Configuration/uploadStallTimeout`` is dropped.
///   Memory is therefore O(model), flat in the number of participants (measured by the runtime
///   benchmark). Plaintext updates take slots too: a site sends its update unasked after
///   training, and its stream is not read past the `TrainingReport` announcing it until a slot
///   frees. With a strategy that needs only the mean (FedAvg and the server optimisers) the
///   machine adds each update to a running sum as it arrives and drops it, so a plaintext round
///   holds O(model) as well; a robust rule (median, trimmed mean, Krum) keeps every update
///   until the round ends. Measured with 100 sites and a 1M-parameter model (plaintext FedAvg,
///   peak RSS): 485 MB keeping every update, 209–220 MB with the running sum, 146–153 MB with
///   slots as well; plain rounds with 10 sites 157 ms against 154 without slots (medians of four
///   alternating runs). A plaintext update announced in a secure round is refused at its first
///   envelope, before anything is assembled.
///   Why not add each chunk of a masked input to the sum directly: a participant that dropped out
///   half way through its upload would leave part of its masked input in the sum, and removing
///   it would need both its self-mask and its pairwise-mask secrets, which SecAgg never reveals
///   for the same participant.
public actor CoordinatorService {
    /// What a run produced.
    public struct Outcome: Sendable {
        public var records: [RoundRecord]
        public var completedRounds: Int
        public var finalModel: [Float]
        public var finalVersion: ModelVersion
        public var publishedVersions: [ModelVersion]
        /// Every rejection sent (by the wire checks or by the round), in order.
        public var rejections: [RejectionRecord]
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
        /// Memory for uploads (masked inputs and plaintext updates) being assembled: as many run at
        /// once as there are whole vectors of the model's size in it (at least one). Each holds
        /// one such buffer until its last chunk. A trade-off, measured on the
        /// runtime benchmark (1M parameters): 16 MiB (4 uploads) gave secure rounds of 372–415 ms
        /// and a peak RSS ratio n = 100 / n = 10 of 1.5–1.65; 64 MiB (16 uploads) 349–372 ms and
        /// 1.7–1.8 (10 sites can use only 10 slots, 100 sites all 16).
        public var uploadBufferBytes: Int
        /// The largest window of a model fetch (see ``ModelStoreService``); fetches are admitted
        /// while ``ModelStoreService/defaultWindowsInFlight`` windows (ten) are in flight at once.
        public var modelWindowBytes: Int
        /// Overrides the number of concurrent uploads that ``uploadBufferBytes`` gives.
        public var maximumConcurrentUploads: Int?
        /// An upload holding a slot that makes no progress for this long is abandoned: its
        /// session is closed (UNAVAILABLE) and the site counts as a dropout of the round, so a
        /// stalled or malicious participant cannot keep the others waiting. For a masked input
        /// the clock starts when the request is sent, so it must cover computing the masks.
        public var uploadStallTimeout: Duration

        public init(
            heartbeatInterval: Duration = .seconds(10), maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
            missedHeartbeats: Int = 3, uploadBufferBytes: Int = 16 << 20, maximumConcurrentUploads: Int? = nil,
            uploadStallTimeout: Duration = .seconds(30), modelWindowBytes: Int = ModelStoreService.defaultMaximumWindowBytes
        ) {
            self.uploadBufferBytes = uploadBufferBytes
            self.modelWindowBytes = modelWindowBytes
            self.heartbeatInterval = heartbeatInterval
            self.maximumChunkBytes = maximumChunkBytes
            self.missedHeartbeats = max(1, missedHeartbeats)
            self.maximumConcurrentUploads = maximumConcurrentUploads.map { max(1, $0) }
            self.uploadStallTimeout = uploadStallTimeout
        }
    }

    private struct Connection {
        let site: SiteID
        let outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>.Continuation
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder: ParticipantEnvelopeDecoder
        var expected: ExpectedRound?
        var stage: RoundStage = .selection
        var registered = false
        /// When the last envelope (of any kind, heartbeats included) arrived.
        var lastSeen: ContinuousClock.Instant = .now
        /// While it holds an upload slot: when it last made progress (the slot was granted, or
        /// an envelope other than a heartbeat arrived).
        var uploadProgress: ContinuousClock.Instant?
        /// Whether anything but heartbeats arrived since the slot was granted.
        var uploadOpened = false
    }

    private var machine: CoordinatorStateMachine
    public nonisolated let modelStore: InMemoryModelStore
    public nonisolated let identity: any IdentityResolver
    public nonisolated let configuration: Configuration
    /// How many uploads are assembled at once (see ``Configuration/uploadBufferBytes``).
    public nonisolated let uploadSlots: Int
    private let logger: Logger
    /// Why the coordinator closed a stream: it decides the status the RPC ends with, and so
    /// whether the participant reconnects.
    enum CloseReason: Sendable {
        /// The experiment is over: the stream ends OK and the participant stops.
        case experimentFinished
        /// The coordinator is stopping or dropped the session: UNAVAILABLE, so the participant
        /// reconnects with backoff.
        case unavailable(String)
        /// A newer session of the same site took over: FAILED_PRECONDITION, and this one stops
        /// (two running instances of a site must not take turns replacing each other).
        case replaced
        /// The session broke the protocol before Hello (a fatal Rejection was sent).
        case refused
    }

    private var connections: [UInt64: Connection] = [:]
    /// Streams waiting for an upload slot, in arrival order; their reader is suspended.
    private var uploadWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    /// Masked-input requests held back until an upload slot frees, in the order the round made
    /// them: a participant sends its masked input only when asked, so nothing of it is in flight
    /// (in this process or in the network) before its slot is granted.
    private var deferredMaskedInputRequests: [(id: UInt64, round: Int, message: CoordinatorMessage)] = []
    private var peakConcurrentUploads = 0
    private var closeReasons: [UInt64: CloseReason] = [:]
    /// How many sessions each site has registered (a reconnect counts again).
    public private(set) var joins: [SiteID: Int] = [:]
    private var active: [SiteID: UInt64] = [:]
    private var nextConnectionID: UInt64 = 0
    private var digests: [ModelVersion: ModelDigest]
    private var publishedVersions: [ModelVersion] = []
    private var rejections: [RejectionRecord] = []
    private let deadlines: AsyncStream<(token: Int, after: Double)>
    private let deadlineContinuation: AsyncStream<(token: Int, after: Double)>.Continuation
    private let origin: ContinuousClock.Instant
    private var started = false

    public init(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, identity: any IdentityResolver,
        modelStore: InMemoryModelStore = InMemoryModelStore(), configuration: Configuration = Configuration(), logger: Logger
    ) {
        var machine = CoordinatorStateMachine(plan: plan, initialModel: initialModel, strategy: strategy)
        let origin = ContinuousClock.now
        machine.clock = { Self.seconds(since: origin) }
        self.machine = machine
        self.digests = [machine.version: modelStore.put(initialModel)]
        self.modelStore = modelStore
        self.identity = identity
        self.configuration = configuration
        let uploadBytes = (QuantizationCodec.encodedLength(dimension: initialModel.count)) * 4
        self.uploadSlots = configuration.maximumConcurrentUploads ?? max(1, configuration.uploadBufferBytes / max(1, uploadBytes))
        self.logger = logger
        (deadlines, deadlineContinuation) = AsyncStream.makeStream(of: (token: Int, after: Double).self)
        self.origin = origin
    }

    /// The gRPC services to register with the server: the session service and the model store.
    public nonisolated var services: [any RegistrableRPCService] {
        [
            ParticipantSessionService(coordinator: self),
            ModelStoreService(
                store: modelStore, maximumChunkBytes: configuration.maximumChunkBytes,
                maximumWindowBytes: configuration.modelWindowBytes,
                maximumBytesInFlight: ModelStoreService.defaultWindowsInFlight * configuration.modelWindowBytes),
        ]
    }

    public var isFinished: Bool { machine.isFinished }

    /// The sites with a live, registered session.
    public var connectedSites: [SiteID] { active.keys.sorted() }

    /// Starts the experiment and runs its deadline timers until it finishes (or the task is
    /// cancelled, for a graceful stop); returns what it produced.
    ///
    /// Timers are child tasks of this call: none outlives it. A timer that fires for a stage
    /// already over is ignored by the machine (stale token).
    public func run() async -> Outcome {
        if !started {
            started = true
            handle(.start)
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Liveness: every heartbeat interval, close the sessions that have gone silent.
                while true {
                    do { try await Task.sleep(for: self.configuration.heartbeatInterval) } catch { return }
                    await self.closeSilentSessions()
                }
            }
            for await deadline in deadlines {
                group.addTask {
                    do { try await Task.sleep(for: .seconds(deadline.after)) } catch { return }
                    await self.handle(.deadlinePassed(token: deadline.token))
                }
            }
            group.cancelAll()
        }
        closeAll()
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
            finalVersion: machine.version, publishedVersions: publishedVersions, rejections: rejections,
            peakConcurrentUploads: peakConcurrentUploads)
    }

    // MARK: Streams

    private func closeSilentSessions() {
        let limit = configuration.heartbeatInterval * configuration.missedHeartbeats
        let now = ContinuousClock.now
        for (id, connection) in connections {
            guard let progress = connection.uploadProgress, now - progress > configuration.uploadStallTimeout else { continue }
            logger.warning(
                "closing a session whose upload stalled (no chunk for \(configuration.uploadStallTimeout))",
                metadata: ["site": "\(connection.site)"])
            drop(id, connection, reason: "your upload made no progress for \(configuration.uploadStallTimeout); reconnect")
        }
        // A stream waiting for an upload slot is silent because this coordinator is not reading it.
        let waiting = Set(uploadWaiters.map(\.id))
        for (id, connection) in connections where !waiting.contains(id) && now - connection.lastSeen > limit {
            logger.warning(
                "closing a silent session (no heartbeat for \(limit))", metadata: ["site": "\(connection.site)"])
            drop(id, connection, reason: "no message or heartbeat for \(limit); reconnect")
        }
    }

    /// Closes stream `id` with UNAVAILABLE (the participant reconnects) and, if it was its site's
    /// live session, tells the machine the site is gone.
    private func drop(_ id: UInt64, _ connection: Connection, reason: String) {
        let wasActive = active[connection.site] == id
        if wasActive { active[connection.site] = nil }
        close(id, .unavailable(reason))
        if wasActive { handle(.participantGone(connection.site)) }
    }

    // MARK: Upload slots

    /// Returns when stream `id` may go on with an upload it is opening: at once if a slot is
    /// free, otherwise when one frees (or the stream closes). Meanwhile its reader is suspended,
    /// so the participant's chunks wait in HTTP/2 flow control, not in this process.
    func acquireUploadSlot(for id: UInt64) async {
        guard connections[id] != nil, connections[id]!.uploadProgress == nil else { return }
        if uploadHolders < uploadSlots {
            grantUploadSlot(to: id)
            return
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // A session cancelled before this point is not left waiting for a slot.
                if Task.isCancelled { return continuation.resume() }
                uploadWaiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.wakeUploadWaiter(id) }
        }
    }

    /// How many connections hold an upload slot (have an `uploadProgress`).
    private var uploadHolders = 0

    private func grantUploadSlot(to id: UInt64) {
        guard connections[id] != nil else { return }
        if connections[id]!.uploadProgress == nil { uploadHolders += 1 }
        connections[id]!.uploadProgress = .now
        connections[id]!.uploadOpened = false
        connections[id]!.lastSeen = .now
        peakConcurrentUploads = max(peakConcurrentUploads, uploadHolders)
    }

    /// Hands free slots to waiting streams first (their upload is already on its way; a waiter
    /// whose stream has closed is just woken), then sends held-back masked-input requests.
    private func grantFreedUploadSlots() {
        while uploadHolders < uploadSlots {
            if !uploadWaiters.isEmpty {
                let waiter = uploadWaiters.removeFirst()
                if connections[waiter.id] != nil { grantUploadSlot(to: waiter.id) }
                waiter.continuation.resume()
            } else if !deferredMaskedInputRequests.isEmpty {
                let (id, _, message) = deferredMaskedInputRequests.removeFirst()
                guard connections[id] != nil else { continue }
                grantUploadSlot(to: id)
                deliver(message, on: id)
            } else {
                return
            }
        }
    }

    /// Gives up the slot of stream `id`, if it holds one, and passes it on.
    private func releaseUploadSlot(_ id: UInt64) {
        guard connections[id]?.uploadProgress != nil else { return }
        connections[id]!.uploadProgress = nil
        uploadHolders -= 1
        connections[id]!.uploadOpened = false
        grantFreedUploadSlots()
    }

    /// Wakes the reader of stream `id` if it waits for a slot (the stream is closing).
    func wakeUploadWaiter(_ id: UInt64) {
        while let index = uploadWaiters.firstIndex(where: { $0.id == id }) {
            uploadWaiters.remove(at: index).continuation.resume()
        }
    }

    /// A new stream from `site` (already authenticated); its outbound envelopes come out of the
    /// returned sequence, which finishes when the coordinator closes the stream.
    func connect(site: SiteID) -> (id: UInt64, outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>) {
        nextConnectionID += 1
        let (stream, continuation) = AsyncStream.makeStream(of: Tessera_V1_CoordinatorEnvelope.self)
        let decoder = ParticipantEnvelopeDecoder(maximumChunkBytes: configuration.maximumChunkBytes)
        connections[nextConnectionID] = Connection(site: site, outbound: continuation, decoder: decoder)
        if machine.isFinished { close(nextConnectionID, .experimentFinished) }
        logger.debug("session opened", metadata: ["site": "\(site)", "connection": "\(nextConnectionID)"])
        return (nextConnectionID, stream)
    }

    /// The stream `id` ended (the participant left, the connection failed, or the coordinator
    /// closed it); returns why the coordinator closed it, if it did.
    func disconnect(_ id: UInt64) -> CloseReason? {
        let reason = closeReasons.removeValue(forKey: id)
        guard let connection = removeConnection(id) else { return reason }
        guard active[connection.site] == id else { return reason }
        active[connection.site] = nil
        logger.info("participant left", metadata: ["site": "\(connection.site)"])
        handle(.participantGone(connection.site))
        return reason
    }

    /// Ends the session of `site` (an operator's kick, or a test): the site counts as gone and
    /// reconnects with backoff.
    public func endSession(of site: SiteID, reason: String = "the coordinator ended the session") {
        guard let id = active.removeValue(forKey: site) else { return }
        close(id, .unavailable(reason))
        logger.notice("ended a session", metadata: ["site": "\(site)", "reason": "\(reason)"])
        handle(.participantGone(site))
    }

    /// One envelope from stream `id`.
    func receive(_ envelope: Tessera_V1_ParticipantEnvelope, on id: UInt64) {
        // The connection is read field by field and its decoder mutated in place in the
        // dictionary: a copy of the connection alive while it decodes would make every chunk
        // copy the whole partial vector.
        guard let site = connections[id]?.site, let registered = connections[id]?.registered else { return }
        let expected = connections[id]!.expected
        connections[id]!.lastSeen = .now
        let inbound: ParticipantInbound?
        defer { releaseUploadSlotIfDone(id) }
        // Heartbeats keep a session alive but are no progress of its upload.
        if connections[id]!.uploadProgress != nil, !envelope.isHeartbeat {
            connections[id]!.uploadProgress = .now
            connections[id]!.uploadOpened = true
        }
        do {
            inbound = try connections[id]!.decoder.decode(envelope, expecting: expected)
        } catch {
            var rejection = Rejection(error, rejectedSequence: envelope.header.sequence)
            // Hello must open the session: anything else first ends it.
            if !registered { rejection.fatal = true }
            reject(rejection, on: id)
            if rejection.fatal { close(id, .refused) }
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

    /// Frees the slot of stream `id` once its upload has begun and nothing is partly received
    /// (the upload completed, failed and was discarded, or the site reported a failure).
    private func releaseUploadSlotIfDone(_ id: UInt64) {
        guard let connection = connections[id], connection.uploadOpened, !connection.decoder.hasPartialMessage else { return }
        releaseUploadSlot(id)
    }

    private func register(_ hello: ParticipantHello, site: SiteID, on id: UInt64) {
        if let previous = active[site], previous != id {
            // The newer connection wins: close the old stream, and let the machine see the site
            // leave before it comes back, so it is never counted twice.
            logger.notice("site connected again; the new session replaces the old one", metadata: ["site": "\(site)"])
            active[site] = nil
            close(previous, .replaced)
            handle(.participantGone(site))
        }
        guard var connection = connections[id] else { return }
        connection.registered = true
        let welcome = SessionWelcome(
            sessionID: "\(site)-\(id)", site: site, heartbeatInterval: configuration.heartbeatInterval,
            maximumChunkBytes: configuration.maximumChunkBytes)
        do {
            connection.outbound.yield(try connection.encoder.welcome(welcome))
        } catch {
            logger.error("could not encode the welcome", metadata: ["site": "\(site)", "error": "\(error)"])
        }
        connections[id] = connection
        active[site] = id
        joins[site, default: 0] += 1
        let descriptor = hello.descriptor(site: site)
        logger.info(
            "participant joined",
            metadata: ["site": "\(site)", "datasets": "\(descriptor.datasets.sorted { $0.key < $1.key })"])
        handle(.participantAvailable(descriptor))
    }

    private func close(_ id: UInt64, _ reason: CloseReason) {
        guard removeConnection(id) != nil else { return }
        closeReasons[id] = reason
    }

    /// Forgets stream `id`: its outbound sequence finishes, nothing of an upload waits for it
    /// any more, and a slot it held passes on.
    private func removeConnection(_ id: UInt64) -> Connection? {
        guard let connection = connections.removeValue(forKey: id) else { return nil }
        connection.outbound.finish()
        wakeUploadWaiter(id)
        deferredMaskedInputRequests.removeAll { $0.id == id }
        if connection.uploadProgress != nil {
            uploadHolders -= 1
            grantFreedUploadSlots()
        }
        return connection
    }

    private func closeAll() {
        let reason: CloseReason = machine.isFinished ? .experimentFinished : .unavailable("the coordinator is shutting down")
        for id in Array(connections.keys) { close(id, reason) }
        active.removeAll()
    }

    private func reject(_ rejection: Rejection, on id: UInt64) {
        guard var connection = connections[id] else { return }
        rejections.append(RejectionRecord(site: connection.site, rejection: rejection))
        logger.warning(
            "rejected a participant message", metadata: ["site": "\(connection.site)", "reason": "\(rejection.reason)"])
        do {
            connection.outbound.yield(try connection.encoder.rejection(rejection, at: connection.expected?.position))
        } catch {
            logger.error("could not encode a rejection", metadata: ["site": "\(connection.site)", "error": "\(error)"])
        }
        connections[id] = connection
    }

    // MARK: The machine

    private var now: Double { Self.seconds(since: origin) }

    private static func seconds(since origin: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    private func handle(_ event: CoordinatorEvent) {
        let actions = machine.handle(event, now: now)
        // A round that ends (a failed round ends in the middle of a stage) asks nothing more:
        // drop its held-back requests before the actions free slots, or a freed slot would send
        // one of them to a site about to be told to leave that round.
        for case .roundFinished(let record) in actions {
            deferredMaskedInputRequests.removeAll { $0.round == record.round }
        }
        for action in actions {
            perform(action)
        }
    }

    private func perform(_ action: CoordinatorAction) {
        switch action {
        case .send(let site, let message):
            send(message, to: site)
        case .scheduleDeadline(let token, let seconds):
            deadlineContinuation.yield((token, seconds))
        case .reject(let site, let reason):
            if let id = active[site] {
                reject(Rejection(code: .protocolViolation, reason: reason), on: id)
            } else {
                rejections.append(RejectionRecord(site: site, rejection: Rejection(code: .protocolViolation, reason: reason)))
            }
        case .publish(let model):
            digests[model.version] = modelStore.put(model.parameters)
            if digests.count > modelStore.capacity {
                digests = digests.filter { modelStore.parameters(for: $0.value) != nil }
            }
            publishedVersions.append(model.version)
            logger.info("published model \(model.version)", metadata: ["round": "\(model.round)", "contributors": "\(model.contributors)"])
        case .roundFinished(let record):
            logger.info("\(record.summaryLine)", metadata: ["round": "\(record.round)"])
        case .experimentFinished(let completed, let version):
            logger.info("experiment finished: \(completed) rounds completed, final model \(version)")
            deadlineContinuation.finish()
        case .log(let line):
            logger.info("\(line)")
        }
    }

    private func digest(of parameters: [Float], version: ModelVersion) -> ModelDigest {
        if let known = digests[version], modelStore.parameters(for: known) != nil { return known }
        let digest = modelStore.put(parameters)
        digests[version] = digest
        return digest
    }

    private func send(_ message: CoordinatorMessage, to site: SiteID) {
        // A site with no live stream misses the message; the stage deadline counts it out.
        guard let id = active[site], connections[id] != nil else { return }
        switch message {
        case .secAgg(let round, let request) where request.stage == .maskedInputCollection:
            // The request is what starts the upload: it waits for a slot.
            if connections[id]!.uploadProgress == nil {
                guard uploadHolders < uploadSlots else {
                    deferredMaskedInputRequests.append((id, round, message))
                    return
                }
                grantUploadSlot(to: id)
            }
        case .train, .leaveRound:
            // A new round, or the site's part in this one is over: nothing of the old round may
            // still be asked for or hold a slot.
            deferredMaskedInputRequests.removeAll { $0.id == id }
            releaseUploadSlot(id)
        default:
            break
        }
        deliver(message, on: id)
    }

    /// Encodes `message` for stream `id` and queues it on the stream.
    private func deliver(_ message: CoordinatorMessage, on id: UInt64) {
        guard var connection = connections[id] else { return }
        let site = connection.site
        let experimentID = machine.plan.experimentID
        var modelDigest: ModelDigest?
        switch message {
        case .train(let instruction):
            connection.decoder.discardPartialMessage()
            modelDigest = digest(of: instruction.parameters, version: instruction.modelVersion)
            let secure = instruction.secure.map {
                ExpectedRound.Secure(
                    secAggRoundID: $0.roundID, participantIndex: $0.participantIndex,
                    vectorLength: QuantizationCodec.encodedLength(dimension: instruction.parameters.count))
            }
            connection.expected = ExpectedRound(
                position: RoundPosition(experimentID: experimentID, round: instruction.round, stage: .training),
                parameterCount: instruction.parameters.count, secure: secure)
            connection.stage = .training
        case .evaluate(let instruction):
            modelDigest = digest(of: instruction.parameters, version: instruction.modelVersion)
            connection.expected = ExpectedRound(
                position: RoundPosition(experimentID: experimentID, round: instruction.round, stage: .evaluation),
                parameterCount: instruction.parameters.count)
            connection.stage = .evaluation
        case .secAgg(_, let request):
            let stage = RoundStage(request.stage)
            connection.expected?.position.stage = stage
            connection.stage = stage
        case .leaveRound:
            connection.expected = nil
            connection.decoder.discardPartialMessage()
        }
        do {
            let envelope = try connection.encoder.encode(
                message, experimentID: experimentID, currentStage: connection.stage, modelDigest: modelDigest)
            connection.outbound.yield(envelope)
        } catch {
            logger.error("could not encode a message for a participant", metadata: ["site": "\(site)", "error": "\(error)"])
        }
        connections[id] = connection
    }

}

/// The `tessera.v1.ParticipantSession` service: one long-lived stream per participant.
struct ParticipantSessionService: Tessera_V1_ParticipantSession.ServiceProtocol {
    let coordinator: CoordinatorService

    func session(
        request: StreamingServerRequest<Tessera_V1_ParticipantEnvelope>, context: ServerContext
    ) async throws -> StreamingServerResponse<Tessera_V1_CoordinatorEnvelope> {
        let site: SiteID
        do {
            site = try await coordinator.identity.site(metadata: request.metadata, context: context)
        } catch {
            throw RPCError(code: .unauthenticated, message: error.message)
        }
        return StreamingServerResponse { writer in
            let (id, outbound) = await coordinator.connect(site: site)
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
            case .replaced?:
                throw RPCError(
                    code: .failedPrecondition,
                    message: "a newer session of site \(site) replaced this one; only one instance of a site may be connected")
            }
        }
    }
}

extension CoordinatorService {
    /// Runs this coordinator together with participant session loops until the experiment ends,
    /// and returns its outcome: the one way a whole federation is run in one process (in-process
    /// transport, loopback mTLS, tests). A participant loop that throws ends the run with its error.
    ///
    /// With more than one participant, OpenBLAS runs single-threaded for the duration: the sites
    /// train concurrently and are the parallelism, and OpenBLAS's one thread pool, shared by
    /// concurrent callers, spends its time spinning on its lock instead (measured: a 10-site
    /// round of the runtime benchmark took 1.7 s with the default threads and 0.34 s with one).
    public func run(alongside participants: [@Sendable () async throws -> Void]) async throws -> Outcome {
        try await TensorRuntime.withThreadCount(participants.count > 1 ? 1 : TensorRuntime.threadCount) {
            try await runConcurrently(with: participants)
        }
    }

    private func runConcurrently(with participants: [@Sendable () async throws -> Void]) async throws -> Outcome {
        try await withThrowingTaskGroup(of: Outcome?.self) { group in
            for participant in participants {
                group.addTask {
                    try await participant()
                    return nil
                }
            }
            group.addTask { await self.run() }
            var outcome: Outcome?
            for try await result in group where result != nil { outcome = result }
            guard let outcome else {
                throw TesseraRuntimeError(.invalidConfiguration, "the federation ended without the coordinator's outcome")
            }
            return outcome
        }
    }
}
