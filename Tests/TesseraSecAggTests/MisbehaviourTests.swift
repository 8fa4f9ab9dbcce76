import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// A small round with hooks, for the misbehaviour tests.
struct Scenario {
    var ids = Fixture.roster(6)
    var threshold = 3
    var kind: NeighbourGraph.Kind = .complete
    var active = false
    var dropouts = SecAggSimulation.DropoutSchedule()
    var clientToServer: SecAggSimulation.Interceptor?
    var serverToClient: SecAggSimulation.Interceptor?
    var prepareAhead = false
    let length = 8

    var inputs: [UInt32: [UInt32]] { Fixture.randomInputs(ids, length: length, seed: 99) }
    var keys: [UInt32: Ed25519PrivateKey] { active ? Fixture.signingKeys(ids, seed: 98) : [:] }

    func configuration() throws -> SecAggConfiguration {
        try SecAggConfiguration(
            roundID: 500, participants: ids, graph: kind, threshold: threshold, vectorLength: length,
            securityMode: active ? Fixture.activeMode(keys) : .semiHonest)
    }

    func run() throws -> SecAggSimulation.Outcome {
        var simulation = SecAggSimulation(
            configuration: try configuration(), dropouts: dropouts, signingKeys: keys, seed: 97)
        simulation.clientToServer = clientToServer
        simulation.serverToClient = serverToClient
        simulation.prepareAhead = prepareAhead
        return simulation.run(inputs: inputs)
    }

    /// Checks that the round still produced exactly the sum of `survivors`' inputs.
    func expectSum(
        _ outcome: SecAggSimulation.Outcome, of survivors: [UInt32], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard case .success(let result) = outcome.result else {
            Issue.record("the round should have finished: \(outcome.result)", sourceLocation: sourceLocation)
            return
        }
        #expect(result.survivors == survivors, sourceLocation: sourceLocation)
        let inputs = self.inputs
        #expect(
            result.sum == Fixture.wrappingSum(survivors.map { inputs[$0]! }, length: length),
            sourceLocation: sourceLocation)
    }
}

/// Rewrites the message of `participant` in `stage` (either direction).
func rewrite(
    _ stage: SecAggStage, _ participant: UInt32, _ change: @escaping (SecAggMessage) -> [SecAggMessage]
) -> SecAggSimulation.Interceptor {
    { messageStage, who, bytes in
        guard messageStage == stage, who == participant, let message = try? SecAggMessage.decode(bytes) else {
            return [bytes]
        }
        return change(message).map { $0.encoded() }
    }
}

/// The single recorded server error.
func onlyError(_ outcome: SecAggSimulation.Outcome, sourceLocation: SourceLocation = #_sourceLocation) -> SecAggError? {
    #expect(outcome.serverMisbehaviour.count == 1, "\(outcome.serverMisbehaviour)", sourceLocation: sourceLocation)
    return outcome.serverMisbehaviour.first
}

@Suite("Server-side misbehaviour: typed error, offender dropped, round goes on")
struct ServerMisbehaviourTests {
    @Test("A message for another stage")
    func outOfStage() throws {
        var s = Scenario()
        let p = s.ids[2]
        s.clientToServer = rewrite(.advertiseKeys, p) { message in
            [
                message,
                .maskedInput(
                    MaskedInputMessage(roundID: 500, sender: p, maskedInput: [UInt32](repeating: 0, count: 8))),
            ]
        }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .unexpectedStage && error?.participant == p && error?.stage == .advertiseKeys)
        #expect(error?.roundID == 500)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("A duplicate message before anything irreversible: the sender leaves the stage")
    func duplicateAdvertise() throws {
        var s = Scenario()
        let p = s.ids[0]
        s.clientToServer = rewrite(.advertiseKeys, p) { [$0, $0] }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .duplicateMessage && error?.participant == p && error?.stage == .advertiseKeys)
        #expect(outcome.stageSurvivors[.advertiseKeys]?.contains(p) == false)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("A duplicate masked input: the first one stays summed, the sender takes no further part")
    func duplicateMaskedInput() throws {
        var s = Scenario()
        let p = s.ids[3]
        s.clientToServer = rewrite(.maskedInputCollection, p) { [$0, $0] }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .duplicateMessage && error?.participant == p && error?.stage == .maskedInputCollection)
        #expect(outcome.stageSurvivors[.unmasking]?.contains(p) == false)
        s.expectSum(outcome, of: s.ids)  // p's input counted once, its self mask rebuilt from the others' shares
    }

    @Test("Unknown senders and forged sender fields")
    func unknownAndForgedSenders() throws {
        let s = Scenario()
        var server = SecAggServer(configuration: try s.configuration())
        let stranger = AdvertiseKeysMessage(
            roundID: 500, sender: 999,
            keys: AdvertisedKeys(
                participant: 999, encryptionKey: [UInt8](repeating: 9, count: 32),
                maskingKey: [UInt8](repeating: 9, count: 32)))
        let unknown = #expect(throws: SecAggError.self) {
            try server.receive(SecAggMessage.advertiseKeys(stranger).encoded(), from: 999)
        }
        #expect(unknown?.code == .unknownParticipant && unknown?.participant == 999 && unknown?.stage == .advertiseKeys)
        // A roster member sending a message that claims another sender.
        let forged = #expect(throws: SecAggError.self) { try server.receive(.advertiseKeys(stranger), from: s.ids[1]) }
        #expect(forged?.code == .senderMismatch && forged?.participant == s.ids[1] && forged?.stage == .advertiseKeys)
        #expect(server.excluded == [s.ids[1]])
    }

    @Test("Shares addressed to someone other than the sender's neighbours")
    func invalidRecipient() throws {
        var s = Scenario()
        s.ids = Fixture.roster(12)
        s.kind = .harary(degree: 4, seed: [3])
        s.threshold = 2
        let graph = try s.configuration().graph
        let p = s.ids[5]
        let stranger = s.ids.first { $0 != p && !graph.areNeighbours(p, $0) }!
        for target in [stranger, p, 7777] {
            s.clientToServer = rewrite(.shareKeys, p) { message in
                guard case .shareKeys(var m) = message else { return [message] }
                m.shares[0].peer = target
                return [.shareKeys(m)]
            }
            let outcome = try s.run()
            let error = onlyError(outcome)
            #expect(
                error?.code == .invalidRecipient && error?.participant == p && error?.stage == .shareKeys,
                "target \(target)")
            s.expectSum(outcome, of: s.ids.filter { $0 != p })
        }
    }

    @Test("Malformed (wrong-size) and missing encrypted shares")
    func malformedAndMissingShares() throws {
        var s = Scenario()
        let p = s.ids[1]
        s.clientToServer = rewrite(.shareKeys, p) { message in
            guard case .shareKeys(var m) = message else { return [message] }
            m.shares[2].ciphertext.removeLast()
            return [.shareKeys(m)]
        }
        var outcome = try s.run()
        var error = onlyError(outcome)
        #expect(error?.code == .malformedCiphertext && error?.participant == p && error?.stage == .shareKeys)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })

        s.clientToServer = rewrite(.shareKeys, p) { message in
            guard case .shareKeys(var m) = message else { return [message] }
            m.shares.removeFirst()
            return [.shareKeys(m)]
        }
        outcome = try s.run()
        error = onlyError(outcome)
        #expect(error?.code == .missingShare && error?.participant == p && error?.stage == .shareKeys)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("A masked input of the wrong length: the sender counts as dropped and its pair masks are removed")
    func wrongVectorLength() throws {
        var s = Scenario()
        let p = s.ids[4]
        s.clientToServer = rewrite(.maskedInputCollection, p) { message in
            guard case .maskedInput(var m) = message else { return [message] }
            m.maskedInput.removeLast()
            return [.maskedInput(m)]
        }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .wrongVectorLength && error?.participant == p && error?.stage == .maskedInputCollection)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
        if case .success(let result) = outcome.result { #expect(result.dropped == [p]) }
    }

    @Test("A message from another round")
    func wrongRound() throws {
        var s = Scenario()
        let p = s.ids[5]
        s.clientToServer = rewrite(.shareKeys, p) { message in
            guard case .shareKeys(var m) = message else { return [message] }
            m.roundID = 499
            return [.shareKeys(m)]
        }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .wrongRound && error?.participant == p && error?.stage == .shareKeys)
        #expect(error?.message.contains("499") == true)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("Garbage bytes")
    func garbage() throws {
        var s = Scenario()
        let p = s.ids[0]
        s.clientToServer = { stage, who, bytes in
            stage == .maskedInputCollection && who == p ? [Array("definitely not a message".utf8)] : [bytes]
        }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .malformedMessage && error?.participant == p && error?.stage == .maskedInputCollection)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("Advertised keys with a bad signature (active) or a low-order point")
    func badKeys() throws {
        var s = Scenario()
        s.active = true
        let p = s.ids[2]
        s.clientToServer = rewrite(.advertiseKeys, p) { message in
            guard case .advertiseKeys(var m) = message else { return [message] }
            // The server substituting a key, or a participant lying: the signature no longer matches.
            m.keys.maskingKey[0] ^= 1
            return [.advertiseKeys(m)]
        }
        var outcome = try s.run()
        var error = onlyError(outcome)
        #expect(error?.code == .invalidSignature && error?.participant == p && error?.stage == .advertiseKeys)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })

        s.active = false
        s.clientToServer = rewrite(.advertiseKeys, p) { message in
            guard case .advertiseKeys(var m) = message else { return [message] }
            // A low-order point: the "shared secret" would be known to everyone.
            m.keys.maskingKey = [UInt8](repeating: 0, count: 32)
            return [.advertiseKeys(m)]
        }
        outcome = try s.run()
        error = onlyError(outcome)
        #expect(error?.code == .invalidPublicKey && error?.participant == p && error?.stage == .advertiseKeys)
        s.expectSum(outcome, of: s.ids.filter { $0 != p })
    }

    @Test("Unrequested or misattributed shares in an unmasking response")
    func invalidUnmaskingShares() throws {
        var s = Scenario()
        let p = s.ids[1]
        s.clientToServer = rewrite(.unmasking, p) { message in
            guard case .unmaskingResponse(var m) = message else { return [message] }
            m.selfMaskShares[0].share.x = s.ids[2]  // claims another holder's evaluation point
            return [.unmaskingResponse(m)]
        }
        var outcome = try s.run()
        var error = onlyError(outcome)
        #expect(error?.code == .invalidShare && error?.participant == p && error?.stage == .unmasking)
        s.expectSum(outcome, of: s.ids)

        // A key share for a survivor: together with its self-mask share it would unmask that survivor.
        s.clientToServer = rewrite(.unmasking, p) { message in
            guard case .unmaskingResponse(var m) = message else { return [message] }
            m.keyShares.append(m.selfMaskShares[0])
            return [.unmaskingResponse(m)]
        }
        outcome = try s.run()
        error = onlyError(outcome)
        #expect(error?.code == .invalidShare && error?.participant == p && error?.stage == .unmasking)
        s.expectSum(outcome, of: s.ids)
    }

    @Test("Too few survivors: a clean abort naming the stage and the count, after which nothing is accepted")
    func tooFewSurvivors() throws {
        var s = Scenario()
        s.threshold = 5
        s.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [.maskedInputCollection: [s.ids[0], s.ids[1]]])
        let outcome = try s.run()
        guard case .failure(let error) = outcome.result else {
            Issue.record("expected an abort")
            return
        }
        #expect(error.code == .tooFewSurvivors && error.stage == .maskedInputCollection && error.participant == nil)
        #expect(error.message.contains("4 participants") && error.message.contains("t = 5"))

        var server = SecAggServer(configuration: try s.configuration())
        #expect(throws: SecAggError.self) { _ = try server.closeStage() }  // nobody advertised: 0 < 5
        let late = #expect(throws: SecAggError.self) {
            try server.receive(
                .maskedInput(MaskedInputMessage(roundID: 500, sender: s.ids[0], maskedInput: [])), from: s.ids[0])
        }
        #expect(late?.code == .roundAborted)
    }

    @Test("SecAgg+: a neighbourhood that falls below t aborts, naming the participant")
    func neighbourhoodBelowThreshold() throws {
        var s = Scenario()
        s.ids = Fixture.roster(14)
        s.kind = .harary(degree: 4, seed: [8])
        s.threshold = 4
        let graph = try s.configuration().graph
        let victim = s.ids[6]
        let lost = Array(graph.neighbours(of: victim).prefix(2))
        s.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [.shareKeys: Set(lost)])
        let outcome = try s.run()
        guard case .failure(let error) = outcome.result else {
            Issue.record("expected an abort")
            return
        }
        #expect(error.code == .tooFewSurvivors && error.stage == .shareKeys)
        let named = try #require(error.participant)
        let alive = Set(s.ids).subtracting(lost)
        #expect(graph.holders(of: named).filter(alive.contains).count < 4)
        #expect(
            Fixture.expectedAbortStage(graph: graph, threshold: 4, dropouts: s.dropouts, active: false) == .shareKeys)
    }
}

@Suite("Client-side checks and refusals")
struct ClientRefusalTests {
    @Test("A tampered ciphertext is rejected by its recipient, which then holds no share of the sender")
    func tamperedCiphertext() throws {
        var s = Scenario()
        let p = s.ids[0]
        let q = s.ids[3]
        s.clientToServer = rewrite(.shareKeys, p) { message in
            guard case .shareKeys(var m) = message, let index = m.shares.firstIndex(where: { $0.peer == q }) else {
                return [message]
            }
            m.shares[index].ciphertext[40] ^= 0x20
            return [.shareKeys(m)]
        }
        let outcome = try s.run()
        #expect(outcome.serverMisbehaviour.isEmpty)  // the server cannot see inside a well-sized ciphertext
        let rejected = outcome.rejectedShares[q] ?? []
        #expect(rejected.count == 1)
        #expect(rejected.first?.code == .shareDecryptionFailed && rejected.first?.participant == p)
        #expect(rejected.first?.stage == .maskedInputCollection)
        s.expectSum(outcome, of: s.ids)  // the other holders still suffice
    }

    @Test("A share relayed to the wrong participant fails to open (the AEAD binds sender and recipient)")
    func misroutedShare() throws {
        var s = Scenario()
        let q = s.ids[2]
        s.serverToClient = rewrite(.maskedInputCollection, q) { message in
            guard case .maskedInputRequest(var m) = message else { return [message] }
            let first = m.shares[0].ciphertext
            m.shares[0].ciphertext = m.shares[1].ciphertext
            m.shares[1].ciphertext = first
            return [.maskedInputRequest(m)]
        }
        let outcome = try s.run()
        let rejected = outcome.rejectedShares[q] ?? []
        #expect(rejected.map(\.code) == [.shareDecryptionFailed, .shareDecryptionFailed])
        #expect(Set(rejected.compactMap(\.participant)).count == 2)
        s.expectSum(outcome, of: s.ids)
    }

    /// Runs a scenario whose unmasking request to `q` is rewritten, and returns `q`'s error.
    func refusal(
        _ s: inout Scenario, to q: UInt32, _ change: @escaping (inout UnmaskingRequest) -> Void
    ) throws -> SecAggError? {
        s.serverToClient = rewrite(.unmasking, q) { message in
            guard case .unmaskingRequest(var m) = message else { return [message] }
            change(&m)
            return [.unmaskingRequest(m)]
        }
        let outcome = try s.run()
        return outcome.clientErrors[q]
    }

    @Test("A request for both the self-mask share and the key share of one peer is refused")
    func bothSharesOfOnePeer() throws {
        var s = Scenario()
        let q = s.ids[1]
        let peer = s.ids[4]
        let error = try refusal(&s, to: q) { request in
            request.dropped = (request.dropped + [peer]).sorted()
        }
        #expect(error?.code == .inconsistentRequest && error?.participant == peer && error?.stage == .unmasking)
    }

    @Test("Inconsistent survivor lists are refused")
    func inconsistentSurvivors() throws {
        var s = Scenario()
        let q = s.ids[1]
        // Omitting the participant itself.
        var error = try refusal(&s, to: q) { $0.survivors.removeAll { $0 == q } }
        #expect(error?.code == .inconsistentRequest && error?.participant == q && error?.stage == .unmasking)
        // Naming as survivor a neighbour that never shared keys.
        let ghost = s.ids[5]
        s.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [.shareKeys: [ghost]])
        error = try refusal(&s, to: q) { $0.survivors = ($0.survivors + [ghost]).sorted() }
        #expect(error?.code == .inconsistentRequest && error?.participant == ghost)
        // Naming as dropped a participant that is not a neighbour who shared keys.
        error = try refusal(&s, to: q) { $0.dropped = [ghost] }
        #expect(error?.code == .inconsistentRequest && error?.participant == ghost)
        // Too few survivors to be safe.
        s.dropouts = SecAggSimulation.DropoutSchedule()
        error = try refusal(&s, to: q) { $0.survivors = [q, $0.survivors.first { $0 != q }!].sorted() }
        #expect(error?.code == .tooFewSurvivors && error?.participant == q && error?.stage == .unmasking)
    }

    @Test("Active setting: a survivor list other than the signed one, or forged signatures, are refused")
    func activeChecks() throws {
        var s = Scenario()
        s.active = true
        let q = s.ids[2]
        var error = try refusal(&s, to: q) { $0.survivors.removeLast() }
        #expect(error?.code == .inconsistentRequest && error?.stage == .unmasking)
        error = try refusal(&s, to: q) { $0.signatures[1].signature[0] ^= 1 }
        #expect(error?.code == .invalidSignature && error?.stage == .unmasking)
        error = try refusal(&s, to: q) { $0.signatures = Array($0.signatures.prefix(2)) }
        #expect(error?.code == .tooFewSurvivors)
    }

    @Test("Requests from another round, for another participant or out of order are refused")
    func wrongRequests() throws {
        let s = Scenario()
        let configuration = try s.configuration()
        var generator = DeterministicGenerator(seed: 1)
        var client = try SecAggClient(id: s.ids[0], configuration: configuration, using: &generator)
        let early = #expect(throws: SecAggError.self) {
            _ = try client.unmask(UnmaskingRequest(roundID: 500, recipient: s.ids[0], survivors: s.ids, dropped: []))
        }
        #expect(early?.code == .unexpectedStage && early?.stage == .unmasking)
        _ = try client.advertiseKeys()
        let replay = #expect(throws: SecAggError.self) {
            _ = try client.shareKeys(
                ShareKeysRequest(roundID: 499, recipient: s.ids[0], neighbours: []), using: &generator)
        }
        #expect(replay?.code == .wrongRound && replay?.stage == .shareKeys)
        // After a refusal the client answers nothing more.
        let after = #expect(throws: SecAggError.self) {
            _ = try client.shareKeys(
                ShareKeysRequest(roundID: 500, recipient: s.ids[0], neighbours: []), using: &generator)
        }
        #expect(after?.code == .roundAborted)

        var other = try SecAggClient(id: s.ids[1], configuration: configuration, using: &generator)
        _ = try other.advertiseKeys()
        let misaddressed = #expect(throws: SecAggError.self) {
            _ = try other.shareKeys(
                ShareKeysRequest(roundID: 500, recipient: s.ids[2], neighbours: []), using: &generator)
        }
        #expect(misaddressed?.code == .inconsistentRequest && misaddressed?.participant == s.ids[2])
    }
}

@Suite("Client-side checks of share contents")
struct ShareContentTests {
    /// The simulation seeds participant `id`'s generator with `seed · φ + id`, and a client draws
    /// its encryption key first: so a test can act as a malicious sender with `id`'s real key.
    static func encryptionKey(_ id: UInt32, simulationSeed: UInt64) -> X25519PrivateKey {
        var generator = DeterministicGenerator(seed: simulationSeed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(id))
        return X25519PrivateKey(using: &generator)
    }

    @Test("A correctly encrypted share that names another recipient, or another evaluation point, is rejected")
    func forgedContents() throws {
        var s = Scenario()
        let (p, q, other) = (s.ids[0], s.ids[3], s.ids[4])
        let key = try SecAggProtocol.shareKey(
            own: Self.encryptionKey(p, simulationSeed: 97), peer: Self.encryptionKey(q, simulationSeed: 97).publicKey,
            roundID: 500, ownID: p, peerID: q)
        let zero = [UInt64](repeating: 0, count: SecAggProtocol.shareElementCount)
        let nonce = [UInt8](repeating: 0, count: SecAggProtocol.commitmentNonceLength)
        let cases: [(plaintext: [UInt8], code: SecAggError.Code)] = [
            (
                SecAggProtocol.sharePlaintext(
                    sender: p, recipient: other,
                    selfMask: CommittedShare(share: ShamirShare(x: q, values: zero), nonce: nonce),
                    key: CommittedShare(share: ShamirShare(x: q, values: zero), nonce: nonce)),
                .misaddressedShare
            ),
            (
                SecAggProtocol.sharePlaintext(
                    sender: p, recipient: q,
                    selfMask: CommittedShare(share: ShamirShare(x: other, values: zero), nonce: nonce),
                    key: CommittedShare(share: ShamirShare(x: q, values: zero), nonce: nonce)),
                .invalidShare
            ),
        ]
        for (plaintext, code) in cases {
            let ciphertext = try AEAD.seal(
                plaintext, key: key,
                associatedData: SecAggProtocol.shareAssociatedData(roundID: 500, sender: p, recipient: q))
            s.clientToServer = rewrite(.shareKeys, p) { message in
                guard case .shareKeys(var m) = message, let index = m.shares.firstIndex(where: { $0.peer == q }) else {
                    return [message]
                }
                m.shares[index].ciphertext = ciphertext
                return [.shareKeys(m)]
            }
            let outcome = try s.run()
            let rejected = outcome.rejectedShares[q] ?? []
            #expect(rejected.count == 1 && rejected.first?.code == code, "\(rejected)")
            #expect(rejected.first?.participant == p && rejected.first?.stage == .maskedInputCollection)
            s.expectSum(outcome, of: s.ids)
        }
    }
}
