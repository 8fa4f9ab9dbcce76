public import TesseraCrypto

/// One participant's side of a secure-aggregation round (Bonawitz et al. 2017, Fig. 4), as a
/// transport-free state machine: each method takes the server's request for a stage and
/// returns the participant's message for it.
///
/// Per round the participant holds two fresh X25519 key pairs: `c` (its pairwise keys encrypt
/// the Shamir shares relayed by the server) and `s` (its pairwise keys seed the pairwise
/// masks), and a random self-mask seed `b`. It Shamir-shares `b` and `s_sk` among its share
/// holders (its neighbours and itself) with threshold t, then sends
///
///     y_u = x_u + PRG(b_u) + Σ_{v ∈ U2∩N(u), v<u} PRG(s_uv) − Σ_{v ∈ U2∩N(u), v>u} PRG(s_uv)   (mod 2^32)
///
/// ## What an honest client refuses
///
/// The server learns b_v of survivors and s_sk_v of dropped participants. If it ever learned
/// both secrets of one participant it could remove every mask from that participant's y_v.
/// So the client refuses (throws ``SecAggError/Code-swift.struct/inconsistentRequest`` and stops
/// taking part) an unmasking request that names a peer as both survivor and dropped, or whose
/// survivor list contradicts what the client saw (a survivor that never sent it shares, a
/// "dropped" peer that is not a neighbour, itself not among the survivors, fewer than t
/// survivors), or, in the active setting, differs from the list it signed or lacks t valid
/// signatures. Once a request is refused or a stage fails, the client answers nothing more.
///
/// Individual bad shares (tampered or misaddressed ciphertexts, or shares that do not match the
/// commitment their owner published) are not fatal: they are recorded in ``rejectedShares`` and
/// the client simply does not hold that peer's shares, so it can never be blamed for them.
///
/// ## Share commitments
///
/// At ShareKeys the client commits to every share it deals (``ShareCommitment``, signed in the
/// active setting) and at Unmasking it returns each share with its commitment nonce, so the
/// server can check every returned share and name a holder that corrupts one.
public struct SecAggClient: Sendable {
    /// This participant's id (also its Shamir evaluation point).
    public let id: UInt32
    /// The round configuration (its graph seed filled in at ShareKeys when the round committed
    /// to one).
    public private(set) var configuration: SecAggConfiguration

    /// What the client expects next.
    public enum Progress: Sendable, Hashable {
        case advertiseKeys
        case shareKeys
        case maskedInput
        case consistencyCheck
        case unmasking
        case finished
        /// A request was refused or a stage failed; the client takes no further part.
        case aborted
    }

    /// The client's position in the protocol.
    public private(set) var progress: Progress = .advertiseKeys
    /// Shares from peers that were rejected (tampered, misaddressed, malformed), with the
    /// offending peer and stage. The round goes on without them.
    public private(set) var rejectedShares: [SecAggError] = []

    private let encryptionKey: X25519PrivateKey
    private let maskingKey: X25519PrivateKey
    private let selfMaskSeed: SecretBytes
    private let signingKey: Ed25519PrivateKey?

    /// Neighbours' advertised public keys (the neighbours in U1).
    private var neighbourKeys: [UInt32: (encryption: X25519PublicKey, masking: X25519PublicKey)] = [:]
    /// Derived pairwise share-encryption keys, reused to open the shares received later.
    private var shareKeys: [UInt32: SecretBytes] = [:]
    /// Shares this client holds, with their commitment nonces, by the peer whose secret they
    /// share (including its own).
    private var heldSelfMaskShares: [UInt32: CommittedShare] = [:]
    private var heldKeyShares: [UInt32: CommittedShare] = [:]
    /// Neighbours that completed ShareKeys (the senders of the delivered shares): the client's view of U2.
    private var sharingNeighbours: Set<UInt32> = []
    /// The survivor list signed in ConsistencyCheck (active setting).
    private var signedSurvivors: [UInt32]?
    /// A masked input computed before its request (``prepareMaskedInput(_:)``): the input, the
    /// masked vector, and the neighbours whose pairwise masks are in it.
    private var prepared: (input: [UInt32], masked: [UInt32], peers: Set<UInt32>)?

    /// Creates the participant's state for one round, drawing its key pairs and self-mask seed
    /// from `generator` (pass `SecureRandomGenerator` in production; a seeded generator only in
    /// tests and simulations).
    ///
    /// - Parameter signingKey: the participant's long-term Ed25519 key; required in the active
    ///   setting, where its public key must be the configuration's verification key for `id`.
    public init<G: RandomNumberGenerator>(
        id: UInt32, configuration: SecAggConfiguration, signingKey: Ed25519PrivateKey? = nil, using generator: inout G
    ) throws(SecAggError) {
        guard configuration.graph.contains(id) else {
            throw SecAggError(
                code: .unknownParticipant, message: "Participant \(id) is not in the round's roster.", participant: id,
                roundID: configuration.roundID)
        }
        if configuration.securityMode.isActive {
            guard let signingKey, signingKey.publicKey == configuration.verificationKey(of: id) else {
                throw SecAggError(
                    code: .invalidConfiguration,
                    message:
                        "The active setting needs participant \(id)'s signing key, matching its verification key in the configuration.",
                    participant: id, roundID: configuration.roundID)
            }
        }
        self.id = id
        self.configuration = configuration
        self.signingKey = signingKey
        self.encryptionKey = X25519PrivateKey(using: &generator)
        self.maskingKey = X25519PrivateKey(using: &generator)
        var words = (generator.next(), generator.next(), generator.next(), generator.next())
        self.selfMaskSeed = withUnsafeBytes(of: &words) { raw in
            SecretBytes(count: SecAggProtocol.secretLength) { $0.copyMemory(from: raw) }
        }
        words = (0, 0, 0, 0)
    }

    /// ``init(id:configuration:signingKey:using:)`` with the operating system's CSPRNG.
    public init(
        id: UInt32, configuration: SecAggConfiguration, signingKey: Ed25519PrivateKey? = nil
    ) throws(SecAggError) {
        var generator = SecureRandomGenerator()
        try self.init(id: id, configuration: configuration, signingKey: signingKey, using: &generator)
    }

    private var roundID: UInt64 { configuration.roundID }
    private var threshold: Int { configuration.threshold }

    // MARK: - AdvertiseKeys

    /// Stage 1: the two public keys, signed in the active setting.
    public mutating func advertiseKeys() throws(SecAggError) -> AdvertiseKeysMessage {
        try expect(.advertiseKeys, stage: .advertiseKeys)
        let c = encryptionKey.publicKey.rawRepresentation
        let s = maskingKey.publicKey.rawRepresentation
        var signature: [UInt8] = []
        if let signingKey {
            signature = signingKey.signature(
                for: SecAggProtocol.advertisedKeysMessage(
                    roundID: roundID, participant: id, encryptionKey: c, maskingKey: s))
        }
        progress = .shareKeys
        return AdvertiseKeysMessage(
            roundID: roundID, sender: id,
            keys: AdvertisedKeys(participant: id, encryptionKey: c, maskingKey: s, signature: signature))
    }

    // MARK: - ShareKeys

    /// Stage 2: Shamir-shares `b` and `s_sk` among the neighbours listed in `request` and
    /// itself, encrypts each neighbour's pair of shares (with their commitment nonces) under the
    /// pairwise c-key, and commits to every holder's shares.
    public mutating func shareKeys<G: RandomNumberGenerator>(
        _ request: ShareKeysRequest, using generator: inout G
    ) throws(SecAggError) -> ShareKeysMessage {
        try expect(.shareKeys, stage: .shareKeys)
        do throws(SecAggError) {
            try checkHeader(roundID: request.roundID, recipient: request.recipient, stage: .shareKeys)
            if configuration.graphSeedCommitment != nil {
                configuration = try configuration.revealingGraphSeed(request.graphSeed)
            } else if !request.graphSeed.isEmpty {
                throw refusal(
                    "The server revealed a graph seed, but this round committed to none.", peer: nil, stage: .shareKeys)
            }
            var keys: [UInt32: (encryption: X25519PublicKey, masking: X25519PublicKey)] = [:]
            for advertised in request.neighbours {
                let peer = advertised.participant
                guard configuration.graph.areNeighbours(id, peer) else {
                    throw refusal(
                        "The server listed participant \(peer) as a neighbour, but it is not one in this round's graph.",
                        peer: peer, stage: .shareKeys)
                }
                guard keys[peer] == nil else {
                    throw refusal("The server listed neighbour \(peer) twice.", peer: peer, stage: .shareKeys)
                }
                if let verification = configuration.verificationKey(of: peer) {
                    let message = SecAggProtocol.advertisedKeysMessage(
                        roundID: roundID, participant: peer, encryptionKey: advertised.encryptionKey,
                        maskingKey: advertised.maskingKey)
                    guard verification.isValidSignature(advertised.signature, for: message) else {
                        throw SecAggError(
                            code: .invalidSignature,
                            message:
                                "Neighbour \(peer)'s advertised keys do not carry its valid signature: refusing keys the server may have substituted.",
                            participant: peer, stage: .shareKeys, roundID: roundID)
                    }
                }
                guard let c = try? X25519PublicKey(rawRepresentation: advertised.encryptionKey),
                    let s = try? X25519PublicKey(rawRepresentation: advertised.maskingKey)
                else {
                    throw SecAggError(
                        code: .invalidPublicKey, message: "Neighbour \(peer)'s advertised public keys are malformed.",
                        participant: peer, stage: .shareKeys, roundID: roundID)
                }
                keys[peer] = (c, s)
            }
            let holders = (Array(keys.keys) + [id]).sorted()
            guard holders.count >= threshold else {
                throw SecAggError(
                    code: .tooFewSurvivors,
                    message:
                        "Only \(holders.count) share holders (neighbours that advertised keys, plus this participant) remain; "
                        + "the threshold is \(threshold), so the shares could never be reconstructed.",
                    participant: id, stage: .shareKeys, roundID: roundID)
            }

            let selfMaskShares: [ShamirShare]
            let keyShares: [ShamirShare]
            do {
                let b = selfMaskSeed.withUnsafeBytes { Array($0) }
                let s = maskingKey.rawSecret.withUnsafeBytes { Array($0) }
                selfMaskShares = try Shamir.split(secret: b, threshold: threshold, points: holders, using: &generator)
                keyShares = try Shamir.split(secret: s, threshold: threshold, points: holders, using: &generator)
            } catch {
                throw SecAggError(
                    code: .invalidConfiguration, message: "Shamir sharing failed.", participant: id, stage: .shareKeys,
                    roundID: roundID, cause: error as? CryptoError)
            }

            var outgoing: [EncryptedShare] = []
            outgoing.reserveCapacity(keys.count)
            var commitments: [ShareCommitment] = []
            commitments.reserveCapacity(holders.count)
            var derivedKeys: [UInt32: SecretBytes] = [:]
            for (index, holder) in holders.enumerated() {
                let selfMask = CommittedShare(share: selfMaskShares[index], nonce: Self.nonce(using: &generator))
                let key = CommittedShare(share: keyShares[index], nonce: Self.nonce(using: &generator))
                commitments.append(
                    ShareCommitment(
                        owner: id, holder: holder,
                        selfMask: SecAggProtocol.shareCommitment(
                            roundID: roundID, owner: id, holder: holder, kind: .selfMask, share: selfMask.share,
                            nonce: selfMask.nonce),
                        key: SecAggProtocol.shareCommitment(
                            roundID: roundID, owner: id, holder: holder, kind: .key, share: key.share, nonce: key.nonce)
                    ))
                if holder == id {
                    heldSelfMaskShares[id] = selfMask
                    heldKeyShares[id] = key
                    continue
                }
                guard let peerKeys = keys[holder] else { continue }
                let plaintext = SecAggProtocol.sharePlaintext(
                    sender: id, recipient: holder, selfMask: selfMask, key: key)
                do {
                    let key = try SecAggProtocol.shareKey(
                        own: encryptionKey, peer: peerKeys.encryption, roundID: roundID, ownID: id, peerID: holder)
                    derivedKeys[holder] = key
                    let ciphertext = try AEAD.seal(
                        plaintext, key: key,
                        associatedData: SecAggProtocol.shareAssociatedData(
                            roundID: roundID, sender: id, recipient: holder))
                    outgoing.append(EncryptedShare(peer: holder, ciphertext: ciphertext))
                } catch {
                    throw SecAggError(
                        code: .invalidPublicKey,
                        message:
                            "Cannot agree a share-encryption key with neighbour \(holder): its encryption key is a low-order point.",
                        participant: holder, stage: .shareKeys, roundID: roundID, cause: error as? CryptoError)
                }
            }
            var commitmentSignature: [UInt8] = []
            if let signingKey {
                commitmentSignature = signingKey.signature(
                    for: SecAggProtocol.shareCommitmentsMessage(roundID: roundID, owner: id, commitments: commitments))
            }
            neighbourKeys = keys
            shareKeys = derivedKeys
            progress = .maskedInput
            return ShareKeysMessage(
                roundID: roundID, sender: id, shares: outgoing, commitments: commitments,
                commitmentSignature: commitmentSignature)
        } catch {
            progress = .aborted
            throw error
        }
    }

    /// A commitment nonce from `generator` (the CSPRNG in production).
    private static func nonce<G: RandomNumberGenerator>(using generator: inout G) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(SecAggProtocol.commitmentNonceLength)
        while bytes.count < SecAggProtocol.commitmentNonceLength {
            withUnsafeBytes(of: generator.next().littleEndian) { bytes.append(contentsOf: $0) }
        }
        return Array(bytes.prefix(SecAggProtocol.commitmentNonceLength))
    }

    /// ``shareKeys(_:using:)`` with the operating system's CSPRNG for the Shamir coefficients.
    public mutating func shareKeys(_ request: ShareKeysRequest) throws(SecAggError) -> ShareKeysMessage {
        var generator = SecureRandomGenerator()
        return try shareKeys(request, using: &generator)
    }

    // MARK: - MaskedInputCollection

    /// Stage 3: opens the shares addressed to this participant, then masks `input` with its
    /// self mask and the pairwise masks of every neighbour that completed ShareKeys.
    ///
    /// `input` must have ``SecAggConfiguration/vectorLength`` words (a ``QuantizationCodec``
    /// output). The mask is added in place, chunk by chunk, without materialising any mask.
    public mutating func maskedInput(
        _ request: MaskedInputRequest, input: [UInt32]
    ) throws(SecAggError) -> MaskedInputMessage {
        try expect(.maskedInput, stage: .maskedInputCollection)
        do throws(SecAggError) {
            try checkHeader(roundID: request.roundID, recipient: request.recipient, stage: .maskedInputCollection)
            guard input.count == configuration.vectorLength else {
                throw SecAggError(
                    code: .wrongVectorLength,
                    message:
                        "The input has \(input.count) words; this round aggregates vectors of \(configuration.vectorLength).",
                    participant: id, stage: .maskedInputCollection, roundID: roundID)
            }
            var commitments: [UInt32: ShareCommitment] = [:]
            for commitment in request.commitments {
                guard commitment.holder == id, commitments.updateValue(commitment, forKey: commitment.owner) == nil
                else {
                    throw refusal(
                        "The server relayed a second commitment of participant \(commitment.owner), or one for another holder.",
                        peer: commitment.owner, stage: .maskedInputCollection)
                }
            }
            var senders: Set<UInt32> = []
            for envelope in request.shares {
                let peer = envelope.peer
                guard neighbourKeys[peer] != nil else {
                    throw refusal(
                        "The server delivered shares from participant \(peer), which is not a neighbour that advertised keys.",
                        peer: peer, stage: .maskedInputCollection)
                }
                guard senders.insert(peer).inserted else {
                    throw refusal(
                        "The server delivered shares from neighbour \(peer) twice.", peer: peer,
                        stage: .maskedInputCollection)
                }
                openShare(envelope, commitment: commitments[peer])
            }
            guard senders.count + 1 >= threshold else {
                throw SecAggError(
                    code: .tooFewSurvivors,
                    message:
                        "Only \(senders.count) neighbours completed ShareKeys (plus this participant: \(senders.count + 1) holders); "
                        + "the threshold is \(threshold).",
                    participant: id, stage: .maskedInputCollection, roundID: roundID)
            }

            var masked: [UInt32]
            if var ahead = prepared.take(), ahead.input == input, senders.isSubset(of: ahead.peers) {
                // Masked ahead with every neighbour that advertised keys: take back the masks of
                // those that did not complete ShareKeys, so the vector is exactly the one below.
                masked = ahead.masked
                ahead.masked = []  // `masked` is now the only reference: taking masks back does not copy it
                let absent = ahead.peers.subtracting(senders).sorted()
                if !absent.isEmpty { try applyMasks(self: false, peers: absent, negated: true, to: &masked) }
            } else {
                masked = input
                try applyMasks(self: true, peers: senders.sorted(), negated: false, to: &masked)
            }
            sharingNeighbours = senders
            progress = configuration.securityMode.isActive ? .consistencyCheck : .unmasking
            return MaskedInputMessage(roundID: roundID, sender: id, maskedInput: masked)
        } catch {
            progress = .aborted
            prepared = nil
            throw error
        }
    }

    /// Stage 3 ahead of its request: masks `input` with the self mask and the pairwise masks of
    /// every neighbour that advertised keys, so that when the request comes
    /// ``maskedInput(_:input:)`` has only to take back the masks of neighbours that did not
    /// complete ShareKeys (usually none) and the participant can send at once.
    ///
    /// Mask expansion is most of a participant's work in a secure round ((k + 1) keystreams of
    /// the model's size), and the coordinator asks for masked inputs a few at a time (upload
    /// slots): computed on request, every wave of uploads waited for it. Nothing is sent and no
    /// state of the protocol changes; if anything is off (wrong stage, wrong length, a key that
    /// cannot be agreed with) this returns `false` and the request computes the masks as before.
    /// The result is used only for the same `input`.
    @discardableResult
    public mutating func prepareMaskedInput(_ input: [UInt32]) -> Bool {
        guard progress == .maskedInput, input.count == configuration.vectorLength else { return false }
        if let prepared, prepared.input == input { return true }
        let peers = Set(neighbourKeys.keys)
        var masked = input
        do {
            try applyMasks(self: true, peers: peers.sorted(), negated: false, to: &masked)
        } catch {
            return false
        }
        prepared = (input, masked, peers)
        return true
    }

    /// Adds to `vector` (or, `negated`, subtracts from it) the self mask if `self` is set and the
    /// pairwise mask of each of `peers`, each with its pair sign, in one pass.
    private func applyMasks(
        self includeSelf: Bool, peers: [UInt32], negated: Bool, to vector: inout [UInt32]
    )
        throws(SecAggError)
    {
        var seeds: [SecretBytes] = []
        var signs: [MaskPRG.Sign] = []
        seeds.reserveCapacity(peers.count + 1)
        signs.reserveCapacity(peers.count + 1)
        if includeSelf {
            seeds.append(selfMaskSeed)
            signs.append(.plus)
        }
        for peer in peers {
            guard let keys = neighbourKeys[peer] else { continue }
            do {
                seeds.append(
                    try SecAggProtocol.maskSeed(
                        own: maskingKey, peer: keys.masking, roundID: roundID, ownID: id, peerID: peer))
            } catch {
                throw SecAggError(
                    code: .invalidPublicKey,
                    message: "Cannot agree a mask seed with neighbour \(peer): its masking key is a low-order point.",
                    participant: peer, stage: .maskedInputCollection, roundID: roundID, cause: error as? CryptoError)
            }
            signs.append(SecAggProtocol.pairSign(own: id, peer: peer))
        }
        if negated { signs = signs.map { $0 == .plus ? .minus : .plus } }
        do {
            try vector.withUnsafeMutableBufferPointer { buffer in
                try MaskPRG.add(seeds: seeds, signs: signs, into: buffer)
            }
        } catch {
            throw SecAggError(
                code: .invalidConfiguration, message: "Mask expansion failed.", participant: id,
                stage: .maskedInputCollection, roundID: roundID, cause: error as? CryptoError)
        }
    }

    /// Decrypts and checks one delivered share envelope against its owner's commitment; a bad
    /// one is recorded, not fatal.
    private mutating func openShare(_ envelope: EncryptedShare, commitment: ShareCommitment?) {
        let peer = envelope.peer
        let stage = SecAggStage.maskedInputCollection
        guard let key = shareKeys[peer] else {
            rejectedShares.append(
                SecAggError(
                    code: .shareDecryptionFailed, message: "No share key was agreed with neighbour \(peer).",
                    participant: peer, stage: stage, roundID: roundID))
            return
        }
        let plaintext: [UInt8]
        do {
            plaintext = try AEAD.open(
                envelope.ciphertext, key: key,
                associatedData: SecAggProtocol.shareAssociatedData(roundID: roundID, sender: peer, recipient: id))
        } catch {
            rejectedShares.append(
                SecAggError(
                    code: .shareDecryptionFailed,
                    message:
                        "The encrypted share from neighbour \(peer) failed authentication (tampered, truncated, or meant for "
                        + "another participant or round); this participant will not hold \(peer)'s shares.",
                    participant: peer, stage: stage, roundID: roundID, cause: error as? CryptoError))
            return
        }
        do throws(SecAggError) {
            let parsed = try SecAggProtocol.parseSharePlaintext(plaintext)
            guard parsed.sender == peer, parsed.recipient == id else {
                throw SecAggError(
                    code: .misaddressedShare,
                    message:
                        "The share delivered as from \(peer) to \(id) says it is from \(parsed.sender) to \(parsed.recipient).",
                    participant: peer, stage: stage, roundID: roundID)
            }
            let expected = SecAggProtocol.shareElementCount
            guard parsed.selfMask.share.x == id, parsed.key.share.x == id,
                parsed.selfMask.share.values.count == expected, parsed.key.share.values.count == expected
            else {
                throw SecAggError(
                    code: .invalidShare,
                    message: "The shares from neighbour \(peer) are not evaluated at this participant's point.",
                    participant: peer, stage: stage, roundID: roundID)
            }
            guard let commitment, opens(commitment, kind: .selfMask, with: parsed.selfMask, owner: peer),
                opens(commitment, kind: .key, with: parsed.key, owner: peer)
            else {
                throw SecAggError(
                    code: .shareCommitmentMismatch,
                    message:
                        "The shares from neighbour \(peer) do not match the commitment it published at ShareKeys (or none "
                        + "was relayed); this participant will not hold \(peer)'s shares.",
                    participant: peer, stage: stage, roundID: roundID)
            }
            heldSelfMaskShares[peer] = parsed.selfMask
            heldKeyShares[peer] = parsed.key
        } catch {
            var error = error
            error.participant = peer
            error.stage = stage
            error.roundID = roundID
            rejectedShares.append(error)
        }
    }

    private func opens(
        _ commitment: ShareCommitment, kind: ShareKind, with held: CommittedShare, owner: UInt32
    ) -> Bool {
        SecAggProtocol.shareCommitment(
            roundID: roundID, owner: owner, holder: id, kind: kind, share: held.share, nonce: held.nonce)
            == commitment.digest(of: kind)
    }

    // MARK: - ConsistencyCheck

    /// Stage 4 (active setting): signs the survivor list after checking it is consistent with
    /// what this participant saw.
    public mutating func consistencySignature(
        _ request: ConsistencyCheckRequest
    ) throws(SecAggError) -> ConsistencySignatureMessage {
        try expect(.consistencyCheck, stage: .consistencyCheck)
        do throws(SecAggError) {
            try checkHeader(roundID: request.roundID, recipient: request.recipient, stage: .consistencyCheck)
            try checkSurvivors(request.survivors, stage: .consistencyCheck)
            guard let signingKey else {
                throw SecAggError(
                    code: .invalidConfiguration, message: "No signing key for the active setting.", participant: id,
                    stage: .consistencyCheck, roundID: roundID)
            }
            let signature = signingKey.signature(
                for: SecAggProtocol.survivorListMessage(roundID: roundID, survivors: request.survivors))
            signedSurvivors = request.survivors
            progress = .unmasking
            return ConsistencySignatureMessage(roundID: roundID, sender: id, signature: signature)
        } catch {
            progress = .aborted
            throw error
        }
    }

    // MARK: - Unmasking

    /// Stage 5: returns the b-shares of surviving peers and the s-key shares of dropped peers,
    /// after refusing any request that could reveal both secrets of one peer.
    public mutating func unmask(_ request: UnmaskingRequest) throws(SecAggError) -> UnmaskingResponseMessage {
        try expect(.unmasking, stage: .unmasking)
        do throws(SecAggError) {
            try checkHeader(roundID: request.roundID, recipient: request.recipient, stage: .unmasking)
            // The one rule that protects every peer: never both shares of the same peer.
            let survivorSet = Set(request.survivors)
            for peer in request.dropped where survivorSet.contains(peer) {
                throw refusal(
                    "The server asked for both the self-mask share and the key share of participant \(peer) (listed as survivor "
                        + "and as dropped); revealing both would unmask its input.",
                    peer: peer, stage: .unmasking)
            }
            if configuration.securityMode.isActive {
                guard let signed = signedSurvivors, signed == request.survivors else {
                    throw refusal(
                        "The survivor list differs from the one this participant signed in ConsistencyCheck.",
                        peer: nil,
                        stage: .unmasking)
                }
                try checkSignatures(request.signatures, survivors: request.survivors)
            } else {
                try checkSurvivors(request.survivors, stage: .unmasking)
            }
            for peer in request.dropped {
                guard peer != id else {
                    throw refusal("The server lists this participant itself as dropped.", peer: peer, stage: .unmasking)
                }
                guard sharingNeighbours.contains(peer) else {
                    throw refusal(
                        "The server lists participant \(peer) as dropped, but it is not a neighbour that completed ShareKeys.",
                        peer: peer, stage: .unmasking)
                }
            }

            var selfMaskShares: [PeerShare] = []
            for peer in request.survivors where peer == id || sharingNeighbours.contains(peer) {
                if let held = heldSelfMaskShares[peer] {
                    selfMaskShares.append(PeerShare(peer: peer, share: held.share, nonce: held.nonce))
                }
            }
            var keyShares: [PeerShare] = []
            for peer in request.dropped {
                if let held = heldKeyShares[peer] {
                    keyShares.append(PeerShare(peer: peer, share: held.share, nonce: held.nonce))
                }
            }
            progress = .finished
            return UnmaskingResponseMessage(
                roundID: roundID, sender: id, selfMaskShares: selfMaskShares, keyShares: keyShares)
        } catch {
            progress = .aborted
            throw error
        }
    }

    /// Answers any server request with the matching client message (the generic entry point a
    /// transport uses). `input` is only read for ``MaskedInputRequest``.
    public mutating func respond<G: RandomNumberGenerator>(
        to message: SecAggMessage, input: [UInt32], using generator: inout G
    ) throws(SecAggError) -> SecAggMessage {
        switch message {
        case .shareKeysRequest(let request): return .shareKeys(try shareKeys(request, using: &generator))
        case .maskedInputRequest(let request): return .maskedInput(try maskedInput(request, input: input))
        case .consistencyCheckRequest(let request): return .consistencySignature(try consistencySignature(request))
        case .unmaskingRequest(let request): return .unmaskingResponse(try unmask(request))
        default:
            throw SecAggError(
                code: .unexpectedStage,
                message: "A participant only answers server requests, not \(message.stage) client messages.",
                participant: id, stage: message.stage, roundID: roundID)
        }
    }

    // MARK: - Checks

    private func expect(_ wanted: Progress, stage: SecAggStage) throws(SecAggError) {
        guard progress == wanted else {
            throw SecAggError(
                code: progress == .aborted ? .roundAborted : .unexpectedStage,
                message: progress == .aborted
                    ? "This participant already left the round after a refusal or failure; it answers nothing more."
                    : "A \(stage) request arrived, but this participant expects \(progress).",
                participant: id, stage: stage, roundID: roundID)
        }
    }

    private func checkHeader(roundID requestRound: UInt64, recipient: UInt32, stage: SecAggStage) throws(SecAggError) {
        guard requestRound == roundID else {
            throw SecAggError(
                code: .wrongRound,
                message: "The request belongs to round \(requestRound), not \(roundID) (late or replayed).",
                participant: id, stage: stage, roundID: roundID)
        }
        guard recipient == id else {
            throw refusal(
                "The request is addressed to participant \(recipient), not to \(id).", peer: recipient, stage: stage)
        }
    }

    private func refusal(_ message: String, peer: UInt32?, stage: SecAggStage) -> SecAggError {
        SecAggError(code: .inconsistentRequest, message: message, participant: peer, stage: stage, roundID: roundID)
    }

    /// A survivor list must contain this participant, only roster members, only neighbours
    /// that completed ShareKeys (a neighbour that never shared cannot have masked with us),
    /// and at least t of this participant's holders.
    private func checkSurvivors(_ survivors: [UInt32], stage: SecAggStage) throws(SecAggError) {
        var previous: UInt32 = 0
        var holdersAlive = 0
        var includesSelf = false
        for peer in survivors {
            guard peer > previous else {
                throw refusal("The survivor list is not sorted without duplicates.", peer: peer, stage: stage)
            }
            previous = peer
            guard configuration.graph.contains(peer) else {
                throw refusal(
                    "The survivor list names participant \(peer), which is not in the roster.", peer: peer, stage: stage
                )
            }
            if peer == id {
                includesSelf = true
                holdersAlive += 1
            } else if configuration.graph.areNeighbours(id, peer) {
                guard sharingNeighbours.contains(peer) else {
                    throw refusal(
                        "The survivor list names neighbour \(peer), which never completed ShareKeys with this participant.",
                        peer: peer, stage: stage)
                }
                holdersAlive += 1
            }
        }
        guard includesSelf else {
            throw refusal(
                "The survivor list omits this participant although it sent its masked input.", peer: id, stage: stage)
        }
        guard holdersAlive >= threshold else {
            throw SecAggError(
                code: .tooFewSurvivors,
                message:
                    "Only \(holdersAlive) of this participant's share holders are listed as survivors; the threshold is \(threshold). "
                    + "Answering could expose too small a sum.",
                participant: id, stage: stage, roundID: roundID)
        }
    }

    /// Active setting: at least t distinct holders of this participant, listed as survivors,
    /// must have signed the very survivor list this participant signed.
    private func checkSignatures(_ signatures: [ParticipantSignature], survivors: [UInt32]) throws(SecAggError) {
        let message = SecAggProtocol.survivorListMessage(roundID: roundID, survivors: survivors)
        let survivorSet = Set(survivors)
        var valid: Set<UInt32> = []
        for entry in signatures {
            let signer = entry.participant
            guard signer == id || configuration.graph.areNeighbours(id, signer), survivorSet.contains(signer) else {
                continue
            }
            guard let key = configuration.verificationKey(of: signer),
                key.isValidSignature(entry.signature, for: message)
            else {
                throw SecAggError(
                    code: .invalidSignature,
                    message: "Participant \(signer)'s signature on the survivor list does not verify.",
                    participant: signer, stage: .unmasking, roundID: roundID)
            }
            valid.insert(signer)
        }
        guard valid.count >= threshold else {
            throw SecAggError(
                code: .tooFewSurvivors,
                message:
                    "Only \(valid.count) of this participant's holders signed the survivor list; the threshold is \(threshold).",
                participant: id, stage: .unmasking, roundID: roundID)
        }
    }
}
