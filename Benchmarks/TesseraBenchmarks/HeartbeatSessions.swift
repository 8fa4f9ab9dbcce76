import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import TesseraTransport
import TesseraWire

/// Many site sessions in one process that only say Hello and heartbeat, as an idle federation's
/// sites do between rounds. Each session is a site of its own: its own certificate, its own TLS
/// connection, its own session stream, so the coordinator holds for each what it holds for a
/// real site. A session is not reopened when it ends: the tally counts it as lost.
///
/// The first few sessions can also fetch a model at one signal (``fetchSignal``), over their own
/// connections, as a cohort of that many sites does when a round starts.
final class HeartbeatSessions: Sendable {
    struct Tally: Sendable {
        /// Sessions the coordinator welcomed.
        var welcomed = 0
        /// Welcomed sessions that ended before the phase did, and sessions that never opened.
        var lost = 0
        var heartbeatsSent = 0
        var fetchesCompleted = 0
        var fetchesFailed = 0
        /// The slowest fetch so far, in seconds from the signal.
        var slowestFetchSeconds = 0.0
        /// The first few reasons sessions or fetches failed, for the report.
        var failures: [String] = []

        var open: Int { welcomed - min(welcomed, lost) }

        mutating func failed(_ reason: String) {
            if failures.count < 5 { failures.append(reason) }
        }
    }

    /// A model the first ``count`` sessions fetch when ``fetchSignal`` opens.
    struct Fetch: Sendable {
        var digest: ModelDigest
        var parameterCount: Int
        var count: Int
    }

    private let state = Mutex(Tally())
    let fetchSignal = Signal()

    var tally: Tally { state.withLock { $0 } }

    /// Runs one session of the site whose identity directory is `identity` until the calling
    /// task is cancelled; offers `datasets` in its Hello.
    func runSession(
        index: Int, identity: URL, port: Int, datasets: [String: Int], fetch: Fetch?
    ) async {
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: FederationTLS.client(identityDirectory: identity),
                config: .defaults { config in
                    config.http2.maxFrameSize = HTTP2Tuning.participantMaximumFrameBytes
                    config.http2.targetWindowSize = HTTP2Tuning.participantWindowBytes
                })
            try await withGRPCClient(transport: transport) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await self.heartbeat(using: client, datasets: datasets)
                    }
                    if let fetch, index < fetch.count {
                        group.addTask {
                            await self.fetchSignal.wait()
                            await self.fetchModel(fetch, using: client)
                            try await Task.sleep(for: .seconds(86_400))
                        }
                    }
                    // The session ended (or failed) before the phase did; the fetch task only
                    // ends when cancelled.
                    try await group.next()
                    group.cancelAll()
                }
            }
            if !Task.isCancelled { state.withLock { $0.lost += 1 } }
        } catch {
            if !Task.isCancelled {
                state.withLock {
                    $0.lost += 1
                    $0.failed("session \(index): \(error)")
                }
            }
        }
    }

    /// One session stream: Hello, then a heartbeat at every interval the Welcome names.
    private func heartbeat<Transport: ClientTransport>(
        using client: GRPCClient<Transport>, datasets: [String: Int]
    ) async throws {
        let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
        let (welcomes, welcomeSink) = AsyncStream.makeStream(of: Duration.self)
        try await sessions.session(
            requestProducer: { writer in
                var encoder = ParticipantEnvelopeEncoder()
                try await writer.write(try encoder.hello(ParticipantHello(datasets: datasets)))
                for await interval in welcomes {
                    let clock = ContinuousClock()
                    var beat = clock.now
                    while true {
                        beat += interval
                        try await clock.sleep(until: beat)
                        try await writer.write(encoder.heartbeat())
                        self.state.withLock { $0.heartbeatsSent += 1 }
                    }
                }
            },
            onResponse: { response in
                defer { welcomeSink.finish() }
                var decoder = CoordinatorEnvelopeDecoder()
                for try await envelope in response.messages {
                    guard case .welcome(let welcome) = try decoder.decode(envelope) else { continue }
                    self.state.withLock { $0.welcomed += 1 }
                    welcomeSink.yield(welcome.heartbeatInterval)
                }
            })
    }

    /// Fetches `fetch`'s model as a participant does: a window, credited back as chunks arrive.
    private func fetchModel<Transport: ClientTransport>(_ fetch: Fetch, using client: GRPCClient<Transport>) async {
        let started = ContinuousClock.now
        let store = Tessera_V1_ModelStore.Client(wrapping: client)
        do {
            let (credits, creditSink) = AsyncStream.makeStream(of: Int.self)
            let parameters = try await store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(.request(digest: fetch.digest, windowBytes: WireProtocol.modelWindowBytes))
                    for await bytes in credits { try await writer.write(.credit(bytes)) }
                },
                onResponse: { response in
                    defer { creditSink.finish() }
                    var assembler = ChunkAssembler.model(digest: fetch.digest, parameterCount: fetch.parameterCount)
                    var creditEvery = 0
                    var uncredited = 0
                    for try await chunk in response.messages {
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
            let elapsed = (ContinuousClock.now - started).inSeconds
            state.withLock {
                if parameters.count == fetch.parameterCount {
                    $0.fetchesCompleted += 1
                } else {
                    $0.fetchesFailed += 1
                    $0.failed("a fetch returned \(parameters.count) of \(fetch.parameterCount) parameters")
                }
                $0.slowestFetchSeconds = max($0.slowestFetchSeconds, elapsed)
            }
        } catch {
            state.withLock {
                $0.fetchesFailed += 1
                $0.failed("fetch: \(error)")
            }
        }
    }
}

/// A one-shot signal: ``wait()`` returns once ``open()`` has been called (at once after it), or
/// when the waiting task is cancelled.
final class Signal: Sendable {
    private struct State {
        var isOpen = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var isOpen: Bool { state.withLock { $0.isOpen } }

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.isOpen || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
