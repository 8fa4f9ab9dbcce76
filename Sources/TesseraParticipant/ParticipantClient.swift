import Foundation
public import GRPCCore
public import Logging
import Synchronization
public import TesseraFederation
import TesseraSecAgg
public import TesseraTransport
package import TesseraWire
public import Tracing

/// A site's side of the federation: one outbound session stream to the coordinator, driving a
/// ``ParticipantAgent`` (the same agent the simulation uses).
///
/// It says Hello (datasets and their sample counts), fetches the models that tasks name by
/// digest from the coordinator's `ModelStore` (keeping the last few by digest), hands each
/// coordinator message to the agent and sends its replies (updates and masked inputs in
/// chunks), and sends heartbeats while idle. When the stream fails it reconnects with full
/// jitter exponential backoff; when the coordinator ends the session cleanly (the experiment is
/// over) ``run(using:)`` returns, unless ``Configuration/reconnectAfterSessionEnds`` is set: then
/// the site is a service that waits for the coordinator's next experiment, reconnecting for as
/// long as it runs (a coordinator restart is a session that fails, then a new one).
///
/// Nothing here lasts one experiment: the first accepted task of an experiment empties the model
/// cache, and the agent checks every SecAgg message against the experiment it took part in
/// (``ParticipantAgent/handle(_:experimentID:)``), so a process serves experiment after
/// experiment and refuses a message of one it did not accept.
///
/// Liveness: a coordinator that sends nothing, not even its heartbeat, for
/// ``Configuration/missedCoordinatorHeartbeats`` intervals while the site waits is taken for
/// gone (the session is closed and reopened with backoff), and a model fetch that brings fewer
/// than ``Configuration/fetchMinimumBytesPerSecond`` over ``Configuration/fetchProgressWindow``
/// is abandoned. A session "replaced" by another connection with this site's certificate is
/// retried ``Configuration/replacedSessionRetries`` times, each logged as a possible stolen key,
/// then the client stops: a thief cannot knock the real site out with one connection, and two
/// instances of one site do not take turns for ever.
public final class ParticipantClient: Sendable {
    public struct Configuration: Sendable {
        /// First backoff ceiling; doubled after every failed attempt.
        public var backoffBase: Duration
        /// The backoff ceiling never exceeds this.
        public var backoffCap: Duration
        /// Give up after this many consecutive failed attempts (`nil`: never).
        public var maximumAttempts: Int?
        /// Open a new session after the coordinator ends one cleanly (a long-lived site).
        public var reconnectAfterSessionEnds: Bool
        /// Metadata sent when opening the session (the in-process identity token in tests).
        public var metadata: Metadata
        /// How many models to keep, by digest.
        public var modelCacheSize: Int
        public var softwareVersion: String
        /// Receives the federation's signed revocation list each Welcome relays (unverified: the
        /// receiver checks the CA's signature before adopting it).
        public var revocationListReceived: (@Sendable ([UInt8]) -> Void)?
        /// Told `true` when a session is established (the coordinator's Welcome arrived) and
        /// `false` when it ends: the participant's `/readyz`.
        public var sessionEstablished: (@Sendable (Bool) -> Void)?
        /// The session is closed (and reopened with backoff) when the coordinator sends nothing
        /// for this many of the heartbeat intervals its Welcome names, while the site waits.
        public var missedCoordinatorHeartbeats: Int
        /// How long to wait for the Welcome after opening a session.
        public var welcomeTimeout: Duration
        /// A model fetch is abandoned when fewer than this many bytes per second arrive over a
        /// ``fetchProgressWindow``.
        public var fetchMinimumBytesPerSecond: Int
        /// The window over which a fetch's progress is judged.
        public var fetchProgressWindow: Duration
        /// How many times a session replaced by another connection of this site is reopened
        /// before the client stops with an error.
        public var replacedSessionRetries: Int
        /// HTTP/2 keepalive on the connection to the coordinator: a PING after this long without
        /// a frame from it (`nil`: none). The coordinator must allow pings this often.
        public var keepaliveInterval: Duration?
        /// How long the coordinator has to answer a keepalive PING before the connection is
        /// closed.
        public var keepaliveTimeout: Duration
        /// How long closing the connection may take once the session loop has ended before it is
        /// forced (a coordinator that has gone cannot hold the site's exit).
        public var shutdownGrace: Duration
        /// Where rounds, refusals, training time and bytes are counted; `nil` counts nothing.
        public var metrics: ParticipantMetrics?
        /// Continues each round's trace with the site's spans (see `SiteTracing`). `nil`: no
        /// tracing, at no cost; a received model fetch's traceparent is still passed on.
        public var tracer: (any Tracer)?

        public init(
            backoffBase: Duration = .milliseconds(500), backoffCap: Duration = .seconds(30),
            maximumAttempts: Int? = nil,
            reconnectAfterSessionEnds: Bool = false, metadata: Metadata = [:], modelCacheSize: Int = 2,
            softwareVersion: String = "tessera-participant",
            revocationListReceived: (@Sendable ([UInt8]) -> Void)? = nil,
            missedCoordinatorHeartbeats: Int = 3, welcomeTimeout: Duration = .seconds(30),
            fetchMinimumBytesPerSecond: Int = 1_024, fetchProgressWindow: Duration = .seconds(60),
            replacedSessionRetries: Int = 5, keepaliveInterval: Duration? = .seconds(60),
            keepaliveTimeout: Duration = .seconds(20), shutdownGrace: Duration = .seconds(5),
            tracer: (any Tracer)? = nil
        ) {
            self.tracer = tracer
            self.missedCoordinatorHeartbeats = max(1, missedCoordinatorHeartbeats)
            self.welcomeTimeout = welcomeTimeout
            self.fetchMinimumBytesPerSecond = max(0, fetchMinimumBytesPerSecond)
            self.fetchProgressWindow = fetchProgressWindow
            self.replacedSessionRetries = max(0, replacedSessionRetries)
            self.keepaliveInterval = keepaliveInterval
            self.keepaliveTimeout = keepaliveTimeout
            self.shutdownGrace = shutdownGrace
            self.revocationListReceived = revocationListReceived
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
            self.maximumAttempts = maximumAttempts
            self.reconnectAfterSessionEnds = reconnectAfterSessionEnds
            self.metadata = metadata
            self.modelCacheSize = modelCacheSize
            self.softwareVersion = softwareVersion
        }
    }

    /// The full-jitter delay before attempt `attempt` (0-based): uniform in
    /// `0 ... min(cap, base · 2^attempt)`.
    public static func backoff(
        attempt: Int, base: Duration, cap: Duration, using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let ceiling = min(cap, base * Double(1 << min(attempt, 30)))
        return .seconds(Double.random(in: 0...ceiling.inSeconds, using: &generator))
    }

    public let site: SiteID
    public let configuration: Configuration
    private let interception: SessionInterception
    let clock: any ServiceClock
    private let agent: LockedAgent
    private let logger: Logger
    private let cache = Mutex(ModelCache())
    private let tracing: SiteTracing

    /// The agent is owned by the client from now on; do not use it elsewhere.
    public convenience init(
        agent: ParticipantAgent, configuration: Configuration = Configuration(), clock: any ServiceClock, logger: Logger
    ) {
        self.init(
            agent: agent, configuration: configuration, interception: SessionInterception(), clock: clock,
            logger: logger)
    }

    /// A client whose session is intercepted: only for `TesseraTesting` (a site that misbehaves on
    /// purpose) and for `tessera-participant`'s fault-injection failpoints.
    package init(
        agent: ParticipantAgent, configuration: Configuration, interception: SessionInterception,
        clock: any ServiceClock,
        logger: Logger
    ) {
        self.interception = interception
        self.clock = clock
        self.site = agent.site
        self.agent = LockedAgent(agent)
        self.configuration = configuration
        self.tracing = SiteTracing(tracer: configuration.tracer, site: agent.site)
        var logger = logger
        logger[metadataKey: "site"] = "\(agent.site)"
        self.logger = logger
    }

    /// Keeps a session open until the coordinator ends it (or forever, with
    /// `reconnectAfterSessionEnds`), reconnecting after failures. Returns on cancellation.
    public func run<Transport: ClientTransport>(using client: GRPCClient<Transport>) async throws {
        var attempt = 0
        var replacements = 0
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            let welcomed = SessionFlag()
            let tasked = SessionFlag()
            defer { if welcomed.isSet { configuration.sessionEstablished?(false) } }
            do {
                defer { configuration.metrics?.session(established: false) }
                try await session(using: client, welcomed: welcomed, tasked: tasked)
                guard configuration.reconnectAfterSessionEnds else {
                    logger.info("the coordinator ended the session")
                    return
                }
                logger.info("the coordinator ended the session; waiting for its next experiment")
                // A coordinator that ends every session at once (it has nothing for this site)
                // must not be redialled in a tight loop: only a session that carried work
                // starts the backoff over.
                if tasked.isSet { attempt = 0 }
            } catch let error as TesseraRuntimeError where error.code == .sessionRefused {
                logger.error("the coordinator refused this site: \(error.message)")
                throw error
            } catch let error as RPCError where error.code == .failedPrecondition {
                // Replaced by a newer session of this site: another instance, or someone holding
                // this site's key. Retried a bounded number of times, so a thief cannot knock the
                // site out for good and two instances do not take turns for ever.
                replacements += 1
                let retries = configuration.replacedSessionRetries
                guard replacements <= retries else {
                    logger.critical(
                        "session replaced again (\(replacements) times); stopping. Make sure only one instance of \(site) runs; if none other does, its key may be stolen: revoke it (tessera pki revoke --site \(site)) and issue a new one"
                    )
                    throw TesseraRuntimeError(
                        .sessionRefused,
                        "the session of \(site) was replaced by another connection with its certificate \(replacements) times; stopped after \(retries) retries (another instance of this site, or a stolen key): \(error.message)",
                        cause: error)
                }
                logger.critical(
                    "session replaced by another connection presenting this site's certificate (\(replacements) of \(retries) retries): if no other instance of \(site) is running, its key may be stolen; revoke it (tessera pki revoke --site \(site)) and issue a new one"
                )
            } catch let error as RPCError where error.code == .permissionDenied {
                logger.error("the coordinator closed the session: \(error.message)")
            } catch {
                if Task.isCancelled { return }
                if welcomed.isSet { attempt = 0 }
                logger.warning("session failed: \(error)")
            }
            if let maximum = configuration.maximumAttempts, attempt >= maximum {
                throw TesseraRuntimeError(
                    .transport, "gave up after \(attempt) failed attempts to reach the coordinator.")
            }
            let delay = Self.backoff(
                attempt: attempt, base: configuration.backoffBase, cap: configuration.backoffCap, using: &generator)
            attempt += 1
            logger.info("reconnecting in \(String(format: "%.2f", delay.inSeconds)) s")
            do { try await clock.sleep(for: delay) } catch { return }
        }
    }

    private func session<Transport: ClientTransport>(
        using client: GRPCClient<Transport>, welcomed: SessionFlag, tasked: SessionFlag
    ) async throws {
        let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
        let store = Tessera_V1_ModelStore.Client(wrapping: client)
        let outbox = Outbox()
        let descriptor = agent.descriptor
        var hello = ParticipantHello(
            datasets: descriptor.datasets, cores: max(1, descriptor.cores),
            softwareVersion: configuration.softwareVersion,
            signingCertificate: descriptor.signing?.certificate ?? [])
        hello.schemas = descriptor.schemas
        hello.memoryBytes = Int(
            clamping: min(ProcessInfo.processInfo.physicalMemory, UInt64(WireProtocol.maximumMemoryBytes)))
        try outbox.send { encoder in [try encoder.hello(hello)] }
        let tamper = interception.tamper
        let inspectInbound = interception.inspectInbound
        let clock = clock
        let silence = SilenceWatch(limit: configuration.welcomeTimeout, now: clock.now)

        // The session, and beside it the watch that ends it when the coordinator goes silent.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.session(
                    sessions: sessions, store: store, outbox: outbox, flags: (welcomed, tasked), silence: silence,
                    tamper: tamper, inspectInbound: inspectInbound)
            }
            group.addTask { try await silence.run(clock: clock) }
            try await group.next()
            group.cancelAll()
        }
    }

    private func session<Transport: ClientTransport>(
        sessions: Tessera_V1_ParticipantSession.Client<Transport>, store: Tessera_V1_ModelStore.Client<Transport>,
        outbox: Outbox, flags: (welcomed: SessionFlag, tasked: SessionFlag), silence: SilenceWatch,
        tamper: (@Sendable (Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope])?,
        inspectInbound: (@Sendable (CoordinatorInbound) -> Void)?
    ) async throws {
        let clock = clock
        try await sessions.session(
            metadata: configuration.metadata,
            requestProducer: { writer in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await outgoing in outbox.envelopes {
                            let envelope = outgoing.envelope
                            for sent in tamper?(envelope) ?? [envelope] { try await writer.write(sent) }
                            outgoing.written?.end()
                        }
                    }
                    group.addTask {
                        // Heartbeats start with the coordinator's Welcome, which names their
                        // interval, and leave at fixed instants from it.
                        for await interval in outbox.welcomes {
                            var beat = clock.now
                            while true {
                                beat += interval
                                try await clock.sleep(until: beat)
                                try outbox.send { encoder in [encoder.heartbeat()] }
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            },
            onResponse: { response in
                defer { outbox.finish() }
                var decoder = CoordinatorEnvelopeDecoder()
                for try await envelope in response.messages {
                    silence.heard(at: clock.now)
                    defer { silence.idle(at: clock.now) }
                    let inbound: CoordinatorInbound
                    do {
                        inbound = try decoder.decode(envelope)
                    } catch {
                        self.logger.warning("ignored a coordinator message that failed its checks: \(error)")
                        continue
                    }
                    inspectInbound?(inbound)
                    if case .welcome(let welcome) = inbound {
                        silence.setLimit(welcome.heartbeatInterval * self.configuration.missedCoordinatorHeartbeats)
                    }
                    try await self.handle(
                        inbound, header: decoder.lastHeader, traceparent: envelope.header.traceparent, outbox: outbox,
                        store: store, flags: flags)
                }
            })
    }

    private func handle<Transport: ClientTransport>(
        _ inbound: CoordinatorInbound, header: EnvelopeHeader?, traceparent: String, outbox: Outbox,
        store: Tessera_V1_ModelStore.Client<Transport>, flags: (welcomed: SessionFlag, tasked: SessionFlag)
    ) async throws {
        let message: CoordinatorMessage
        // A distributed-noise input is encoded ahead, once the keys are on their way.
        var encodesAhead = false
        switch inbound {
        case .welcome(let welcome):
            flags.welcomed.set()
            configuration.metrics?.session(established: true)
            configuration.sessionEstablished?(true)
            outbox.welcome(heartbeatInterval: welcome.heartbeatInterval)
            outbox.adoptChunkLimit(welcome.maximumChunkBytes)
            logger.info("joined the federation as \(welcome.site) (session \(welcome.sessionID))")
            if !welcome.signedRevocationList.isEmpty {
                configuration.revocationListReceived?(welcome.signedRevocationList)
            }
            return
        case .heartbeat:
            return
        case .rejection(let rejection):
            if rejection.fatal {
                throw TesseraRuntimeError(.sessionRefused, rejection.reason)
            }
            logger.warning("the coordinator rejected message #\(rejection.rejectedSequence): \(rejection.reason)")
            return
        case .train(let spec):
            // The site policy speaks before the model is fetched or anything is built.
            if let refusal = agent.screen(
                experimentID: spec.experimentID, round: spec.round, architecture: spec.architecture,
                parameterCount: spec.parameterCount,
                secure: spec.secure, privacy: spec.privacy, evaluation: false)
            {
                configuration.metrics?.refused(refusal.error)
                try reply([refusal.message], header: header, outbox: outbox)
                return
            }
            configuration.metrics?.joined(evaluation: false)
            flags.tasked.set()
            enter(spec.experimentID, round: spec.round)
            let parameters = try await model(
                spec.modelDigest, count: spec.parameterCount, store: store, round: spec.round, traceparent: traceparent)
            encodesAhead = spec.secure != nil && spec.privacy?.distributed != nil
            if spec.round > 1 {
                logger.info("round \(spec.round - 1) is over: the global model is now \(spec.modelVersion)")
            }
            logger.info(
                "round \(spec.round): training on \(spec.datasetName) from model \(spec.modelVersion)\(spec.secure == nil ? "" : " (secure aggregation)")"
            )
            message = .train(try spec.instruction(parameters: parameters))
        case .evaluate(let spec):
            if let refusal = agent.screen(
                experimentID: spec.experimentID, round: spec.round, architecture: spec.architecture,
                parameterCount: spec.parameterCount,
                secure: spec.secure, evaluation: true)
            {
                configuration.metrics?.refused(refusal.error)
                try reply([refusal.message], header: header, outbox: outbox)
                return
            }
            configuration.metrics?.joined(evaluation: true)
            flags.tasked.set()
            enter(spec.experimentID, round: spec.round)
            let parameters = try await model(
                spec.modelDigest, count: spec.parameterCount, store: store, round: spec.round, traceparent: traceparent)
            logger.info("round \(spec.round): round finished with new model \(spec.modelVersion); evaluating it")
            message = .evaluate(try spec.instruction(parameters: parameters))
        case .secAgg(let round, let request):
            message = .secAgg(round: round, request)
        case .leaveRound(let round, let reason):
            logger.info("round \(round): left the round (\(reason))")
            message = .leaveRound(round: round, reason: reason)
        }
        let round = header?.round ?? 0
        let training: (any Span)? =
            if case .train = message { tracing.start("training", round: round, continuing: traceparent) } else { nil }
        let started = ContinuousClock.now
        let replies = await tracing.run(in: training) {
            await agent.handleOnDedicatedThread(message, experimentID: header?.experimentID ?? "")
        }
        if case .train = message { configuration.metrics?.trained(seconds: ContinuousClock.now - started) }
        try reply(replies, header: header, traceparent: traceparent, outbox: outbox)
        // With the ShareKeys reply on its way, mask the input before the coordinator asks for it
        // (it asks a few sites at a time, and a site that masks only when asked holds up its wave).
        // With AdvertiseKeys on its way, encode a distributed-noise input while the keys gather.
        let ahead: Bool
        let masks: Bool
        switch message {
        case .secAgg(_, .shareKeysRequest): (ahead, masks) = (true, true)
        case .train: (ahead, masks) = (true, encodesAhead)
        default: (ahead, masks) = (false, false)
        }
        let masking = masks ? tracing.start("masking", round: round, continuing: traceparent) : nil
        let maskingStarted = ContinuousClock.now
        if ahead, await tracing.run(in: masking, { await agent.prepareAheadOnDedicatedThread() }) {
            configuration.metrics?.masked(seconds: ContinuousClock.now - maskingStarted)
            logger.debug("round \(header?.round ?? 0): masked input ready ahead of its request")
        }
    }

    /// A task of `experiment` passed the site policy: a new experiment starts with an empty model
    /// cache (the agent drops its own round state when it takes the task).
    private func enter(_ experiment: String, round: Int) {
        guard cache.withLock({ $0.enter(experiment) }) else { return }
        logger.info("experiment \(experiment): taking part from round \(round)")
    }

    private func reply(
        _ replies: [ParticipantMessage], header: EnvelopeHeader?, traceparent: String = "", outbox: Outbox
    ) throws {
        let experimentID = header?.experimentID ?? ""
        let stage = header?.stage ?? .training
        for reply in replies {
            // An upload's span ends once its last envelope is written to the stream.
            let upload: (any Span)? =
                switch reply {
                case .update(let round, _, _), .secAgg(let round, .maskedInput):
                    tracing.start("upload", round: round, continuing: traceparent)
                default: nil
                }
            let metrics = configuration.metrics
            try outbox.send(endingSpan: upload) { encoder in
                let envelopes = try encoder.encode(reply, experimentID: experimentID, currentStage: stage)
                for envelope in envelopes { metrics?.sent(envelope.payloadBytes) }
                return envelopes
            }
            describe(reply)
        }
    }

    private func describe(_ reply: ParticipantMessage) {
        switch reply {
        case .update(let round, let delta, let report):
            logger.info("round \(round): trained\(Self.loss(report.loss)); update of \(delta.count) values sent")
        case .trained(let round, let report):
            logger.info("round \(round): trained on \(report.sampleCount) samples\(Self.loss(report.loss))")
        case .secAgg(let round, let message):
            switch message {
            case .maskedInput: logger.info("round \(round): masked update sent")
            case .unmaskingResponse: logger.info("round \(round): unmasking shares sent; waiting for the new model")
            default: logger.debug("round \(round): \(message.stage) sent")
            }
        case .evaluation(let round, let metrics):
            logger.info("round \(round): evaluation sent (loss \(String(format: "%.4f", metrics.loss)))")
        case .failed(let round, let reason):
            logger.warning("round \(round): could not do the task: \(reason)")
        }
    }

    /// The loss for the site's log; it stays in the log when the site keeps metrics to itself.
    private static func loss(_ loss: Double?) -> String {
        loss.map { " (loss \(String(format: "%.4f", $0)))" } ?? ""
    }

    private func model<Transport: ClientTransport>(
        _ digest: ModelDigest, count: Int, store: Tessera_V1_ModelStore.Client<Transport>, round: Int,
        traceparent: String
    ) async throws -> [Float] {
        let span = tracing.start("fetch", round: round, continuing: traceparent)
        return try await tracing.run(in: span) {
            try await model(
                digest, count: count, store: store, parent: tracing.fetchParent(of: span, received: traceparent))
        }
    }

    /// The model by `digest`, from the cache or fetched; the fetch carries `parent` in its
    /// request metadata, so it belongs to the round's trace.
    private func model<Transport: ClientTransport>(
        _ digest: ModelDigest, count: Int, store: Tessera_V1_ModelStore.Client<Transport>, parent: Traceparent?
    ) async throws -> [Float] {
        if let cached = cache.withLock({ $0.parameters(for: digest) }) { return cached }
        let parameters: [Float]
        let progress = FetchProgressWatch(
            minimumBytesPerSecond: configuration.fetchMinimumBytesPerSecond, window: configuration.fetchProgressWindow)
        var fetchMetadata = configuration.metadata
        if let parent { fetchMetadata.setTraceparent(parent) }
        let metadata = fetchMetadata
        let clock = clock
        do {
            parameters = try await withThrowingTaskGroup(of: [Float]?.self) { group in
                group.addTask {
                    try await Self.fetch(digest, count: count, store: store, metadata: metadata, progress: progress)
                }
                group.addTask {
                    try await progress.run(clock: clock, what: "the fetch of model \(digest.hex)")
                    return nil
                }
                // The fetch ends, or the progress watch throws first (which cancels the fetch).
                defer { group.cancelAll() }
                guard let parameters = try await group.next() ?? nil else { throw CancellationError() }
                return parameters
            }
        } catch {
            throw TesseraRuntimeError(.modelUnavailable, "could not fetch model \(digest.hex)", cause: error)
        }
        configuration.metrics?.received(modelBytes: parameters.count * 4)
        let size = max(1, configuration.modelCacheSize)
        cache.withLock { $0.insert(digest: digest, parameters: parameters, capacity: size) }
        return parameters
    }

    /// One fetch of a model by digest, under flow control; every chunk counts as progress.
    private static func fetch<Transport: ClientTransport>(
        _ digest: ModelDigest, count: Int, store: Tessera_V1_ModelStore.Client<Transport>, metadata: Metadata,
        progress: FetchProgressWatch
    ) async throws -> [Float] {
        // Credits go back as chunks are taken in, until the last one (the server may have
        // ended the stream by then).
        let (credits, creditSink) = AsyncStream.makeStream(of: Int.self)
        return try await store.fetchModel(
            metadata: metadata,
            requestProducer: { writer in
                try await writer.write(.request(digest: digest, windowBytes: WireProtocol.modelWindowBytes))
                for await bytes in credits { try await writer.write(.credit(bytes)) }
            },
            onResponse: { response in
                defer { creditSink.finish() }
                var assembler = ChunkAssembler.model(digest: digest, parameterCount: count)
                // Half the window the store granted (first chunk) is taken in before a
                // credit goes back; a store that grants nothing explicit gets one per chunk.
                var creditEvery = 0
                var uncredited = 0
                for try await chunk in response.messages {
                    progress.add(chunk.data.count)
                    try assembler.append(chunk)
                    if chunk.windowBytes > 0 { creditEvery = Int(clamping: chunk.windowBytes / 2) }
                    uncredited += chunk.data.count
                    if !assembler.isComplete, uncredited >= creditEvery {
                        creditSink.yield(uncredited)
                        uncredited = 0
                    }
                }
                return try assembler.finish()
            })
    }
}

/// The agent is a class with mutable round state and not `Sendable`: every use goes through
/// this lock, and the client is its only owner.
private final class LockedAgent: @unchecked Sendable {
    private let lock = Mutex(())
    private let agent: ParticipantAgent

    init(_ agent: ParticipantAgent) { self.agent = agent }

    var descriptor: ParticipantDescriptor { lock.withLock { _ in agent.descriptor } }

    /// ``ParticipantAgent/screen(experimentID:round:architecture:parameterCount:secure:evaluation:)``: the
    /// failure to send (and why) when the site refuses the task, `nil` when it takes it.
    func screen(
        experimentID: String, round: Int, architecture: ModelArchitecture, parameterCount: Int,
        secure: SecureRoundAssignment?, privacy: RoundPrivacy? = nil, evaluation: Bool
    ) -> (message: ParticipantMessage, error: any Error)? {
        lock.withLock { _ in
            do {
                try agent.screen(
                    experimentID: experimentID, round: round, architecture: architecture,
                    parameterCount: parameterCount, secure: secure, privacy: privacy,
                    evaluation: evaluation)
                return nil
            } catch {
                return (.failed(round: round, reason: "\(agent.site) refuses: \(error)"), error)
            }
        }
    }

    /// Local training is seconds to minutes of CPU: it runs on a thread of its own so the
    /// concurrency pool stays free for the session (heartbeats keep flowing while it trains;
    /// on a one-core host they would otherwise stop and the coordinator would close the session).
    func handleOnDedicatedThread(_ message: CoordinatorMessage, experimentID: String) async -> [ParticipantMessage] {
        await onDedicatedThread { $0.handle(message, experimentID: experimentID) }
    }

    /// ``ParticipantAgent/prepareAhead()`` (masking a secure input: as long as the masks take),
    /// on a thread of its own for the same reason.
    func prepareAheadOnDedicatedThread() async -> Bool {
        await onDedicatedThread { $0.prepareAhead() }
    }

    private func onDedicatedThread<Result: Sendable>(
        _ body: @escaping @Sendable (ParticipantAgent) -> Result
    ) async -> Result {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: self.lock.withLock { _ in body(self.agent) }) }
            thread.name = "tessera-training"
            thread.start()
        }
    }
}

/// The session's outbound queue. Encoding and enqueueing happen under one lock, so envelopes
/// leave in sequence-number order whether they are replies or heartbeats.
private final class Outbox: Sendable {
    private struct State {
        var encoder = ParticipantEnvelopeEncoder()
        var finished = false
    }
    private let state = Mutex(State())
    /// An envelope to write, and the span to end once it is written.
    struct Outgoing: Sendable {
        var envelope: Tessera_V1_ParticipantEnvelope
        var written: (any Span)?
    }
    private let continuation: AsyncStream<Outgoing>.Continuation
    let envelopes: AsyncStream<Outgoing>

    init() {
        (envelopes, continuation) = AsyncStream.makeStream(of: Outgoing.self)
        (welcomes, welcomeContinuation) = AsyncStream.makeStream(of: Duration.self)
    }

    /// The heartbeat interval of each Welcome (the first one starts the heartbeats).
    let welcomes: AsyncStream<Duration>
    private let welcomeContinuation: AsyncStream<Duration>.Continuation

    func welcome(heartbeatInterval: Duration) {
        welcomeContinuation.yield(heartbeatInterval)
    }

    /// Queues what `make` encodes; `span` (if any) ends once the last of it is written, or now
    /// if nothing is queued.
    func send(
        endingSpan span: (any Span)? = nil,
        _ make: (inout ParticipantEnvelopeEncoder) throws -> [Tessera_V1_ParticipantEnvelope]
    ) throws {
        var queued = false
        defer { if !queued { span?.end() } }
        try state.withLock { state in
            guard !state.finished else { return }
            let envelopes = try make(&state.encoder)
            for (index, envelope) in envelopes.enumerated() {
                continuation.yield(Outgoing(envelope: envelope, written: index == envelopes.count - 1 ? span : nil))
            }
            queued = !envelopes.isEmpty
        }
    }

    func adoptChunkLimit(_ bytes: Int) {
        state.withLock { $0.encoder.adoptChunkLimit(bytes) }
    }

    func finish() {
        state.withLock { $0.finished = true }
        continuation.finish()
        welcomeContinuation.finish()
    }
}

/// The models of the experiment this site takes part in, by digest, the newest last. A new
/// experiment starts from an empty cache: a long-running site holds no model of a finished one.
private struct ModelCache {
    private(set) var experimentID: String?
    private var entries: [(digest: ModelDigest, parameters: [Float])] = []

    /// Makes `experiment` the cache's; returns whether it was another one.
    mutating func enter(_ experiment: String) -> Bool {
        guard experiment != experimentID else { return false }
        experimentID = experiment
        entries.removeAll()
        return true
    }

    func parameters(for digest: ModelDigest) -> [Float]? {
        entries.first { $0.digest == digest }?.parameters
    }

    mutating func insert(digest: ModelDigest, parameters: [Float], capacity: Int) {
        entries.append((digest, parameters))
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
    }
}

/// Whether a session got as far as the coordinator's Welcome (then backoff starts over), or
/// carried a task.
private final class SessionFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Where a test or a failpoint reaches into a session: the hooks a misbehaving site needs, kept
/// out of the public configuration so that a production site cannot be configured to tamper.
package struct SessionInterception: Sendable {
    /// Rewrites every envelope just before it is written (a faulty or malicious site).
    package var tamper: (@Sendable (Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope])?
    /// Sees every coordinator message that passed its checks, before the client acts on it, on
    /// the session's reader: whatever it does happens at an exact protocol point.
    package var inspectInbound: (@Sendable (CoordinatorInbound) -> Void)?

    package init(
        tamper: (@Sendable (Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope])? = nil,
        inspectInbound: (@Sendable (CoordinatorInbound) -> Void)? = nil
    ) {
        self.tamper = tamper
        self.inspectInbound = inspectInbound
    }
}
