import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// Rewrites the unmasking response of `holder`, changing its share of `owner`'s secret of `kind`.
func corruptShare(
    of owner: UInt32, kind: ShareKind, by holder: UInt32, change: @escaping (inout PeerShare) -> Void
) -> SecAggSimulation.Interceptor {
    rewrite(.unmasking, holder) { message in
        guard case .unmaskingResponse(var m) = message else { return [message] }
        switch kind {
        case .selfMask:
            if let index = m.selfMaskShares.firstIndex(where: { $0.peer == owner }) {
                change(&m.selfMaskShares[index])
            }
        case .key:
            if let index = m.keyShares.firstIndex(where: { $0.peer == owner }) { change(&m.keyShares[index]) }
        }
        return [.unmaskingResponse(m)]
    }
}

/// Chains interceptors: each sees what the previous one produced.
func chain(_ interceptors: [SecAggSimulation.Interceptor]) -> SecAggSimulation.Interceptor {
    { stage, participant, bytes in
        var current = [bytes]
        for interceptor in interceptors {
            current = current.flatMap { interceptor(stage, participant, $0) }
        }
        return current
    }
}

/// Adds 1 to the first field element of a share: still a valid field element, a different share.
func shiftValue(_ entry: inout PeerShare) {
    entry.share.values[0] = (entry.share.values[0] + 1) % Shamir.prime
}

@Suite("Verifiable shares: a corrupt returned share is caught, its holder named and the round goes on")
struct VerifiableSharesTests {
    /// The first holders by evaluation point are the ones reconstruction used before shares
    /// were verified: a corrupt share from one of them changed the result.
    @Test(
        "A holder that corrupts a survivor's self-mask share (its value or its nonce) is named and excluded",
        arguments: [false, true])
    func corruptSelfMaskShare(corruptNonce: Bool) throws {
        var s = Scenario()
        let (culprit, owner) = (s.ids[0], s.ids[3])
        s.clientToServer = corruptShare(of: owner, kind: .selfMask, by: culprit) { entry in
            if corruptNonce { entry.nonce[5] ^= 0x40 } else { shiftValue(&entry) }
        }
        let outcome = try s.run()
        // Its masked input was in the running sum before it cheated: the sum is every survivor's.
        s.expectSum(outcome, of: s.ids)
        let result = try outcome.result.get()
        #expect(result.corruptShares == [CorruptShare(holder: culprit, owner: owner, kind: .selfMask)])
        #expect(result.culprits == [culprit])
        let error = onlyError(outcome)
        #expect(error?.code == .shareCommitmentMismatch && error?.participant == culprit)
        #expect(error?.stage == .unmasking && error?.roundID == 500)
        #expect(
            error?.message.contains("self-mask share of participant \(owner)") == true, "\(String(describing: error))")
        #expect(outcome.stageSurvivors[.unmasking]?.contains(culprit) == false)
    }

    @Test("A holder that corrupts a dropped participant's key share is named; the pairwise masks still come off")
    func corruptKeyShareOfDroppedSite() throws {
        var s = Scenario()
        let (culprit, dropped) = (s.ids[0], s.ids[4])
        s.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [.maskedInputCollection: [dropped]])
        s.clientToServer = corruptShare(of: dropped, kind: .key, by: culprit, change: shiftValue)
        let outcome = try s.run()
        s.expectSum(outcome, of: s.ids.filter { $0 != dropped })
        let result = try outcome.result.get()
        #expect(result.dropped == [dropped])
        #expect(result.corruptShares == [CorruptShare(holder: culprit, owner: dropped, kind: .key)])
        let error = onlyError(outcome)
        #expect(error?.code == .shareCommitmentMismatch && error?.participant == culprit)
        #expect(error?.message.contains("masking-key share of participant \(dropped)") == true)
    }

    @Test("A culprit's verified shares still count, and a secret left below t aborts naming the culprit")
    func verifiedSharesOfACulpritCount() throws {
        var s = Scenario()
        s.threshold = 6
        let (culprit, owner) = (s.ids[2], s.ids[5])
        // With t = n every secret needs every holder's share. The culprit corrupts only its share
        // of `owner` (the last survivor reconstructed): the seeds before it are rebuilt with the
        // culprit's verified shares, and `owner`'s 5 < 6 verified shares abort the round.
        s.clientToServer = corruptShare(of: owner, kind: .selfMask, by: culprit, change: shiftValue)
        let outcome = try s.run()
        guard case .failure(let error) = outcome.result else {
            Issue.record("the round should abort: only 5 verified shares of \(owner)'s seed remain")
            return
        }
        #expect(error.code == .tooFewSurvivors && error.participant == owner && error.stage == .unmasking)
        #expect(error.message.contains("corrupt shares from participants \(culprit) were discarded"), "\(error)")
    }

    @Test("Several culprits: the round finishes while t verified shares remain, and aborts naming them all otherwise")
    func severalCulprits() throws {
        var s = Scenario()  // 6 participants, t = 3
        let owner = s.ids[5]
        let two = Array(s.ids[0..<2])
        s.clientToServer = chain(two.map { corruptShare(of: owner, kind: .selfMask, by: $0, change: shiftValue) })
        let survived = try s.run()
        s.expectSum(survived, of: s.ids)
        #expect((try? survived.result.get())?.culprits == two)
        #expect(survived.serverMisbehaviour.compactMap(\.participant) == two)

        let four = Array(s.ids[0..<4])
        s.clientToServer = chain(four.map { corruptShare(of: owner, kind: .selfMask, by: $0, change: shiftValue) })
        let aborted = try s.run()
        guard case .failure(let error) = aborted.result else {
            Issue.record("the round should abort: 2 verified shares of \(owner)'s seed are below t = 3")
            return
        }
        let named = four.map(String.init).joined(separator: ", ")
        #expect(error.code == .tooFewSurvivors && error.participant == owner, "\(error)")
        #expect(error.message.contains("corrupt shares from participants \(named) were discarded"), "\(error)")
        let culprits = aborted.serverMisbehaviour.filter { $0.code == .shareCommitmentMismatch }.compactMap(
            \.participant)
        #expect(culprits == four)
    }

    @Test("In the active setting a commitment changed in flight fails the owner's signature at ShareKeys")
    func tamperedCommitmentActive() throws {
        var s = Scenario()
        s.active = true
        let owner = s.ids[2]
        s.clientToServer = rewrite(.shareKeys, owner) { message in
            guard case .shareKeys(var m) = message else { return [message] }
            m.commitments[1].selfMask[0] ^= 1
            return [.shareKeys(m)]
        }
        let outcome = try s.run()
        let error = onlyError(outcome)
        #expect(error?.code == .invalidSignature && error?.participant == owner && error?.stage == .shareKeys)
        #expect(outcome.stageSurvivors[.shareKeys]?.contains(owner) == false)
        s.expectSum(outcome, of: s.ids.filter { $0 != owner })
    }

    @Test(
        "ShareKeys without a commitment for every holder, or with an unsigned list in the active setting, is rejected")
    func incompleteCommitments() throws {
        for active in [false, true] {
            var s = Scenario()
            s.active = active
            let owner = s.ids[1]
            s.clientToServer = rewrite(.shareKeys, owner) { message in
                guard case .shareKeys(var m) = message else { return [message] }
                if active { m.commitmentSignature = [] } else { m.commitments.removeLast() }
                return [.shareKeys(m)]
            }
            let outcome = try s.run()
            let error = onlyError(outcome)
            let expected: SecAggError.Code = active ? .invalidSignature : .shareCommitmentMismatch
            #expect(error?.code == expected && error?.participant == owner && error?.stage == .shareKeys)
            s.expectSum(outcome, of: s.ids.filter { $0 != owner })
        }
    }

    @Test("An owner cannot frame an honest holder: the holder refuses shares that do not match their commitment")
    func ownerCannotFrameAHolder() throws {
        var s = Scenario()
        let (owner, holder) = (s.ids[1], s.ids[4])
        s.clientToServer = rewrite(.shareKeys, owner) { message in
            guard case .shareKeys(var m) = message,
                let index = m.commitments.firstIndex(where: { $0.holder == holder })
            else { return [message] }
            m.commitments[index].key[31] ^= 0x80
            return [.shareKeys(m)]
        }
        let outcome = try s.run()
        s.expectSum(outcome, of: s.ids)
        let rejected = outcome.rejectedShares[holder] ?? []
        #expect(rejected.count == 1 && rejected.first?.code == .shareCommitmentMismatch, "\(rejected)")
        #expect(rejected.first?.participant == owner && rejected.first?.stage == .maskedInputCollection)
        #expect(outcome.serverMisbehaviour.isEmpty, "\(outcome.serverMisbehaviour)")
        #expect((try? outcome.result.get())?.corruptShares == [])
    }

    @Test("The coordinator sees a share's commitment nonce only when that share is returned")
    func noncesStayWithOwnerAndHolder() throws {
        var s = Scenario()
        s.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [.maskedInputCollection: [s.ids[5]]])
        let outcome = try s.run()
        s.expectSum(outcome, of: Array(s.ids.prefix(5)))
        let before = outcome.transcript.filter { $0.stage < .unmasking }.map(\.bytes)
        var nonces: [[UInt8]] = []
        for entry in outcome.transcript where entry.stage == .unmasking {
            guard case .unmaskingResponse(let m) = try SecAggMessage.decode(entry.bytes) else { continue }
            nonces += (m.selfMaskShares + m.keyShares).map(\.nonce)
        }
        #expect(nonces.count == 5 * 5 + 5 * 1)  // five survivors' seeds and one dropped key, from five holders
        #expect(Set(nonces).count == nonces.count, "every share has its own nonce")
        #expect(SecAggProtocol.commitmentNonceLength * 8 >= 128)
        for nonce in nonces {
            let leaked = before.contains { bytes in
                bytes.count >= nonce.count
                    && (0...(bytes.count - nonce.count)).contains { Array(bytes[$0..<($0 + nonce.count)]) == nonce }
            }
            #expect(!leaked, "a nonce appeared in a message the server received before Unmasking")
        }
    }

    @Test("A commitment binds the round, owner, holder, kind, share and nonce")
    func commitmentBindsEveryLabel() {
        let share = ShamirShare(x: 4, values: [1, 2, 3, 4, 5])
        let nonce = [UInt8](repeating: 9, count: SecAggProtocol.commitmentNonceLength)
        func c(
            round: UInt64 = 1, owner: UInt32 = 2, holder: UInt32 = 4, kind: ShareKind = .selfMask,
            share: ShamirShare = share, nonce: [UInt8] = nonce
        ) -> [UInt8] {
            SecAggProtocol.shareCommitment(
                roundID: round, owner: owner, holder: holder, kind: kind, share: share, nonce: nonce)
        }
        let base = c()
        #expect(base.count == 32)
        let variants = [
            c(round: 2), c(owner: 3), c(holder: 5), c(kind: .key),
            c(share: ShamirShare(x: 4, values: [1, 2, 3, 4, 6])),
            c(nonce: [UInt8](repeating: 8, count: SecAggProtocol.commitmentNonceLength)),
        ]
        for variant in variants { #expect(variant != base) }
        // The in-place encoding is the documented one: the serialized share as a blob.
        var w = ByteWriter()
        w.raw(Array("tessera-secagg-share-commitment-v1".utf8))
        w.u64(1)
        w.u32(2)
        w.u32(4)
        w.u8(ShareKind.selfMask.rawValue)
        w.blob(share.serialized())
        w.blob(nonce)
        #expect(base == SHA256.hash(w.bytes))
    }

    @Test("The short-message SHA-256 agrees with the streaming one", arguments: [0, 1, 55, 56, 64, 150, 1000])
    func shortHashAgrees(length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        #expect(SHA256.hashShort(bytes) == SHA256.hash(bytes))
    }
}

@Suite("Commitment fields are bounded at decode")
struct CommitmentDecodingTests {
    /// A ShareKeys header followed by an empty share list and a commitment count of `count`,
    /// with `count` commitments' worth of zero bytes and an empty signature.
    static func shareKeys(announcing count: UInt32, present: Int) -> [UInt8] {
        var bytes = Array(SecAggMessage.shareKeys(ShareKeysMessage(roundID: 1, sender: 2, shares: [])).encoded())
        bytes.removeLast(8)  // the empty commitment list and the empty signature
        withUnsafeBytes(of: count.littleEndian) { bytes.append(contentsOf: $0) }
        bytes += [UInt8](repeating: 0, count: present * SecAggMessage.commitmentSize)
        bytes += [0, 0, 0, 0]
        return bytes
    }

    @Test("A commitment list longer than the largest roster is refused, even when the bytes are there")
    func oversizedList() throws {
        let limit = SecAggMessage.maximumCommitmentCount
        let fits = try SecAggMessage.decode(Self.shareKeys(announcing: UInt32(limit), present: limit))
        guard case .shareKeys(let m) = fits else {
            Issue.record("expected a ShareKeys message")
            return
        }
        #expect(m.commitments.count == limit && m.commitments.allSatisfy { $0.owner == 2 })
        let over = #expect(throws: SecAggError.self) {
            _ = try SecAggMessage.decode(Self.shareKeys(announcing: UInt32(limit + 1), present: limit + 1))
        }
        #expect(over?.code == .malformedMessage && over?.message.contains("share commitments") == true)
    }

    @Test("A commitment count larger than the bytes that follow is refused before allocating")
    func countBeyondBytes() {
        let error = #expect(throws: SecAggError.self) {
            _ = try SecAggMessage.decode(Self.shareKeys(announcing: .max, present: 1))
        }
        #expect(error?.code == .truncatedMessage)
        var request = SecAggMessage.maskedInputRequest(
            MaskedInputRequest(roundID: 1, recipient: 2, shares: [])
        ).encoded()
        request.removeLast(4)
        request += [0xff, 0xff, 0x00, 0x00] + [UInt8](repeating: 0, count: 68)
        let requestError = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(request) }
        #expect(requestError?.code == .truncatedMessage)
    }

    @Test("A commitment signature that is neither empty nor 64 bytes is refused")
    func signatureSize() {
        let message = SecAggMessage.shareKeys(
            ShareKeysMessage(roundID: 1, sender: 2, shares: [], commitments: [], commitmentSignature: [1, 2, 3]))
        let error = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(message.encoded()) }
        #expect(error?.code == .malformedMessage)
    }
}
