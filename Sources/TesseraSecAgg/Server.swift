import TesseraCrypto
import TesseraSupport

/// The outcome of a finished round.
public struct SecAggResult: Sendable, Hashable {
    /// The round.
    public var roundID: UInt64
    /// `Σ_{u ∈ U3} x_u mod 2^32`: exactly the sum of the inputs of ``survivors``.
    public var sum: [UInt32]
    /// U3: the participants whose inputs are in ``sum`` (sorted). Its count is the number of
    /// inputs actually summed, which ``QuantizationCodec/decode(sum:inputCount:)`` needs.
    public var survivors: [UInt32]
    /// U2 \ U3: participants that shared keys but whose masked input never counted; their
    /// pairwise masks were reconstructed and removed.
    public var dropped: [UInt32]
    /// The number of participants that completed each stage.
    public var stageCounts: [SecAggStage: Int]
    /// How much unmasking work the round took.
    public var statistics: UnmaskingStatistics
    /// Shares returned at Unmasking that did not open their owner's commitment: discarded, and
    /// their holders named (see ``SecAggServer/corruptShares``).
    public var corruptShares: [CorruptShare] = []

    /// The participants that returned at least one corrupt share, sorted.
    public var culprits: [UInt32] { Set(corruptShares.map(\.holder)).sorted() }
}

/// A share returned at Unmasking that does not open the commitment its owner published at
/// ShareKeys: the server discarded it and names its holder.
public struct CorruptShare: Sendable, Hashable, CustomStringConvertible {
    /// Who returned the share (the culprit).
    public var holder: UInt32
    /// Whose secret it claimed to be a share of.
    public var owner: UInt32
    /// A self-mask share (of a survivor) or a masking-key share (of a dropped participant).
    public var kind: ShareKind

    public init(holder: UInt32, owner: UInt32, kind: ShareKind) {
        self.holder = holder
        self.owner = owner
        self.kind = kind
    }

    public var description: String {
        "participant \(holder) returned a corrupt \(kind) share of participant \(owner)"
    }
}

/// The work of one round's unmasking, for metrics and benchmarks.
public struct UnmaskingStatistics: Sendable, Hashable {
    /// Secrets rebuilt from Shamir shares (self-mask seeds plus dropped masking keys).
    public var secretsReconstructed: Int
    /// Self masks removed (one per survivor).
    public var selfMasksRemoved: Int
    /// Pairwise masks of dropped participants removed (one X25519 and one expansion each).
    public var pairMasksRemoved: Int
    /// Words of keystream expanded: `(selfMasksRemoved + pairMasksRemoved) · d`.
    public var keystreamWords: Int
    /// Time spent in Shamir reconstruction.
    public var reconstructionTime: Duration
    /// Time spent deriving and removing the masks (on ``SecAggServer/workerCount`` threads).
    public var maskRemovalTime: Duration
}

/// The coordinator's side of a secure-aggregation round, as a transport-free state machine.
///
/// Feed it every participant message with ``receive(_:from:)`` as it arrives; when a stage's
/// deadline passes (or everyone answered), call ``closeStage()``, which either returns the
/// requests that open the next stage, the final ``SecAggResult``, or throws a clean
/// ``SecAggError/Code-swift.struct/tooFewSurvivors`` abort naming the stage that fell below t
/// and by how much.
///
/// ## Survivor sets
///
/// U1 ⊇ U2 ⊇ U3 ⊇ U4 ⊇ U5 are the participants that completed AdvertiseKeys, ShareKeys,
/// MaskedInputCollection, ConsistencyCheck (active setting only; otherwise U4 = U3) and
/// Unmasking. After stage s the server requires
///
/// - `|U_s| ≥ t`, and
/// - for every participant `u` whose secrets may still be needed (`u ∈ U1` after stage 1,
///   `u ∈ U2` after every later stage), at least t of its holders (neighbours and itself)
///   in `U_s`, since the shares that reconstruct `b_u` or `s_sk_u` can only come from there.
///
/// Checking at every stage aborts as early as the outcome is decided, with the stage that
/// caused it. For the complete graph the two conditions coincide.
///
/// ## Misbehaviour
///
/// A message that is malformed, from another round, for another stage, duplicated, from an
/// unknown or inactive sender, or invalid for its stage is rejected with a typed error naming
/// the participant and the stage (also kept in ``misbehaviour``). Its sender is treated as a
/// dropout: removed from the current stage's set unless its masked input is already in the
/// running sum (that cannot be undone, so it stays in U3, its self-mask is reconstructed, and
/// it takes no further part). The round goes on while the thresholds hold.
///
/// ## Verifiable shares
///
/// Each owner publishes at ShareKeys a salted SHA-256 commitment to every share it deals
/// (``ShareCommitment``), signed in the active setting; a ShareKeys message whose commitments
/// do not cover exactly its holders, or whose signature does not verify, is rejected. At
/// Unmasking every returned share, self-mask and masking-key alike, is checked against its
/// commitment as the response arrives: a share that does not open it is discarded, recorded
/// in ``corruptShares`` and ``misbehaviour`` (code
/// ``SecAggError/Code-swift.struct/shareCommitmentMismatch``), and its holder is excluded; its
/// shares that do verify are still used. Its own masked input is already in the running sum
/// and stays there (the sum cannot be taken apart without keeping every masked vector).
/// Reconstruction then uses only verified shares, so it succeeds while t of them remain for
/// every secret, and otherwise aborts naming the holders whose shares were discarded.
///
/// ## Memory and work
///
/// Masked inputs are added into one running sum as they arrive: O(d) memory, never one
/// vector per participant. Unmasking reconstructs b_u for u ∈ U3 and s_sk_v for dropped v,
/// then removes |U3| self masks and one pairwise mask per (dropped v, surviving neighbour u)
/// pair. The pairs are the heavy part (an X25519 and a d-word AES-CTR expansion each) and are
/// spread over ``workerCount`` threads with private accumulators.
public struct SecAggServer: Sendable {
    /// The round configuration.
    public let configuration: SecAggConfiguration
    /// Threads used for unmasking.
    public let workerCount: Int

    /// Where the round is.
    public enum State: Sendable {
        /// Accepting messages of this stage.
        case collecting(SecAggStage)
        /// Finished with this result.
        case finished(SecAggResult)
        /// Aborted with this error.
        case aborted(SecAggError)
    }

    /// The current state.
    public private(set) var state: State = .collecting(.advertiseKeys)
    /// Every rejected message, in order: who misbehaved, how, and in which stage.
    public private(set) var misbehaviour: [SecAggError] = []

    /// The participants that completed each closed stage.
    public private(set) var survivors: [SecAggStage: Set<UInt32>] = [:]

    /// Participants dropped for misbehaviour (excluded from every later stage).
    public private(set) var excluded: Set<UInt32> = []

    /// Every share discarded at Unmasking because it did not open its owner's commitment, in
    /// arrival order: the coordinator names these holders.
    public private(set) var corruptShares: [CorruptShare] = []

    private var submitted: Set<UInt32> = []
    private var advertised: [UInt32: AdvertisedKeys] = [:]
    private var maskingKeys: [UInt32: X25519PublicKey] = [:]
    /// sender → recipient → ciphertext, kept until ShareKeys closes and they are relayed.
    private var sharesBySender: [UInt32: [UInt32: [UInt8]]] = [:]
    /// owner → holder → the owner's commitment to that holder's shares, kept until unmasking.
    private var commitments: [UInt32: [UInt32: ShareCommitment]] = [:]
    private var runningSum: [UInt32]
    private var signatures: [UInt32: [UInt8]] = [:]
    private var responses: [UInt32: UnmaskingResponseMessage] = [:]
    /// A throwaway key whose shared secret with an advertised key is zero exactly when that key
    /// is a low-order point, which would give a predictable pairwise secret.
    private let probeKey = X25519PrivateKey()

    /// A server for one round. `workerCount` defaults to the machine's active cores.
    public init(configuration: SecAggConfiguration, workerCount: Int? = nil) {
        self.configuration = configuration
        self.workerCount = max(1, workerCount ?? ParallelLoop.processorCount)
        self.runningSum = [UInt32](repeating: 0, count: configuration.vectorLength)
    }

    private var roundID: UInt64 { configuration.roundID }
    private var threshold: Int { configuration.threshold }
    private var graph: NeighbourGraph { configuration.graph }

    /// The stage being collected, or `nil` once the round finished or aborted.
    public var currentStage: SecAggStage? {
        if case .collecting(let stage) = state { return stage }
        return nil
    }

    /// The participants allowed to send a message in the current stage.
    public var eligible: Set<UInt32> {
        guard let stage = currentStage else { return [] }
        return eligible(for: stage)
    }

    private func eligible(for stage: SecAggStage) -> Set<UInt32> {
        let previous: Set<UInt32>
        switch stage {
        case .advertiseKeys: previous = Set(graph.participants)
        case .shareKeys: previous = survivors[.advertiseKeys] ?? []
        case .maskedInputCollection: previous = survivors[.shareKeys] ?? []
        case .consistencyCheck: previous = survivors[.maskedInputCollection] ?? []
        case .unmasking:
            previous = survivors[configuration.securityMode.isActive ? .consistencyCheck : .maskedInputCollection] ?? []
        }
        return previous.subtracting(excluded)
    }

    // MARK: - Receiving

    /// Decodes and processes bytes received from the participant whose transport identity is
    /// `sender` (in a deployment, the identity of its mTLS certificate, never a message field).
    public mutating func receive(_ bytes: [UInt8], from sender: UInt32) throws(SecAggError) {
        try checkOpen(sender: sender)
        let message: SecAggMessage
        do throws(SecAggError) {
            message = try SecAggMessage.decode(bytes)
        } catch {
            var error = error
            error.participant = sender
            error.stage = currentStage
            error.roundID = roundID
            throw reject(error, dropping: sender)
        }
        try receive(message, from: sender)
    }

    /// Processes one decoded message from the participant authenticated as `sender`.
    public mutating func receive(_ message: SecAggMessage, from sender: UInt32) throws(SecAggError) {
        try checkOpen(sender: sender)
        guard let stage = currentStage else { return }
        guard message.isFromClient else {
            throw reject(
                error(.malformedMessage, "A \(message.stage) server request was sent to the server.", sender, stage),
                dropping: sender)
        }
        guard message.sender == sender else {
            throw reject(
                error(
                    .senderMismatch,
                    "The message claims to come from participant \(message.sender) but arrived from participant \(sender).",
                    sender, stage),
                dropping: sender)
        }
        guard message.roundID == roundID else {
            throw reject(
                error(
                    .wrongRound, "The message belongs to round \(message.roundID), not \(roundID) (late or replayed).",
                    sender, stage),
                dropping: sender)
        }
        guard message.stage == stage else {
            throw reject(
                error(
                    .unexpectedStage,
                    "A \(message.stage) message arrived while the round is in \(stage).", sender, stage),
                dropping: sender)
        }
        guard eligible(for: stage).contains(sender) else {
            let why =
                excluded.contains(sender) ? "was excluded for misbehaviour" : "did not complete the previous stage"
            throw reject(
                error(
                    .participantNotActive, "Participant \(sender) \(why), so it takes no part in \(stage).", sender,
                    stage),
                dropping: sender)
        }
        guard !submitted.contains(sender) else {
            throw reject(
                error(.duplicateMessage, "Participant \(sender) already sent its \(stage) message.", sender, stage),
                dropping: sender)
        }
        var corrupt: [CorruptShare] = []
        do throws(SecAggError) {
            switch message {
            case .advertiseKeys(let m): try acceptAdvertisedKeys(m)
            case .shareKeys(let m): try acceptShares(m)
            case .maskedInput(let m): try acceptMaskedInput(m)
            case .consistencySignature(let m): try acceptSignature(m)
            case .unmaskingResponse(let m): corrupt = try acceptUnmaskingResponse(m)
            default: break
            }
        } catch {
            throw reject(error, dropping: sender)
        }
        submitted.insert(sender)
        if !corrupt.isEmpty { throw blame(sender, for: corrupt) }
    }

    /// Records the corrupt shares of an unmasking response whose verified shares were kept
    /// (see "Verifiable shares" in the type's documentation), and returns the error naming
    /// the holder for the caller to throw.
    private mutating func blame(_ holder: UInt32, for corrupt: [CorruptShare]) -> SecAggError {
        corruptShares.append(contentsOf: corrupt)
        excluded.insert(holder)
        let listed = corrupt.map { "a \($0.kind) share of participant \($0.owner)" }.joined(separator: ", ")
        let error = error(
            .shareCommitmentMismatch,
            "Participant \(holder) returned \(listed) that does not open the owner's ShareKeys commitment; "
                + "discarded, and participant \(holder) is excluded.",
            holder, .unmasking)
        misbehaviour.append(error)
        return error
    }

    private func checkOpen(sender: UInt32) throws(SecAggError) {
        switch state {
        case .collecting:
            guard graph.contains(sender) else {
                throw SecAggError(
                    code: .unknownParticipant,
                    message: "Participant \(sender) is not in the round's roster; message ignored.",
                    participant: sender, stage: currentStage, roundID: roundID)
            }
        case .finished:
            throw SecAggError(
                code: .roundFinished, message: "The round already finished; message ignored.", participant: sender,
                roundID: roundID)
        case .aborted(let cause):
            throw SecAggError(
                code: .roundAborted, message: "The round aborted; message ignored.", participant: sender,
                roundID: roundID,
                cause: cause)
        }
    }

    private func error(
        _ code: SecAggError.Code, _ message: String, _ participant: UInt32, _ stage: SecAggStage
    ) -> SecAggError {
        SecAggError(code: code, message: message, participant: participant, stage: stage, roundID: roundID)
    }

    /// Records `error`, drops `participant` from the round (see the type's documentation), and
    /// returns the error for the caller to throw.
    private mutating func reject(_ error: SecAggError, dropping participant: UInt32) -> SecAggError {
        misbehaviour.append(error)
        guard graph.contains(participant), let stage = currentStage else { return error }
        excluded.insert(participant)
        switch stage {
        case .maskedInputCollection:
            // Already in the running sum if submitted: it stays in U3 (see the type's documentation).
            break
        case .advertiseKeys:
            submitted.remove(participant)
            advertised[participant] = nil
            maskingKeys[participant] = nil
        case .shareKeys:
            submitted.remove(participant)
            sharesBySender[participant] = nil
            commitments[participant] = nil
        case .consistencyCheck:
            submitted.remove(participant)
            signatures[participant] = nil
        case .unmasking:
            submitted.remove(participant)
            responses[participant] = nil
        }
        return error
    }

    private mutating func acceptAdvertisedKeys(_ m: AdvertiseKeysMessage) throws(SecAggError) {
        let sender = m.sender
        guard m.keys.participant == sender else {
            throw error(
                .malformedMessage, "The advertised keys name participant \(m.keys.participant).", sender, .advertiseKeys
            )
        }
        if let verification = configuration.verificationKey(of: sender) {
            let signed = SecAggProtocol.advertisedKeysMessage(
                roundID: roundID, participant: sender, encryptionKey: m.keys.encryptionKey,
                maskingKey: m.keys.maskingKey)
            guard verification.isValidSignature(m.keys.signature, for: signed) else {
                throw error(
                    .invalidSignature, "The advertised keys do not carry a valid signature of participant \(sender).",
                    sender, .advertiseKeys)
            }
        }
        guard let c = try? X25519PublicKey(rawRepresentation: m.keys.encryptionKey),
            let s = try? X25519PublicKey(rawRepresentation: m.keys.maskingKey),
            (try? probeKey.sharedSecret(with: c)) != nil,
            (try? probeKey.sharedSecret(with: s)) != nil
        else {
            throw error(
                .invalidPublicKey,
                "An advertised X25519 key is malformed or a low-order point (it would give a known secret).",
                sender, .advertiseKeys)
        }
        advertised[sender] = m.keys
        maskingKeys[sender] = s
    }

    private mutating func acceptShares(_ m: ShareKeysMessage) throws(SecAggError) {
        let sender = m.sender
        let u1 = survivors[.advertiseKeys] ?? []
        var byRecipient: [UInt32: [UInt8]] = [:]
        byRecipient.reserveCapacity(m.shares.count)
        for share in m.shares {
            let recipient = share.peer
            guard recipient != sender, graph.areNeighbours(sender, recipient), u1.contains(recipient) else {
                throw error(
                    .invalidRecipient,
                    "A share is addressed to participant \(recipient), which is not a neighbour of \(sender) that advertised keys.",
                    sender, .shareKeys)
            }
            guard byRecipient[recipient] == nil else {
                throw error(
                    .invalidRecipient, "Two shares are addressed to participant \(recipient).", sender, .shareKeys)
            }
            guard share.ciphertext.count == SecAggProtocol.encryptedShareLength else {
                throw error(
                    .malformedCiphertext,
                    "The encrypted share for participant \(recipient) is \(share.ciphertext.count) bytes; every share is "
                        + "\(SecAggProtocol.encryptedShareLength).",
                    sender, .shareKeys)
            }
            byRecipient[recipient] = share.ciphertext
        }
        for neighbour in graph.neighbours(of: sender) where u1.contains(neighbour) && byRecipient[neighbour] == nil {
            throw error(.missingShare, "No share was sent to neighbour \(neighbour).", sender, .shareKeys)
        }
        let committed = try checkCommitments(m, holders: Set(byRecipient.keys).union([sender]))
        sharesBySender[sender] = byRecipient
        commitments[sender] = committed
    }

    /// An owner's commitments must name each of its holders exactly once, in increasing order
    /// (the order it signs), with 32-byte digests, and carry its signature in the active setting.
    private func checkCommitments(
        _ m: ShareKeysMessage, holders: Set<UInt32>
    ) throws(SecAggError) -> [UInt32: ShareCommitment] {
        let sender = m.sender
        guard m.commitments.count == holders.count else {
            throw error(
                .shareCommitmentMismatch,
                "The message carries \(m.commitments.count) share commitments for \(holders.count) share holders.",
                sender, .shareKeys)
        }
        var byHolder: [UInt32: ShareCommitment] = [:]
        byHolder.reserveCapacity(holders.count)
        var previous: UInt32 = 0
        for commitment in m.commitments {
            guard commitment.owner == sender, commitment.holder > previous, holders.contains(commitment.holder),
                commitment.selfMask.count == SHA256.byteCount, commitment.key.count == SHA256.byteCount
            else {
                throw error(
                    .shareCommitmentMismatch,
                    "The share commitment for holder \(commitment.holder) is out of order, repeated, for a participant "
                        + "that holds no share, or not two 32-byte digests.",
                    sender, .shareKeys)
            }
            previous = commitment.holder
            byHolder[commitment.holder] = commitment
        }
        if let verification = configuration.verificationKey(of: sender) {
            let signed = SecAggProtocol.shareCommitmentsMessage(
                roundID: roundID, owner: sender, commitments: m.commitments)
            guard verification.isValidSignature(m.commitmentSignature, for: signed) else {
                throw error(
                    .invalidSignature,
                    "The share commitments do not carry a valid signature of participant \(sender).", sender,
                    .shareKeys)
            }
        }
        return byHolder
    }

    private mutating func acceptMaskedInput(_ m: MaskedInputMessage) throws(SecAggError) {
        guard m.maskedInput.count == configuration.vectorLength else {
            throw error(
                .wrongVectorLength,
                "The masked input has \(m.maskedInput.count) words; this round aggregates \(configuration.vectorLength).",
                m.sender, .maskedInputCollection)
        }
        runningSum.withUnsafeMutableBufferPointer { sum in
            m.maskedInput.withUnsafeBufferPointer { input in
                SecAggParallel.addWords(sum, input)
            }
        }
    }

    private mutating func acceptSignature(_ m: ConsistencySignatureMessage) throws(SecAggError) {
        let survivorsList = (survivors[.maskedInputCollection] ?? []).sorted()
        let signed = SecAggProtocol.survivorListMessage(roundID: roundID, survivors: survivorsList)
        guard let key = configuration.verificationKey(of: m.sender), key.isValidSignature(m.signature, for: signed)
        else {
            throw error(
                .invalidSignature, "The signature on the survivor list does not verify.", m.sender, .consistencyCheck)
        }
        signatures[m.sender] = m.signature
    }

    /// Checks a response's structure (a violation rejects it whole), then each share against its
    /// owner's commitment: verified shares are kept, the others are returned as corrupt.
    private mutating func acceptUnmaskingResponse(
        _ m: UnmaskingResponseMessage
    ) throws(SecAggError) -> [CorruptShare] {
        let responder = m.sender
        let u2 = survivors[.shareKeys] ?? []
        let u3 = survivors[.maskedInputCollection] ?? []
        var seen: Set<UInt32> = []
        try checkUnmaskingShares(
            m.selfMaskShares, kind: "self-mask share", requestedFrom: "a surviving holder", responder: responder,
            seen: &seen
        ) { peer in (peer == responder || graph.areNeighbours(responder, peer)) && u3.contains(peer) }
        try checkUnmaskingShares(
            m.keyShares, kind: "key share", requestedFrom: "a dropped neighbour", responder: responder, seen: &seen
        ) { peer in graph.areNeighbours(responder, peer) && u2.contains(peer) && !u3.contains(peer) }
        var corrupt: [CorruptShare] = []
        var verified = m
        verified.selfMaskShares = m.selfMaskShares.filter { entry in
            opens(entry, kind: .selfMask, holder: responder, corrupt: &corrupt)
        }
        verified.keyShares = m.keyShares.filter { entry in
            opens(entry, kind: .key, holder: responder, corrupt: &corrupt)
        }
        responses[responder] = verified
        return corrupt
    }

    /// Whether `entry` opens its owner's commitment to `holder`'s share of `kind`; if not, it is
    /// added to `corrupt`.
    private func opens(
        _ entry: PeerShare, kind: ShareKind, holder: UInt32, corrupt: inout [CorruptShare]
    ) -> Bool {
        let recomputed = SecAggProtocol.shareCommitment(
            roundID: roundID, owner: entry.peer, holder: holder, kind: kind, share: entry.share, nonce: entry.nonce)
        guard entry.nonce.count == SecAggProtocol.commitmentNonceLength,
            let commitment = commitments[entry.peer]?[holder], recomputed == commitment.digest(of: kind)
        else {
            corrupt.append(CorruptShare(holder: holder, owner: entry.peer, kind: kind))
            return false
        }
        return true
    }

    /// Checks one list of an unmasking response: every share was `requested` of this responder,
    /// names a peer no other share in the response names (`seen` spans both lists), and is a
    /// field-valued share at the responder's own evaluation point.
    private func checkUnmaskingShares(
        _ entries: [PeerShare], kind: String, requestedFrom holder: String, responder: UInt32, seen: inout Set<UInt32>,
        requested: (UInt32) -> Bool
    ) throws(SecAggError) {
        for entry in entries {
            guard requested(entry.peer) else {
                throw error(
                    .invalidShare, "A \(kind) of participant \(entry.peer) was not requested (not \(holder)).",
                    responder, .unmasking)
            }
            guard seen.insert(entry.peer).inserted else {
                throw error(.invalidShare, "Two shares for participant \(entry.peer).", responder, .unmasking)
            }
            guard entry.share.x == responder, entry.share.values.count == SecAggProtocol.shareElementCount,
                entry.share.values.allSatisfy({ $0 < Shamir.prime })
            else {
                throw error(
                    .invalidShare,
                    "The share of participant \(entry.peer) is not a field-valued share at this holder's point.",
                    responder, .unmasking)
            }
        }
    }

    // MARK: - Closing stages

    /// What closing a stage produced.
    public enum Step: Sendable {
        /// The requests that open the next stage, one per participant still taking part.
        case requests([SecAggMessage])
        /// The round's result.
        case finished(SecAggResult)
    }

    /// Ends the current stage: fixes its survivor set, checks the thresholds, and returns the
    /// next stage's requests or the result. Throws (and moves to ``State/aborted(_:)``) when the
    /// round cannot finish.
    public mutating func closeStage() throws(SecAggError) -> Step {
        guard let stage = currentStage else {
            if case .aborted(let error) = state { throw error }
            throw SecAggError(code: .roundFinished, message: "The round already finished.", roundID: roundID)
        }
        let completed = submitted.subtracting(stage == .maskedInputCollection ? [] : excluded)
        survivors[stage] = completed
        submitted = []
        // A holder caught with a corrupt share is excluded, but its verified shares still count.
        let contributing = stage == .unmasking ? completed.union(responses.keys) : completed
        do throws(SecAggError) {
            try checkThresholds(stage: stage, completed: contributing)
            switch stage {
            case .advertiseKeys:
                state = .collecting(.shareKeys)
                return .requests(shareKeysRequests())
            case .shareKeys:
                state = .collecting(.maskedInputCollection)
                let requests = maskedInputRequests()
                sharesBySender = [:]
                return .requests(requests)
            case .maskedInputCollection:
                if configuration.securityMode.isActive {
                    state = .collecting(.consistencyCheck)
                    let list = completed.sorted()
                    return .requests(
                        eligible(for: .consistencyCheck).sorted().map {
                            .consistencyCheckRequest(
                                ConsistencyCheckRequest(roundID: roundID, recipient: $0, survivors: list))
                        })
                }
                state = .collecting(.unmasking)
                return .requests(unmaskingRequests())
            case .consistencyCheck:
                state = .collecting(.unmasking)
                return .requests(unmaskingRequests())
            case .unmasking:
                let result = try unmask()
                state = .finished(result)
                return .finished(result)
            }
        } catch {
            state = .aborted(error)
            throw error
        }
    }

    /// The abort rule documented on the type.
    private func checkThresholds(stage: SecAggStage, completed: Set<UInt32>) throws(SecAggError) {
        guard completed.count >= threshold else {
            throw SecAggError(
                code: .tooFewSurvivors,
                message:
                    "Stage \(stage) ended with \(completed.count) participants, below the threshold t = \(threshold); "
                    + "the masks could not be removed, so round \(roundID) aborts.",
                stage: stage, roundID: roundID)
        }
        if case .complete = graph.kind { return }
        let inPlay = stage == .advertiseKeys ? completed : (survivors[.shareKeys] ?? [])
        for participant in inPlay.sorted() {
            var alive = completed.contains(participant) ? 1 : 0
            for neighbour in graph.neighbours(of: participant) where completed.contains(neighbour) { alive += 1 }
            guard alive >= threshold else {
                throw SecAggError(
                    code: .tooFewSurvivors,
                    message:
                        "After stage \(stage) only \(alive) of participant \(participant)'s \(graph.degree + 1) share holders "
                        + "remain, below the threshold t = \(threshold); its secrets could not be reconstructed, so round "
                        + "\(roundID) aborts.",
                    participant: participant, stage: stage, roundID: roundID)
            }
        }
    }

    /// The seed the ShareKeys requests reveal: the graph's, when the round committed to it.
    private var revealedSeed: [UInt8] {
        guard configuration.graphSeedCommitment != nil, case .harary(_, let seed) = graph.kind else { return [] }
        return seed
    }

    private func shareKeysRequests() -> [SecAggMessage] {
        let u1 = survivors[.advertiseKeys] ?? []
        return u1.sorted().map { id in
            let neighbours = graph.neighbours(of: id).compactMap { advertised[$0] }
            return .shareKeysRequest(
                ShareKeysRequest(roundID: roundID, recipient: id, neighbours: neighbours, graphSeed: revealedSeed))
        }
    }

    private func maskedInputRequests() -> [SecAggMessage] {
        let u2 = survivors[.shareKeys] ?? []
        return u2.sorted().map { id in
            var delivered: [EncryptedShare] = []
            var committed: [ShareCommitment] = []
            for neighbour in graph.neighbours(of: id) where u2.contains(neighbour) {
                if let ciphertext = sharesBySender[neighbour]?[id] {
                    delivered.append(EncryptedShare(peer: neighbour, ciphertext: ciphertext))
                    if let commitment = commitments[neighbour]?[id] { committed.append(commitment) }
                }
            }
            return .maskedInputRequest(
                MaskedInputRequest(roundID: roundID, recipient: id, shares: delivered, commitments: committed))
        }
    }

    private func unmaskingRequests() -> [SecAggMessage] {
        let u2 = survivors[.shareKeys] ?? []
        let u3 = survivors[.maskedInputCollection] ?? []
        let active = configuration.securityMode.isActive
        let fullList = u3.sorted()
        return eligible(for: .unmasking).sorted().map { id in
            let holders = graph.holders(of: id)
            let dropped = holders.filter { $0 != id && u2.contains($0) && !u3.contains($0) }
            let listed = active ? fullList : holders.filter { u3.contains($0) }
            var signed: [ParticipantSignature] = []
            if active {
                for holder in holders {
                    if let signature = signatures[holder] {
                        signed.append(ParticipantSignature(participant: holder, signature: signature))
                    }
                }
            }
            return .unmaskingRequest(
                UnmaskingRequest(
                    roundID: roundID, recipient: id, survivors: listed, dropped: dropped, signatures: signed))
        }
    }

    // MARK: - Unmasking

    private mutating func unmask() throws(SecAggError) -> SecAggResult {
        let u2 = survivors[.shareKeys] ?? []
        let u3 = survivors[.maskedInputCollection] ?? []
        let dropped = u2.subtracting(u3).sorted()
        let survivorsSorted = u3.sorted()

        // Gather shares per peer from the responders.
        var selfMaskShares: [UInt32: [ShamirShare]] = [:]
        var keyShares: [UInt32: [ShamirShare]] = [:]
        for responder in responses.keys.sorted() {
            guard let response = responses[responder] else { continue }
            for entry in response.selfMaskShares { selfMaskShares[entry.peer, default: []].append(entry.share) }
            for entry in response.keyShares { keyShares[entry.peer, default: []].append(entry.share) }
        }

        let clock = ContinuousClock()
        let reconstructionStart = clock.now
        var reconstructor = ShamirReconstructor()
        var work: [SecAggParallel.MaskTask] = []
        work.reserveCapacity(survivorsSorted.count + dropped.count * 8)
        for u in survivorsSorted {
            let seed = try reconstruct(u, .selfMask, from: selfMaskShares[u] ?? [], with: &reconstructor)
            work.append(.seed(SecretBytes(seed), .minus))
        }
        for v in dropped {
            let raw = try reconstruct(v, .key, from: keyShares[v] ?? [], with: &reconstructor)
            let key: X25519PrivateKey
            do {
                key = try X25519PrivateKey(rawRepresentation: raw)
            } catch {
                throw SecAggError(
                    code: .reconstructionFailed,
                    message: "The reconstructed masking key of participant \(v) is malformed.",
                    participant: v, stage: .unmasking, roundID: roundID, cause: error as? CryptoError)
            }
            guard key.publicKey == maskingKeys[v] else {
                throw SecAggError(
                    code: .reconstructionFailed,
                    message:
                        "The masking key reconstructed for dropped participant \(v) does not match the key it advertised: "
                        + "some returned shares are wrong.",
                    participant: v, stage: .unmasking, roundID: roundID)
            }
            for u in graph.neighbours(of: v) where u3.contains(u) {
                guard let peerKey = maskingKeys[u] else { continue }
                // u applied pairSign(own: u, peer: v); removing it applies the opposite sign.
                let applied = SecAggProtocol.pairSign(own: u, peer: v)
                work.append(.pair(key, peerKey, ownID: v, peerID: u, applied == .plus ? .minus : .plus))
            }
        }

        let removalStart = clock.now
        // The round ends here (finished or aborted) and the running sum is not read again: taken
        // out, it is unmasked in place instead of copied (one model-sized vector less at the
        // coordinator's peak).
        var sum = runningSum
        runningSum = []
        try SecAggParallel.removeMasks(work, from: &sum, roundID: roundID, workerCount: workerCount)
        let statistics = UnmaskingStatistics(
            secretsReconstructed: survivorsSorted.count + dropped.count,
            selfMasksRemoved: survivorsSorted.count,
            pairMasksRemoved: work.count - survivorsSorted.count,
            keystreamWords: work.count * configuration.vectorLength,
            reconstructionTime: removalStart - reconstructionStart,
            maskRemovalTime: clock.now - removalStart)

        var counts: [SecAggStage: Int] = [:]
        for (stage, set) in survivors { counts[stage] = set.count }
        counts[.unmasking] = responses.count
        return SecAggResult(
            roundID: roundID, sum: sum, survivors: survivorsSorted, dropped: dropped, stageCounts: counts,
            statistics: statistics, corruptShares: corruptShares)
    }

    /// Rebuilds `peer`'s secret of `kind` from verified shares, or aborts naming the holders
    /// whose corrupt shares of it were discarded.
    private func reconstruct(
        _ peer: UInt32, _ kind: ShareKind, from shares: [ShamirShare], with reconstructor: inout ShamirReconstructor
    ) throws(SecAggError) -> [UInt8] {
        let what = kind == .selfMask ? "self-mask seed" : "masking key"
        guard shares.count >= threshold else {
            let culprits = corruptShares.filter { $0.owner == peer && $0.kind == kind }.map(\.holder).sorted()
            let discarded =
                culprits.isEmpty
                ? ""
                : " (corrupt shares from participants \(culprits.map(String.init).joined(separator: ", ")) were discarded)"
            throw SecAggError(
                code: .tooFewSurvivors,
                message:
                    "Only \(shares.count) verified shares of participant \(peer)'s \(what) were returned\(discarded), below "
                    + "the threshold t = \(threshold); round \(roundID) aborts.",
                participant: peer, stage: .unmasking, roundID: roundID)
        }
        guard
            let secret = reconstructor.reconstruct(
                shares, threshold: threshold, secretLength: SecAggProtocol.secretLength)
        else {
            throw SecAggError(
                code: .reconstructionFailed,
                message: "The shares of participant \(peer)'s \(what) do not reconstruct a secret.",
                participant: peer, stage: .unmasking, roundID: roundID)
        }
        return secret
    }
}
