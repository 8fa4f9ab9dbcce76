public import TesseraCrypto

/// Everything the server and every client of one round must agree on before it starts.
///
/// The configuration is public information: it is what the coordinator announces when it
/// opens the round. Both sides validate it the same way, so a participant never runs a round
/// whose threshold or graph the server could not honour.
public struct SecAggConfiguration: Sendable {
    /// Semi-honest or active (with signatures and the ConsistencyCheck stage).
    public enum SecurityMode: Sendable {
        /// Bonawitz et al.'s honest-but-curious server: four stages, no signatures.
        case semiHonest
        /// The active setting: every participant signs its advertised keys and the survivor list
        /// with its long-term Ed25519 key, and verifies its peers' signatures with
        /// `verificationKeys` (which must cover the whole roster). This stops the server from
        /// substituting keys and from telling participants different survivor lists.
        case active(verificationKeys: [UInt32: Ed25519PublicKey])

        public var isActive: Bool {
            if case .active = self { return true }
            return false
        }
    }

    /// The round id; every message carries it and every KDF context binds it.
    public let roundID: UInt64
    /// Who shares with whom (includes the roster).
    public let graph: NeighbourGraph
    /// The Shamir threshold t: any t holders of a participant's shares can reconstruct its
    /// secrets, fewer learn nothing. Every stage needs at least t survivors (globally and in
    /// every neighbourhood) for the round to finish.
    public let threshold: Int
    /// Words per input vector, including the weight coordinate of ``QuantizationCodec``.
    public let vectorLength: Int
    /// Semi-honest or active.
    public let securityMode: SecurityMode
    /// SHA-256 of the Harary graph's seed, when the server commits to the seed before the keys
    /// are advertised and reveals it in ``ShareKeysRequest/graphSeed``. A client's configuration
    /// then holds a placeholder seed until ``revealingGraphSeed(_:)``: before ShareKeys only the
    /// roster is used, never the neighbourhoods.
    public let graphSeedCommitment: [UInt8]?

    /// Validates and builds a configuration.
    ///
    /// - Parameters:
    ///   - roundID: the round id.
    ///   - participants: the roster (distinct, non-zero ids; they double as Shamir evaluation points).
    ///   - graph: the neighbourhood graph shape (``NeighbourGraph/Kind``).
    ///   - threshold: `1 ≤ t ≤ degree + 1` (a participant's holders are its neighbours and itself).
    ///   - vectorLength: at least 1.
    ///   - securityMode: ``SecurityMode/semiHonest`` by default.
    public init(
        roundID: UInt64,
        participants: [UInt32],
        graph: NeighbourGraph.Kind = .complete,
        threshold: Int,
        vectorLength: Int,
        securityMode: SecurityMode = .semiHonest,
        graphSeedCommitment: [UInt8]? = nil
    ) throws(SecAggError) {
        let graph = try NeighbourGraph(participants: participants, kind: graph)
        guard (1...(graph.degree + 1)).contains(threshold) else {
            throw SecAggError(
                code: .invalidConfiguration,
                message:
                    "Threshold t = \(threshold) must lie in 1...\(graph.degree + 1): each participant has \(graph.degree) "
                    + "neighbours plus itself to hold its shares.",
                roundID: roundID)
        }
        guard vectorLength >= 1 else {
            throw SecAggError(
                code: .invalidConfiguration, message: "The vector length must be at least 1, got \(vectorLength).",
                roundID: roundID)
        }
        if case .active(let keys) = securityMode {
            for id in graph.participants where keys[id] == nil {
                throw SecAggError(
                    code: .invalidConfiguration,
                    message:
                        "The active setting needs an Ed25519 verification key for every participant; participant \(id) has none.",
                    participant: id, roundID: roundID)
            }
        }
        self.roundID = roundID
        self.graph = graph
        self.threshold = threshold
        self.vectorLength = vectorLength
        self.securityMode = securityMode
        if let graphSeedCommitment {
            guard case .harary = graph.kind, graphSeedCommitment.count == SHA256.byteCount else {
                throw SecAggError(
                    code: .invalidConfiguration,
                    message: "A graph seed commitment is a 32-byte SHA-256 digest and applies to Harary graphs only.",
                    roundID: roundID)
            }
        }
        self.graphSeedCommitment = graphSeedCommitment
    }

    /// The configuration with the committed graph seed revealed: refused unless `seed` hashes to
    /// ``graphSeedCommitment``, so the server cannot pick the permutation after seeing the keys.
    public func revealingGraphSeed(_ seed: [UInt8]) throws(SecAggError) -> SecAggConfiguration {
        guard let graphSeedCommitment, case .harary(let degree, _) = graph.kind else {
            throw SecAggError(
                code: .invalidConfiguration, message: "This round committed to no graph seed.", roundID: roundID)
        }
        guard SHA256.hash(seed) == graphSeedCommitment else {
            throw SecAggError(
                code: .inconsistentRequest,
                message:
                    "The revealed graph seed does not match the commitment announced with the roster: the server changed "
                    + "the neighbourhood permutation after the keys were advertised.",
                stage: .shareKeys, roundID: roundID)
        }
        return try SecAggConfiguration(
            roundID: roundID, participants: participants, graph: .harary(degree: degree, seed: seed),
            threshold: threshold, vectorLength: vectorLength, securityMode: securityMode,
            graphSeedCommitment: graphSeedCommitment)
    }

    /// The roster, sorted.
    public var participants: [UInt32] { graph.participants }

    /// The Ed25519 verification key of `id` in the active setting.
    func verificationKey(of id: UInt32) -> Ed25519PublicKey? {
        if case .active(let keys) = securityMode { return keys[id] }
        return nil
    }
}

/// The byte strings the protocol derives keys from, encrypts under and signs. Public so that
/// other implementations (and tests) can reproduce them exactly.
public enum SecAggProtocol {
    /// KDF purpose of the pairwise mask seeds `s_uv` (from the s-keys).
    public static let maskPurpose = "secagg-mask"
    /// KDF purpose of the pairwise share-encryption keys (from the c-keys).
    public static let shareEncryptionPurpose = "secagg-share"
    /// Bytes in a self-mask seed and in an X25519 secret key, the two secrets that are shared.
    public static let secretLength = 32

    /// The AEAD associated data of a share sent by `sender` to `recipient` in `roundID`: binding
    /// all three means the server cannot replay a ciphertext into another round or deliver it to
    /// another participant without it failing to open.
    public static func shareAssociatedData(roundID: UInt64, sender: UInt32, recipient: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 40)
        w.raw(Array("tessera-secagg-share-v1".utf8))
        w.u64(roundID)
        w.u32(sender)
        w.u32(recipient)
        return w.bytes
    }

    /// What a participant signs in AdvertiseKeys (active setting).
    public static func advertisedKeysMessage(
        roundID: UInt64, participant: UInt32, encryptionKey: [UInt8], maskingKey: [UInt8]
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 110)
        w.raw(Array("tessera-secagg-keys-v1".utf8))
        w.u64(roundID)
        w.u32(participant)
        w.blob(encryptionKey)
        w.blob(maskingKey)
        return w.bytes
    }

    /// What a participant signs in ConsistencyCheck (active setting): the sorted survivor list.
    public static func survivorListMessage(roundID: UInt64, survivors: [UInt32]) -> [UInt8] {
        var w = ByteWriter(capacity: 40 + 4 * survivors.count)
        w.raw(Array("tessera-secagg-survivors-v1".utf8))
        w.u64(roundID)
        w.ids(survivors)
        return w.bytes
    }

    /// Bytes of the random nonce salted into each share commitment. It travels only inside the
    /// encrypted share and in the holder's unmasking answer for that one share, so the coordinator
    /// cannot test guesses of a share against its commitment before the share is revealed.
    public static let commitmentNonceLength = 32

    /// The commitment an owner publishes at ShareKeys to one Shamir share it gave `holder`:
    /// SHA-256 over a domain tag, the round, owner, holder, kind, the serialized share and its
    /// nonce. Binding the four labels means a share cannot be passed off as another holder's,
    /// another kind's or another round's.
    public static func shareCommitment(
        roundID: UInt64, owner: UInt32, holder: UInt32, kind: ShareKind, share: ShamirShare, nonce: [UInt8]
    ) -> [UInt8] {
        var w = ByteWriter(capacity: commitmentTag.count + 25 + serializedShareLength + nonce.count)
        w.raw(commitmentTag)
        w.u64(roundID)
        w.u32(owner)
        w.u32(holder)
        w.u8(kind.rawValue)
        // `blob(share.serialized())`, written in place: the server computes one per returned share.
        w.u32(UInt32(truncatingIfNeeded: 9 + 8 * share.values.count))
        w.u8(ShamirShare.serializationVersion)
        w.u32(share.x)
        w.u32(UInt32(truncatingIfNeeded: share.values.count))
        for value in share.values { w.u64(value) }
        w.blob(nonce)
        return SHA256.hashShort(w.bytes)
    }

    private static let commitmentTag = Array("tessera-secagg-share-commitment-v1".utf8)

    /// What an owner signs in ShareKeys (active setting): its commitments, in increasing holder
    /// order, so the coordinator judges returned shares against the owner's own commitments and
    /// can show them to anyone who doubts a blame.
    public static func shareCommitmentsMessage(
        roundID: UInt64, owner: UInt32, commitments: [ShareCommitment]
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 48 + commitments.count * (4 + 2 * SHA256.byteCount))
        w.raw(Array("tessera-secagg-commitments-v1".utf8))
        w.u64(roundID)
        w.u32(owner)
        w.u32(UInt32(truncatingIfNeeded: commitments.count))
        for commitment in commitments {
            w.u32(commitment.holder)
            w.blob(commitment.selfMask)
            w.blob(commitment.key)
        }
        return w.bytes
    }

    /// Bytes of one serialized Shamir share of a ``secretLength``-byte secret.
    static var serializedShareLength: Int {
        9 + 8 * ((secretLength + Shamir.bytesPerElement - 1) / Shamir.bytesPerElement)
    }

    /// Field elements in a share of a ``secretLength``-byte secret.
    static var shareElementCount: Int {
        (secretLength + Shamir.bytesPerElement - 1) / Shamir.bytesPerElement
    }

    /// Plaintext of a share envelope: `u32 sender, u32 recipient, blob b-share, blob s-share`,
    /// then the two commitment nonces (b, then s).
    static var sharePlaintextLength: Int { 8 + 2 * (4 + serializedShareLength) + 2 * commitmentNonceLength }

    /// Every honest encrypted share has exactly this size, so the server can reject malformed
    /// ones without being able to decrypt them.
    public static var encryptedShareLength: Int { sharePlaintextLength + AEAD.overhead }

    /// The pairwise share-encryption key of `a` and `b` (same for both directions; the AEAD
    /// associated data separates the directions and the nonce is random).
    static func shareKey(
        own: X25519PrivateKey, peer: X25519PublicKey, roundID: UInt64, ownID: UInt32, peerID: UInt32
    ) throws -> SecretBytes {
        let shared = try own.sharedSecret(with: peer)
        return KeyDerivation.deriveKey(
            from: shared,
            context: KeyContext(purpose: shareEncryptionPurpose, roundID: roundID, firstID: ownID, secondID: peerID),
            length: AEAD.keyByteCount)
    }

    /// The pairwise mask seed `s_uv` (symmetric in the two ids).
    static func maskSeed(
        own: X25519PrivateKey, peer: X25519PublicKey, roundID: UInt64, ownID: UInt32, peerID: UInt32
    ) throws -> SecretBytes {
        let shared = try own.sharedSecret(with: peer)
        return KeyDerivation.deriveKey(
            from: shared,
            context: KeyContext(purpose: maskPurpose, roundID: roundID, firstID: ownID, secondID: peerID),
            length: MaskPRG.seedByteCount)
    }

    /// The sign with which participant `own` applies the pairwise mask shared with `peer`:
    /// `y_u = x_u + PRG(b_u) + Σ_{v<u} PRG(s_uv) − Σ_{v>u} PRG(s_uv)`, so each pair's two masks
    /// cancel in the sum.
    static func pairSign(own: UInt32, peer: UInt32) -> MaskPRG.Sign {
        peer < own ? .plus : .minus
    }

    /// Encodes the plaintext of a share envelope.
    static func sharePlaintext(
        sender: UInt32, recipient: UInt32, selfMask: CommittedShare, key: CommittedShare
    ) -> [UInt8] {
        var w = ByteWriter(capacity: sharePlaintextLength)
        w.u32(sender)
        w.u32(recipient)
        w.blob(selfMask.share.serialized())
        w.blob(key.share.serialized())
        w.raw(selfMask.nonce)
        w.raw(key.nonce)
        return w.bytes
    }

    /// Decodes a share envelope's plaintext.
    static func parseSharePlaintext(
        _ bytes: [UInt8]
    ) throws(SecAggError) -> (sender: UInt32, recipient: UInt32, selfMask: CommittedShare, key: CommittedShare) {
        var r = ByteReader(bytes, context: "Share envelope")
        let sender = try r.u32("the sender")
        let recipient = try r.u32("the recipient")
        let first = try r.blob("the self-mask share")
        let second = try r.blob("the key share")
        let firstNonce = try r.raw(commitmentNonceLength, "the self-mask share's commitment nonce")
        let secondNonce = try r.raw(commitmentNonceLength, "the key share's commitment nonce")
        try r.finish()
        do {
            return (
                sender, recipient, CommittedShare(share: try ShamirShare(serialized: first), nonce: firstNonce),
                CommittedShare(share: try ShamirShare(serialized: second), nonce: secondNonce)
            )
        } catch {
            throw SecAggError(
                code: .invalidShare, message: "Share envelope: a Shamir share is malformed.",
                cause: error as? CryptoError)
        }
    }
}
