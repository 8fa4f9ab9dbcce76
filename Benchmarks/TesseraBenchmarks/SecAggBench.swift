import Dispatch
import Foundation
import Synchronization
import TesseraCrypto
import TesseraPKI
import TesseraSecAgg

/// The secure-aggregation benchmark of `tessera bench secagg`.
///
/// It measures, on this machine and in this run, the two primitives that bound the protocol
/// (AES-CTR mask expansion and X25519), then one round of classic SecAgg (complete graph,
/// n = 500, d = 100k) and of SecAgg+ (Harary graph, n = 1000), and reports every time against
///
/// - the **cost-model floor** (DESIGN.md): the keystream bytes the role must expand divided by
///   the measured single-core AES-CTR throughput, over all cores for the server (whose mask
///   removal is parallel) and one core for a client; and
/// - **Bonawitz et al. 2017** (CCS, Table/Fig. for 500 users and 100k-element vectors):
///   client ≈ 849 ms per round; server ≈ 2.0 s, 62 s and 143 s at 0%, 10% and 30% dropout.
///   Their hardware and implementation differ, so the ratio says how far the engineering moved,
///   not a like-for-like speed-up.
///
/// What is timed:
/// - **client**: one participant's whole round (AdvertiseKeys, ShareKeys, MaskedInput,
///   Unmasking, including encoding its messages and decoding the server's), for a
///   representative participant of a full round whose other participants were precomputed
///   untimed;
/// - **server**: everything the server does for the round (decoding and checking every
///   message, relaying shares, the running sum, Shamir reconstruction, mask removal on all
///   cores). The participants' work between the server's stages is not timed. Dropouts happen
///   after ShareKeys, the expensive case: each dropped participant's pairwise masks with every
///   surviving neighbour must be reconstructed and removed.
public enum SecAggBenchmark {
    /// Bonawitz et al. 2017, 500 users, 100k-element vectors.
    static let bonawitzClientMilliseconds = 849.0
    static let bonawitzServerMilliseconds: [Int: Double] = [0: 2_000, 10: 62_000, 30: 143_000]

    /// Runs the benchmark. `quick` shrinks the rounds (n = 100 / 200, d = 10k) for a smoke run
    /// whose figures are not comparable with full runs.
    public static func run(reporter: BenchReporter, quick: Bool) throws {
        reporter.section("Secure aggregation (SecAgg complete graph, SecAgg+ Harary graph)")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let aes = try CryptoBenchmark.measureAESCTR(reporter: reporter)
        let x25519 = try CryptoBenchmark.measureX25519(reporter: reporter)
        reporter.note(
            String(
                format: "cost-model floor: keystream bytes / %.2f GB/s per core, %d cores for the server", aes, cores))

        // MARK: SecAgg, complete graph
        let n = quick ? 100 : 500
        let d = quick ? 10_000 : 100_000
        // t = ⌊2n/3⌋ + 1: Bonawitz et al.'s threshold for the active setting; 30% dropout keeps 350 ≥ 334.
        let threshold = 2 * n / 3 + 1
        reporter.note(
            "SecAgg: n = \(n), d = \(d) words, complete graph, t = \(threshold); precomputing the other participants (untimed)…"
        )
        let complete = try RoundFixture(participants: n, length: d, graph: .complete, threshold: threshold, seed: 11)

        // MARK: The client in the active setting, against the semi-honest client
        // The active fixture's verification keys are those of n signing certificates issued by an
        // in-memory federation CA, the certificates a site checks once per round.
        let ed25519 = try CryptoBenchmark.measureEd25519(reporter: reporter)
        let now = Date()
        let authority = try EphemeralFederationCA(name: "Tessera benchmark CA (in memory)")
        let credentials = try (1...n).map { index in
            try authority.issueSigningCredential(
                site: "site-\(index)", notValidBefore: now - 86_400, notValidAfter: now + 86_400)
        }
        let validator = authority.signingValidator()
        let roster = try credentials.map { try validator.validateNow(derEncoded: $0.certificateDER, at: now) }
        reporter.note("SecAgg, active setting: the same n, d and t, every key signed; precomputing (untimed)…")
        let active = try RoundFixture(
            participants: n, length: d, graph: .complete, threshold: threshold, seed: 11,
            signingKeys: credentials.map { try Ed25519PrivateKey(seed: $0.ed25519Seed) },
            verificationKeys: roster.map { try Ed25519PublicKey(rawRepresentation: $0.ed25519PublicKey) })

        // Interleaved: semi-honest client, active client, roster check, and again; each ratio is
        // taken within one triple, so a change of the machine's speed between triples cancels.
        let triples = quick ? 3 : 7
        _ = try complete.timeClientRound()
        _ = try active.timeClientRound()
        var semiHonestRuns: [Double] = []
        var activeRuns: [Double] = []
        var rosterRuns: [Double] = []
        for _ in 0..<triples {
            semiHonestRuns.append(try complete.timeClientRound())
            activeRuns.append(try active.timeClientRound())
            rosterRuns.append(
                try BenchClock.seconds {
                    for credential in credentials {
                        _ = try validator.validateNow(derEncoded: credential.certificateDER, at: now)
                    }
                })
        }
        let clientSeconds = semiHonestRuns.min() ?? .nan
        let activeSeconds = activeRuns.min() ?? .nan
        let rosterSeconds = rosterRuns.min() ?? .nan
        let clientFloor = Double(n * d * 4) / (aes * 1e9)  // n − 1 pairwise masks + 1 self mask, one core
        reporter.figure(
            "secagg_client_ms", clientSeconds * 1000, unit: "ms",
            label: "SecAgg client, one round (n = \(n), d = \(d), best of \(triples))"
        )
        reporter.note(
            ratios(seconds: clientSeconds, floor: clientFloor, bonawitzMs: quick ? nil : bonawitzClientMilliseconds))
        reporter.note(
            String(
                format: "  client X25519 work alone: %.1f ms (2(n−1) agreements at %.0f ops/s)",
                Double(2 * (n - 1)) / x25519 * 1000, x25519))
        reporter.figure(
            "secagg_client_ms_active", activeSeconds * 1000, unit: "ms",
            label: "SecAgg client, active setting, one round (best of \(triples))")
        reporter.figure(
            "secagg_client_active_vs_semihonest", BenchClock.median(zip(activeRuns, semiHonestRuns).map { $0 / $1 }),
            unit: "x",
            label: "  / semi-honest client (median of \(triples) interleaved pairs)")
        // The active client signs twice and verifies its n − 1 neighbours' advertised keys, then the
        // survivor-list signatures of its n holders (itself included, on the complete graph).
        let verifications = 2 * n - 1
        reporter.note(
            String(
                format: "  its signature work alone: %.1f ms (%d Ed25519 verifications at %.0f/s, 2 signatures)",
                (Double(verifications) / ed25519.verify + 2 / ed25519.sign) * 1000, verifications, ed25519.verify))
        reporter.figure(
            "secagg_roster_verify_ms", rosterSeconds * 1000, unit: "ms",
            label: "the roster's \(n) signing certificates checked (validateNow, best of \(triples))")
        reporter.note(
            String(
                format: "  %.0f µs per certificate (chain signature, validity, profile, site name, revocation)",
                rosterSeconds / Double(n) * 1e6))
        reporter.figure(
            "secagg_roster_verify_vs_semihonest", BenchClock.median(zip(rosterRuns, semiHonestRuns).map { $0 / $1 }),
            unit: "x",
            label: "  / semi-honest client round (median of \(triples) interleaved runs)")
        reporter.figure(
            "secagg_client_active_with_roster_vs_semihonest",
            BenchClock.median((0..<triples).map { (activeRuns[$0] + rosterRuns[$0]) / semiHonestRuns[$0] }), unit: "x",
            label: "active client + roster check / semi-honest client (median)")

        var floorRatio30 = 0.0
        for percent in [0, 10, 30] {
            let run = try complete.timeServer(dropPercent: percent, workers: cores)
            let floor = Double(run.statistics.keystreamWords * 4) / (aes * 1e9 * Double(cores))
            reporter.figure(
                "secagg_server_ms_drop\(percent)", run.seconds * 1000, unit: "ms",
                label: "SecAgg server, \(percent)% dropout (n = \(n), d = \(d))")
            reporter.note(
                ratios(
                    seconds: run.seconds, floor: floor, bonawitzMs: quick ? nil : bonawitzServerMilliseconds[percent]))
            reporter.note(describe(run))
            if percent == 30 { floorRatio30 = run.seconds / floor }
        }
        reporter.figure(
            "secagg_server_vs_floor_drop30", floorRatio30, unit: "x",
            label: "SecAgg server at 30% dropout / cost-model floor")

        // MARK: A participant's stochastic rounding with the system CSPRNG
        // One random word per coordinate: the reference is generating those bytes as AES-CTR
        // keystream at the rate measured above.
        let coordinates = quick ? 100_000 : 1_000_000
        let codec = try QuantizationCodec(clip: 1, bits: 16, maxWeight: 1_000, maxInputs: 100)
        let update = (0..<coordinates).map { Float(sin(Double($0) * 0.61)) * 0.05 }
        var secure = SecureRandomGenerator()
        var quantizeSeconds = Double.infinity
        for _ in 0..<5 {
            let start = ContinuousClock.now
            let encoded = try codec.encode(update, weight: 500, using: &secure)
            quantizeSeconds = min(quantizeSeconds, seconds(ContinuousClock.now - start))
            precondition(encoded.count == coordinates + 1)
        }
        let randomFloor = Double(coordinates * 8) / (aes * 1e9)
        reporter.figure(
            "secagg_quantize_ms", quantizeSeconds * 1000, unit: "ms",
            label:
                "quantizing a \(coordinates)-coordinate update, stochastic rounding from the system CSPRNG (best of 5)")
        reporter.figure(
            "secagg_quantize_vs_keystream_floor", quantizeSeconds / randomFloor, unit: "x",
            label: "  / its random words as AES-CTR keystream (\(String(format: "%.2f", randomFloor * 1000)) ms)")
        let wordStart = ContinuousClock.now
        var sink: UInt64 = 0
        for _ in 0..<coordinates { sink &+= secure.next() }
        reporter.note(
            String(
                format: "  the same words drawn one next() at a time: %.1f ms (the encoder draws blocks of 4096)",
                seconds(ContinuousClock.now - wordStart) * 1000) + (sink == 0 ? " " : ""))

        // MARK: SecAgg+, Harary graph
        let plusN = quick ? 200 : 1000
        let parameters = try SecAggParameterFinder.find(cohortSize: plusN, dropoutRate: 0.33, corruptionRate: 0.05)
        reporter.note(
            "SecAgg+: n = \(plusN), d = \(d), finder (α = 0.05, δ = 0.33) → k = \(parameters.degree), t = \(parameters.threshold); "
                + "precomputing (untimed)…")
        let plus = try RoundFixture(
            participants: plusN, length: d, graph: parameters.graphKind(seed: Array("bench-secagg-plus".utf8)),
            threshold: parameters.threshold, seed: 12)
        let plusClient = try plus.timeRepresentativeClient()
        let plusClientFloor = Double((parameters.degree + 1) * d * 4) / (aes * 1e9)
        reporter.figure(
            "secaggplus_client_ms_n\(plusN)", plusClient * 1000, unit: "ms",
            label: "SecAgg+ client, one round (n = \(plusN), k = \(parameters.degree))")
        reporter.note(
            ratios(seconds: plusClient, floor: plusClientFloor, bonawitzMs: quick ? nil : bonawitzClientMilliseconds))
        let plusRun = try plus.timeServer(dropPercent: 30, workers: cores)
        let plusFloor = Double(plusRun.statistics.keystreamWords * 4) / (aes * 1e9 * Double(cores))
        reporter.figure(
            "secaggplus_server_ms_n\(plusN)_drop30", plusRun.seconds * 1000, unit: "ms",
            label: "SecAgg+ server, 30% dropout (n = \(plusN), k = \(parameters.degree))")
        reporter.note(
            ratios(seconds: plusRun.seconds, floor: plusFloor, bonawitzMs: quick ? nil : bonawitzServerMilliseconds[30])
        )
        reporter.note(describe(plusRun))

        // MARK: Parameter finder
        reporter.note("SecAgg+ parameters (k, t) for σ = 40, η = 20, semi-honest server:")
        for cohort in [100, 1000, 10_000, 1_000_000] {
            for (alpha, delta) in [(0.05, 0.33), (0.33, 0.05), (0.33, 0.33)] {
                let key = "secaggplus_params_n\(cohort)_a\(alpha)_d\(delta)"
                let label = "finder n = \(cohort), α = \(alpha), δ = \(delta) → k,t"
                do {
                    let found = try SecAggParameterFinder.find(
                        cohortSize: cohort, dropoutRate: delta, corruptionRate: alpha)
                    reporter.figure(key, text: found.description, label: label)
                } catch {
                    reporter.figure(key, text: "infeasible", label: label)
                }
            }
        }
    }

    static func ratios(seconds: Double, floor: Double, bonawitzMs: Double?) -> String {
        var text = String(format: "  %.2fx the cost-model floor (%.1f ms)", seconds / floor, floor * 1000)
        if let bonawitzMs {
            text += String(format: "; %.3fx Bonawitz et al. 2017 (%.0f ms)", seconds * 1000 / bonawitzMs, bonawitzMs)
        }
        return text
    }

    static func describe(_ run: RoundFixture.ServerRun) -> String {
        let s = run.statistics
        return String(
            format:
                "  %d secrets rebuilt in %.0f ms; %d self + %d pair masks (%.1f GB keystream) removed in %.0f ms; other server work %.0f ms",
            s.secretsReconstructed, seconds(s.reconstructionTime) * 1000, s.selfMasksRemoved, s.pairMasksRemoved,
            Double(s.keystreamWords * 4) / 1e9, seconds(s.maskRemovalTime) * 1000,
            (run.seconds - seconds(s.reconstructionTime) - seconds(s.maskRemovalTime)) * 1000)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// One precomputed round: every participant's messages up to the masked inputs, and the server's
/// requests of the later stages, so that a single client or the server can be timed alone.
struct RoundFixture {
    let configuration: SecAggConfiguration
    let ids: [UInt32]
    let inputs: [[UInt32]]
    /// Client states before AdvertiseKeys (to re-run one client, timed) and after masking (to
    /// answer the unmasking requests of each dropout scenario).
    let freshClients: [SecAggClient]
    let maskedClients: [SecAggClient]
    let advertise: [[UInt8]]
    let shareKeysRequests: [[UInt8]]
    let shareKeys: [[UInt8]]
    let maskedInputRequests: [[UInt8]]
    let maskedInputs: [[UInt8]]
    /// The server's ConsistencyCheck requests (active setting; empty otherwise) and Unmasking
    /// requests when every participant survives, by participant.
    let consistencyCheckRequests: [[UInt8]]
    let unmaskingRequests: [[UInt8]]

    struct ServerRun {
        var seconds: Double
        var statistics: UnmaskingStatistics
    }

    /// The round of `n` participants with ids 1…n. With `signingKeys` and `verificationKeys`
    /// (participant `i`'s at index `i − 1`), it runs in the active setting.
    init(
        participants n: Int, length d: Int, graph: NeighbourGraph.Kind, threshold: Int, seed: UInt64,
        signingKeys: [Ed25519PrivateKey]? = nil, verificationKeys: [Ed25519PublicKey]? = nil
    ) throws {
        let ids = (1...UInt32(n)).map { $0 }
        var securityMode = SecAggConfiguration.SecurityMode.semiHonest
        if let verificationKeys {
            securityMode = .active(verificationKeys: Dictionary(uniqueKeysWithValues: zip(ids, verificationKeys)))
        }
        let configuration = try SecAggConfiguration(
            roundID: seed, participants: ids, graph: graph, threshold: threshold, vectorLength: d,
            securityMode: securityMode)
        var inputGenerator = DeterministicGenerator(seed: seed)
        let inputs = ids.map { _ in (0..<d).map { _ in UInt32(truncatingIfNeeded: inputGenerator.next()) } }
        let fresh = try ids.map { id in
            var generator = DeterministicGenerator(seed: seed &+ UInt64(id) &* 7919)
            return try SecAggClient(
                id: id, configuration: configuration, signingKey: signingKeys?[Int(id) - 1], using: &generator)
        }
        var clients = fresh
        var server = SecAggServer(configuration: configuration)

        var advertise: [[UInt8]] = []
        for index in clients.indices {
            let bytes = SecAggMessage.advertiseKeys(try clients[index].advertiseKeys()).encoded()
            try server.receive(bytes, from: ids[index])
            advertise.append(bytes)
        }
        let shareKeysRequests = try Self.requestBytes(server.closeStage(), ids: ids)
        let shareKeys = try Self.parallelMap(&clients) { index, client in
            var generator = DeterministicGenerator(seed: seed ^ UInt64(index))
            guard case .shareKeysRequest(let request) = try SecAggMessage.decode(shareKeysRequests[index]) else {
                throw SecAggError(code: .malformedMessage, message: "bench: expected a ShareKeys request")
            }
            return SecAggMessage.shareKeys(try client.shareKeys(request, using: &generator)).encoded()
        }
        for index in ids.indices { try server.receive(shareKeys[index], from: ids[index]) }
        let maskedInputRequests = try Self.requestBytes(server.closeStage(), ids: ids)
        let maskedInputs = try Self.parallelMap(&clients) { index, client in
            guard case .maskedInputRequest(let request) = try SecAggMessage.decode(maskedInputRequests[index]) else {
                throw SecAggError(code: .malformedMessage, message: "bench: expected a MaskedInput request")
            }
            return SecAggMessage.maskedInput(try client.maskedInput(request, input: inputs[index])).encoded()
        }
        for index in ids.indices { try server.receive(maskedInputs[index], from: ids[index]) }
        // The active setting's ConsistencyCheck comes between MaskedInput and Unmasking.
        let afterMaskedInput = try Self.requestBytes(server.closeStage(), ids: ids)
        var consistencyCheckRequests: [[UInt8]] = []
        var unmaskingRequests = afterMaskedInput
        if configuration.securityMode.isActive {
            let signatures = try Self.parallelMap(&clients) { index, client in
                var generator = DeterministicGenerator(seed: 1)
                return try client.respond(
                    to: try SecAggMessage.decode(afterMaskedInput[index]), input: [], using: &generator
                ).encoded()
            }
            for index in ids.indices { try server.receive(signatures[index], from: ids[index]) }
            consistencyCheckRequests = afterMaskedInput
            unmaskingRequests = try Self.requestBytes(server.closeStage(), ids: ids)
        }

        self.configuration = configuration
        self.ids = ids
        self.inputs = inputs
        self.freshClients = fresh
        self.maskedClients = clients
        self.advertise = advertise
        self.shareKeysRequests = shareKeysRequests
        self.shareKeys = shareKeys
        self.maskedInputRequests = maskedInputRequests
        self.maskedInputs = maskedInputs
        self.consistencyCheckRequests = consistencyCheckRequests
        self.unmaskingRequests = unmaskingRequests
    }

    /// Best of three ``timeClientRound()``.
    func timeRepresentativeClient() throws -> Double {
        var best = Double.infinity
        for _ in 0..<3 { best = min(best, try timeClientRound()) }
        return best
    }

    /// Participant 1's whole round, once, with its messages encoded and the server's requests
    /// decoded, as it would run on a site: in the active setting that includes signing its keys
    /// and the survivor list and verifying its peers' signatures.
    func timeClientRound() throws -> Double {
        let requests =
            [shareKeysRequests[0], maskedInputRequests[0]] + consistencyCheckRequests.prefix(1) + [unmaskingRequests[0]]
        var sink = 0
        let seconds = try BenchClock.seconds {
            var client = freshClients[0]
            var generator = DeterministicGenerator(seed: 99)
            sink &+= SecAggMessage.advertiseKeys(try client.advertiseKeys()).encoded().count
            for request in requests {
                let answer = try client.respond(
                    to: try SecAggMessage.decode(request), input: inputs[0], using: &generator)
                sink &+= answer.encoded().count
            }
            guard client.progress == .finished else {
                throw SecAggError(code: .roundAborted, message: "bench: participant 1 did not finish its round")
            }
        }
        precondition(sink > 0)
        return seconds
    }

    /// The server's time for a round in which `dropPercent`% of the participants (a fixed
    /// pseudo-random choice) drop after ShareKeys. Checks the result against the plain sum.
    func timeServer(dropPercent: Int, workers: Int) throws -> ServerRun {
        let n = ids.count
        var chooser = DeterministicGenerator(seed: UInt64(dropPercent) &+ 1000)
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(chooser.next(below: UInt64(i + 1)))) }
        let dropped = Set(order.prefix(n * dropPercent / 100))
        let clock = ContinuousClock()

        var server = SecAggServer(configuration: configuration, workerCount: workers)
        var start = clock.now
        for index in 0..<n { try server.receive(advertise[index], from: ids[index]) }
        _ = try server.closeStage()
        for index in 0..<n { try server.receive(shareKeys[index], from: ids[index]) }
        _ = try server.closeStage()
        for index in 0..<n where !dropped.contains(index) { try server.receive(maskedInputs[index], from: ids[index]) }
        guard case .requests(let requests) = try server.closeStage() else {
            throw SecAggError(code: .roundAborted, message: "bench: the server did not open Unmasking")
        }
        let requestBytes = requests.map { ($0.recipient, $0.encoded()) }
        var elapsed = clock.now - start

        // The survivors answer (untimed: participant work).
        var responses: [(UInt32, [UInt8])] = []
        for (recipient, bytes) in requestBytes {
            var client = maskedClients[Int(recipient) - 1]
            var generator = DeterministicGenerator(seed: 1)
            let answer = try client.respond(to: try SecAggMessage.decode(bytes), input: [], using: &generator)
            responses.append((recipient, answer.encoded()))
        }

        start = clock.now
        for (sender, bytes) in responses { try server.receive(bytes, from: sender) }
        guard case .finished(let result) = try server.closeStage() else {
            throw SecAggError(code: .roundAborted, message: "bench: the round did not finish")
        }
        elapsed += clock.now - start

        var expected = [UInt32](repeating: 0, count: configuration.vectorLength)
        for index in 0..<n where !dropped.contains(index) {
            for i in expected.indices { expected[i] = expected[i] &+ inputs[index][i] }
        }
        guard result.sum == expected else {
            throw SecAggError(
                code: .reconstructionFailed, message: "bench: the unmasked sum is wrong at \(dropPercent)% dropout")
        }
        return ServerRun(seconds: SecAggBenchmark.seconds(elapsed), statistics: result.statistics)
    }

    static func requestBytes(_ step: SecAggServer.Step, ids: [UInt32]) throws -> [[UInt8]] {
        guard case .requests(let requests) = step else {
            throw SecAggError(code: .roundAborted, message: "bench: expected requests")
        }
        var byRecipient: [UInt32: [UInt8]] = [:]
        for request in requests { byRecipient[request.recipient] = request.encoded() }
        return try ids.map { id in
            guard let bytes = byRecipient[id] else {
                throw SecAggError(code: .roundAborted, message: "bench: no request for participant \(id)")
            }
            return bytes
        }
    }

    /// Untimed setup on all cores: `body(index, &clients[index])` for every client.
    static func parallelMap(
        _ clients: inout [SecAggClient], _ body: @Sendable (Int, inout SecAggClient) throws -> [UInt8]
    ) throws -> [[UInt8]] {
        let state = Mutex<(clients: [SecAggClient], output: [[UInt8]], error: (any Error)?)>(
            (clients, Array(repeating: [], count: clients.count), nil))
        let next = Atomic<Int>(0)
        let count = clients.count
        DispatchQueue.concurrentPerform(iterations: ProcessInfo.processInfo.activeProcessorCount) { _ in
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                var client = state.withLock { $0.clients[index] }
                do {
                    let bytes = try body(index, &client)
                    state.withLock {
                        $0.clients[index] = client
                        $0.output[index] = bytes
                    }
                } catch {
                    state.withLock { $0.error = $0.error ?? error }
                    return
                }
            }
        }
        let (finalClients, output, error) = state.withLock { ($0.clients, $0.output, $0.error) }
        if let error { throw error }
        clients = finalClients
        return output
    }
}
