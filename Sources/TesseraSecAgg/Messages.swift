public import TesseraCrypto

// MARK: - Pieces shared by several messages

/// The public keys a participant advertises in ``SecAggStage/advertiseKeys``, as relayed by
/// the server to the participant's neighbours.
public struct AdvertisedKeys: Sendable, Hashable {
    /// Who advertised them.
    public var participant: UInt32
    /// X25519 public key `c_pk`, for the pairwise share-encryption keys.
    public var encryptionKey: [UInt8]
    /// X25519 public key `s_pk`, for the pairwise mask seeds.
    public var maskingKey: [UInt8]
    /// Ed25519 signature over ``SecAggTranscript/advertisedKeysMessage(roundID:participant:encryptionKey:maskingKey:)``
    /// in the active setting; empty otherwise.
    public var signature: [UInt8]

    public init(participant: UInt32, encryptionKey: [UInt8], maskingKey: [UInt8], signature: [UInt8] = []) {
        self.participant = participant
        self.encryptionKey = encryptionKey
        self.maskingKey = maskingKey
        self.signature = signature
    }
}

/// An AEAD-encrypted pair of Shamir shares travelling between two participants through the
/// server. ``peer`` is the recipient when a participant sends it and the sender when the server
/// delivers it; the server cannot read ``ciphertext``.
public struct EncryptedShare: Sendable, Hashable {
    public var peer: UInt32
    public var ciphertext: [UInt8]

    public init(peer: UInt32, ciphertext: [UInt8]) {
        self.peer = peer
        self.ciphertext = ciphertext
    }
}

/// A Shamir share of one peer's secret, returned during unmasking.
public struct PeerShare: Sendable, Hashable {
    /// Whose secret this is a share of.
    public var peer: UInt32
    /// The share; its `x` is the holder's id.
    public var share: ShamirShare
    /// The ``SecAggProtocol/commitmentNonceLength``-byte nonce the owner salted this share's
    /// commitment with; revealed with the share so the server can check it against
    /// ``ShareCommitment``.
    public var nonce: [UInt8]

    public init(peer: UInt32, share: ShamirShare, nonce: [UInt8]) {
        self.peer = peer
        self.share = share
        self.nonce = nonce
    }
}

/// Which of an owner's two shared secrets a share belongs to. The raw value is hashed into
/// ``SecAggProtocol/shareCommitment(roundID:owner:holder:kind:share:nonce:)``, so it must never
/// be renumbered.
public enum ShareKind: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// A share of the self-mask seed `b`, returned for survivors.
    case selfMask = 1
    /// A share of the masking secret key `s_sk`, returned for dropped participants.
    case key = 2

    public var description: String {
        switch self {
        case .selfMask: "self-mask"
        case .key: "masking-key"
        }
    }
}

/// An owner's commitments to the two Shamir shares it gave one holder, published in
/// ``ShareKeysMessage`` and relayed to the holder in ``MaskedInputRequest``.
///
/// Why salted hashes and not Feldman commitments: the coordinator needs only to tell whether a
/// returned share is exactly the one the owner dealt, and a hash answers that exactly, at one
/// SHA-256 per share, with no group arithmetic over Shamir's field. Its 256-bit nonce is known
/// only to owner and holder (it travels inside the encrypted share), so before unmasking the
/// commitment hides the share even from a coordinator that colludes with t − 1 holders, and a
/// holder reveals the nonce of the one share it returns, never of the other kind. The holder
/// checks its opened share against the relayed commitment, so an owner cannot frame an honest
/// holder with a commitment that does not match what it sent.
public struct ShareCommitment: Sendable, Hashable {
    /// Whose secrets were shared (the ShareKeys sender).
    public var owner: UInt32
    /// Who holds the two shares (a neighbour of the owner, or the owner itself).
    public var holder: UInt32
    /// SHA-256 commitment to the self-mask share.
    public var selfMask: [UInt8]
    /// SHA-256 commitment to the masking-key share.
    public var key: [UInt8]

    public init(owner: UInt32, holder: UInt32, selfMask: [UInt8], key: [UInt8]) {
        self.owner = owner
        self.holder = holder
        self.selfMask = selfMask
        self.key = key
    }

    /// The commitment of `kind`.
    public func digest(of kind: ShareKind) -> [UInt8] {
        kind == .selfMask ? selfMask : key
    }
}

/// A share together with the nonce of its commitment, as dealt and held.
struct CommittedShare: Sendable, Hashable {
    var share: ShamirShare
    var nonce: [UInt8]
}

/// One participant's Ed25519 signature (active setting).
public struct ParticipantSignature: Sendable, Hashable {
    public var participant: UInt32
    public var signature: [UInt8]

    public init(participant: UInt32, signature: [UInt8]) {
        self.participant = participant
        self.signature = signature
    }
}

// MARK: - Client → server

/// ``SecAggStage/advertiseKeys``: a participant's two fresh X25519 public keys.
public struct AdvertiseKeysMessage: Sendable, Hashable {
    public var roundID: UInt64
    public var sender: UInt32
    public var keys: AdvertisedKeys

    public init(roundID: UInt64, sender: UInt32, keys: AdvertisedKeys) {
        self.roundID = roundID
        self.sender = sender
        self.keys = keys
    }
}

/// ``SecAggStage/shareKeys``: one encrypted share pair per neighbour (``EncryptedShare/peer``
/// is the recipient), and the sender's commitments to the shares of every holder.
public struct ShareKeysMessage: Sendable, Hashable {
    public var roundID: UInt64
    public var sender: UInt32
    public var shares: [EncryptedShare]
    /// One commitment per holder (each recipient of ``shares`` and the sender itself), in
    /// increasing holder order; ``ShareCommitment/owner`` is the sender.
    public var commitments: [ShareCommitment]
    /// Ed25519 signature over ``SecAggProtocol/shareCommitmentsMessage(roundID:owner:commitments:)``
    /// in the active setting; empty otherwise.
    public var commitmentSignature: [UInt8]

    public init(
        roundID: UInt64, sender: UInt32, shares: [EncryptedShare], commitments: [ShareCommitment] = [],
        commitmentSignature: [UInt8] = []
    ) {
        self.roundID = roundID
        self.sender = sender
        self.shares = shares
        self.commitments = commitments
        self.commitmentSignature = commitmentSignature
    }
}

/// ``SecAggStage/maskedInputCollection``: `y_u`, the masked input.
public struct MaskedInputMessage: Sendable, Hashable {
    public var roundID: UInt64
    public var sender: UInt32
    public var maskedInput: [UInt32]

    public init(roundID: UInt64, sender: UInt32, maskedInput: [UInt32]) {
        self.roundID = roundID
        self.sender = sender
        self.maskedInput = maskedInput
    }
}

/// ``SecAggStage/consistencyCheck``: the sender's signature over the survivor list.
public struct ConsistencySignatureMessage: Sendable, Hashable {
    public var roundID: UInt64
    public var sender: UInt32
    public var signature: [UInt8]

    public init(roundID: UInt64, sender: UInt32, signature: [UInt8]) {
        self.roundID = roundID
        self.sender = sender
        self.signature = signature
    }
}

/// ``SecAggStage/unmasking``: b-shares of surviving peers and s-key shares of dropped peers.
/// An honest participant never sends both kinds for the same peer.
public struct UnmaskingResponseMessage: Sendable, Hashable {
    public var roundID: UInt64
    public var sender: UInt32
    /// Shares of the self-mask seeds `b_v` of survivors `v`.
    public var selfMaskShares: [PeerShare]
    /// Shares of the masking secret keys `s_sk_v` of dropped `v`.
    public var keyShares: [PeerShare]

    public init(roundID: UInt64, sender: UInt32, selfMaskShares: [PeerShare], keyShares: [PeerShare]) {
        self.roundID = roundID
        self.sender = sender
        self.selfMaskShares = selfMaskShares
        self.keyShares = keyShares
    }
}

// MARK: - Server → client

/// Opens ``SecAggStage/shareKeys`` for one participant: the advertised keys of its neighbours
/// that completed AdvertiseKeys.
public struct ShareKeysRequest: Sendable, Hashable {
    public var roundID: UInt64
    public var recipient: UInt32
    public var neighbours: [AdvertisedKeys]
    /// The Harary graph's permutation seed, revealed here when the round committed to it
    /// (``SecAggConfiguration/graphSeedCommitment``): only after every key is advertised, so
    /// the seed cannot be chosen with the keys in view. Empty otherwise.
    public var graphSeed: [UInt8]

    public init(roundID: UInt64, recipient: UInt32, neighbours: [AdvertisedKeys], graphSeed: [UInt8] = []) {
        self.roundID = roundID
        self.recipient = recipient
        self.neighbours = neighbours
        self.graphSeed = graphSeed
    }
}

/// Opens ``SecAggStage/maskedInputCollection``: the encrypted shares addressed to the recipient
/// by its neighbours that completed ShareKeys (``EncryptedShare/peer`` is the sender). The set of
/// senders is the recipient's view of U2 and decides which pairwise masks it applies.
public struct MaskedInputRequest: Sendable, Hashable {
    public var roundID: UInt64
    public var recipient: UInt32
    public var shares: [EncryptedShare]
    /// Each sender's commitment to the shares it gave the recipient
    /// (``ShareCommitment/holder`` is the recipient), which the recipient checks its opened
    /// shares against.
    public var commitments: [ShareCommitment]

    public init(
        roundID: UInt64, recipient: UInt32, shares: [EncryptedShare], commitments: [ShareCommitment] = []
    ) {
        self.roundID = roundID
        self.recipient = recipient
        self.shares = shares
        self.commitments = commitments
    }
}

/// Opens ``SecAggStage/consistencyCheck`` (active setting): the full survivor list U3, which
/// every survivor signs.
public struct ConsistencyCheckRequest: Sendable, Hashable {
    public var roundID: UInt64
    public var recipient: UInt32
    public var survivors: [UInt32]

    public init(roundID: UInt64, recipient: UInt32, survivors: [UInt32]) {
        self.roundID = roundID
        self.recipient = recipient
        self.survivors = survivors
    }
}

/// Opens ``SecAggStage/unmasking``: who the server says survived (b-shares wanted) and who
/// dropped (s-key shares wanted), plus, in the active setting, the survivors' signatures over
/// the survivor list.
///
/// In the semi-honest setting ``survivors`` is restricted to the recipient's holders
/// (neighbours and itself), which keeps the message O(k) for SecAgg+; in the active setting it
/// is the full U3 that was signed.
public struct UnmaskingRequest: Sendable, Hashable {
    public var roundID: UInt64
    public var recipient: UInt32
    public var survivors: [UInt32]
    public var dropped: [UInt32]
    public var signatures: [ParticipantSignature]

    public init(
        roundID: UInt64, recipient: UInt32, survivors: [UInt32], dropped: [UInt32],
        signatures: [ParticipantSignature] = []
    ) {
        self.roundID = roundID
        self.recipient = recipient
        self.survivors = survivors
        self.dropped = dropped
        self.signatures = signatures
    }
}

// MARK: - The envelope

/// Every SecAgg message, client → server and server → client, with its versioned binary
/// encoding.
///
/// ## Encoding (version 3, all integers little-endian)
///
///     header (24 bytes)
///       4  magic "TSAG"
///       u8 version (= 3; version 2 added the graph seed of shareKeysRequest, version 3 the
///                  share commitments and their nonces)
///       u8 kind        0x01…0x05 client → server, 0x81…0x84 server → client
///       u8 stage       SecAggStage raw value; must match the kind
///       u8 reserved    0
///       u64 roundID
///       u32 sender     participant id; 0 for the server
///       u32 recipient  participant id; 0 for the server
///     body (per kind)
///       advertiseKeys          32 c_pk, 32 s_pk, blob signature (0 or 64 bytes)
///       shareKeys              u32 n, n × (u32 recipient, blob ciphertext),
///                              u32 m, m × (u32 holder, 32 b-commitment, 32 s-commitment),
///                              blob commitment signature (0 or 64 bytes)
///       maskedInput            u32 d, d × u32
///       consistencySignature   blob signature (64 bytes)
///       unmaskingResponse      u32 n, n × (u32 peer, blob share, 32 nonce) self-mask shares, then the same for key shares
///       shareKeysRequest       u32 n, n × (u32 id, 32 c_pk, 32 s_pk, blob signature), blob graph seed (0–64 bytes)
///       maskedInputRequest     u32 n, n × (u32 sender, blob ciphertext),
///                              u32 m, m × (u32 owner, 32 b-commitment, 32 s-commitment)
///       consistencyCheckRequest ids survivors
///       unmaskingRequest       ids survivors, ids dropped, u32 n, n × (u32 id, blob signature)
///
/// where `blob` is `u32 length || bytes` and `ids` is `u32 count || u32…` strictly increasing.
/// Decoding rejects a wrong magic, an unknown version or kind, a stage that contradicts the
/// kind, truncated input, counts larger than the remaining bytes, commitment lists longer
/// than the largest roster (``maximumCommitmentCount``), and trailing bytes.
public enum SecAggMessage: Sendable, Hashable {
    case advertiseKeys(AdvertiseKeysMessage)
    case shareKeys(ShareKeysMessage)
    case maskedInput(MaskedInputMessage)
    case consistencySignature(ConsistencySignatureMessage)
    case unmaskingResponse(UnmaskingResponseMessage)
    case shareKeysRequest(ShareKeysRequest)
    case maskedInputRequest(MaskedInputRequest)
    case consistencyCheckRequest(ConsistencyCheckRequest)
    case unmaskingRequest(UnmaskingRequest)

    /// The encoding version this build writes and reads.
    public static let version: UInt8 = 3
    static let magic: [UInt8] = Array("TSAG".utf8)
    static let headerSize = 24
    static let keySize = 32
    static let signatureSize = 64
    /// A graph seed is 32 bytes in practice; anything beyond this bound is refused unread.
    static let maximumGraphSeedSize = 64
    /// A commitment list names distinct holders of one owner, so it is never longer than the
    /// largest roster this build accepts.
    public static let maximumCommitmentCount = MetricsEncoding.maximumInputs
    static let commitmentSize = 4 + 2 * SHA256.byteCount

    enum Kind: UInt8 {
        case advertiseKeys = 0x01
        case shareKeys = 0x02
        case maskedInput = 0x03
        case consistencySignature = 0x04
        case unmaskingResponse = 0x05
        case shareKeysRequest = 0x81
        case maskedInputRequest = 0x82
        case consistencyCheckRequest = 0x83
        case unmaskingRequest = 0x84

        var stage: SecAggStage {
            switch self {
            case .advertiseKeys: .advertiseKeys
            case .shareKeys, .shareKeysRequest: .shareKeys
            case .maskedInput, .maskedInputRequest: .maskedInputCollection
            case .consistencySignature, .consistencyCheckRequest: .consistencyCheck
            case .unmaskingResponse, .unmaskingRequest: .unmasking
            }
        }
    }

    var kind: Kind {
        switch self {
        case .advertiseKeys: .advertiseKeys
        case .shareKeys: .shareKeys
        case .maskedInput: .maskedInput
        case .consistencySignature: .consistencySignature
        case .unmaskingResponse: .unmaskingResponse
        case .shareKeysRequest: .shareKeysRequest
        case .maskedInputRequest: .maskedInputRequest
        case .consistencyCheckRequest: .consistencyCheckRequest
        case .unmaskingRequest: .unmaskingRequest
        }
    }

    /// The stage this message belongs to.
    public var stage: SecAggStage { kind.stage }

    /// `true` for messages a participant sends to the server.
    public var isFromClient: Bool { kind.rawValue < 0x80 }

    /// The round the message belongs to.
    public var roundID: UInt64 {
        switch self {
        case .advertiseKeys(let m): m.roundID
        case .shareKeys(let m): m.roundID
        case .maskedInput(let m): m.roundID
        case .consistencySignature(let m): m.roundID
        case .unmaskingResponse(let m): m.roundID
        case .shareKeysRequest(let m): m.roundID
        case .maskedInputRequest(let m): m.roundID
        case .consistencyCheckRequest(let m): m.roundID
        case .unmaskingRequest(let m): m.roundID
        }
    }

    /// The sending participant, or 0 for the server.
    public var sender: UInt32 {
        switch self {
        case .advertiseKeys(let m): m.sender
        case .shareKeys(let m): m.sender
        case .maskedInput(let m): m.sender
        case .consistencySignature(let m): m.sender
        case .unmaskingResponse(let m): m.sender
        default: 0
        }
    }

    /// The receiving participant, or 0 for the server.
    public var recipient: UInt32 {
        switch self {
        case .shareKeysRequest(let m): m.recipient
        case .maskedInputRequest(let m): m.recipient
        case .consistencyCheckRequest(let m): m.recipient
        case .unmaskingRequest(let m): m.recipient
        default: 0
        }
    }

    // MARK: Encoding

    /// The binary encoding (see the type's documentation).
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + estimatedBodySize)
        w.raw(Self.magic)
        w.u8(Self.version)
        w.u8(kind.rawValue)
        w.u8(stage.rawValue)
        w.u8(0)
        w.u64(roundID)
        w.u32(sender)
        w.u32(recipient)
        switch self {
        case .advertiseKeys(let m):
            Self.writeKeys(m.keys, into: &w, withID: false)
        case .shareKeys(let m):
            Self.writeShares(m.shares, into: &w)
            Self.writeCommitments(m.commitments, into: &w) { $0.holder }
            w.blob(m.commitmentSignature)
        case .maskedInput(let m):
            w.words(m.maskedInput)
        case .consistencySignature(let m):
            w.blob(m.signature)
        case .unmaskingResponse(let m):
            Self.writePeerShares(m.selfMaskShares, into: &w)
            Self.writePeerShares(m.keyShares, into: &w)
        case .shareKeysRequest(let m):
            w.u32(UInt32(truncatingIfNeeded: m.neighbours.count))
            for keys in m.neighbours { Self.writeKeys(keys, into: &w, withID: true) }
            w.blob(m.graphSeed)
        case .maskedInputRequest(let m):
            Self.writeShares(m.shares, into: &w)
            Self.writeCommitments(m.commitments, into: &w) { $0.owner }
        case .consistencyCheckRequest(let m):
            w.ids(m.survivors)
        case .unmaskingRequest(let m):
            w.ids(m.survivors)
            w.ids(m.dropped)
            w.u32(UInt32(truncatingIfNeeded: m.signatures.count))
            for signature in m.signatures {
                w.u32(signature.participant)
                w.blob(signature.signature)
            }
        }
        return w.bytes
    }

    private var estimatedBodySize: Int {
        switch self {
        case .maskedInput(let m): 4 + 4 * m.maskedInput.count
        case .shareKeys(let m):
            76 + m.shares.reduce(0) { $0 + 8 + $1.ciphertext.count } + m.commitments.count * Self.commitmentSize
        case .maskedInputRequest(let m):
            8 + m.shares.reduce(0) { $0 + 8 + $1.ciphertext.count } + m.commitments.count * Self.commitmentSize
        default: 256
        }
    }

    private static func writeKeys(_ keys: AdvertisedKeys, into w: inout ByteWriter, withID: Bool) {
        if withID { w.u32(keys.participant) }
        w.raw(fixed(keys.encryptionKey, keySize))
        w.raw(fixed(keys.maskingKey, keySize))
        w.blob(keys.signature)
    }

    /// Keys are fixed-size on the wire; a value of the wrong size (only constructible by a
    /// caller that ignored the type's contract) is padded or cut so the encoding stays
    /// parseable, and the receiver's key validation then rejects it.
    private static func fixed(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        if bytes.count == size { return bytes }
        return Array((bytes + [UInt8](repeating: 0, count: size)).prefix(size))
    }

    private static func writeShares(_ shares: [EncryptedShare], into w: inout ByteWriter) {
        w.u32(UInt32(truncatingIfNeeded: shares.count))
        for share in shares {
            w.u32(share.peer)
            w.blob(share.ciphertext)
        }
    }

    private static func writePeerShares(_ shares: [PeerShare], into w: inout ByteWriter) {
        w.u32(UInt32(truncatingIfNeeded: shares.count))
        for share in shares {
            w.u32(share.peer)
            w.blob(share.share.serialized())
            w.raw(fixed(share.nonce, SecAggProtocol.commitmentNonceLength))
        }
    }

    /// Commitments with one of their two ids (`id`); the other is the message's sender or recipient.
    private static func writeCommitments(
        _ commitments: [ShareCommitment], into w: inout ByteWriter, id: (ShareCommitment) -> UInt32
    ) {
        w.u32(UInt32(truncatingIfNeeded: commitments.count))
        for commitment in commitments {
            w.u32(id(commitment))
            w.raw(fixed(commitment.selfMask, SHA256.byteCount))
            w.raw(fixed(commitment.key, SHA256.byteCount))
        }
    }

    // MARK: Decoding

    /// Decodes one message, rejecting anything that is not exactly one well-formed message.
    public static func decode(_ bytes: [UInt8]) throws(SecAggError) -> SecAggMessage {
        var r = ByteReader(bytes, context: "SecAgg message")
        guard bytes.count >= headerSize else {
            throw SecAggError(
                code: .truncatedMessage,
                message: "SecAgg message: \(bytes.count) bytes cannot hold the \(headerSize)-byte header.")
        }
        let magic = try r.raw(4, "the magic")
        guard magic == Self.magic else {
            throw SecAggError(
                code: .malformedMessage, message: "SecAgg message: the bytes do not start with the magic \"TSAG\".")
        }
        let version = try r.u8("the version")
        guard version == Self.version else {
            throw SecAggError(
                code: .unsupportedVersion,
                message:
                    "SecAgg message: encoding version \(version) is not supported; this build reads version \(Self.version)."
            )
        }
        let rawKind = try r.u8("the kind")
        guard let kind = Kind(rawValue: rawKind) else {
            throw SecAggError(
                code: .malformedMessage,
                message: "SecAgg message: unknown message kind 0x\(String(rawKind, radix: 16)).")
        }
        let rawStage = try r.u8("the stage")
        guard let stage = SecAggStage(rawValue: rawStage), stage == kind.stage else {
            throw SecAggError(
                code: .malformedMessage,
                message:
                    "SecAgg message: stage byte \(rawStage) does not match message kind \(kind) (stage \(kind.stage)).")
        }
        guard try r.u8("the reserved byte") == 0 else {
            throw SecAggError(code: .malformedMessage, message: "SecAgg message: the reserved header byte must be 0.")
        }
        let roundID = try r.u64("the round id")
        let sender = try r.u32("the sender")
        let recipient = try r.u32("the recipient")
        let fromClient = kind.rawValue < 0x80
        guard fromClient ? (sender != 0 && recipient == 0) : (sender == 0 && recipient != 0) else {
            throw SecAggError(
                code: .malformedMessage,
                message:
                    "SecAgg message: a \(fromClient ? "client" : "server") message of kind \(kind) has sender \(sender) "
                    + "and recipient \(recipient); participants are non-zero and the server is 0.",
                stage: stage, roundID: roundID)
        }
        let message: SecAggMessage
        do {
            message = try decodeBody(kind: kind, roundID: roundID, sender: sender, recipient: recipient, reader: &r)
            try r.finish()
        } catch {
            var error = error
            error.stage = stage
            error.roundID = roundID
            error.participant = fromClient ? sender : recipient
            throw error
        }
        return message
    }

    private static func decodeBody(
        kind: Kind, roundID: UInt64, sender: UInt32, recipient: UInt32, reader r: inout ByteReader
    ) throws(SecAggError) -> SecAggMessage {
        switch kind {
        case .advertiseKeys:
            let keys = try readKeys(&r, participant: sender)
            return .advertiseKeys(AdvertiseKeysMessage(roundID: roundID, sender: sender, keys: keys))
        case .shareKeys:
            let shares = try readShares(&r)
            let commitments = try readCommitments(&r) {
                ShareCommitment(owner: sender, holder: $0, selfMask: $1, key: $2)
            }
            let signature = try r.blob("the commitment signature", maximum: signatureSize)
            guard signature.isEmpty || signature.count == signatureSize else {
                throw SecAggError(
                    code: .malformedMessage,
                    message:
                        "SecAgg message: the commitment signature is \(signature.count) bytes; it must be empty or \(signatureSize)."
                )
            }
            return .shareKeys(
                ShareKeysMessage(
                    roundID: roundID, sender: sender, shares: shares, commitments: commitments,
                    commitmentSignature: signature))
        case .maskedInput:
            return .maskedInput(
                MaskedInputMessage(roundID: roundID, sender: sender, maskedInput: try r.words("the masked input")))
        case .consistencySignature:
            let signature = try r.blob("the signature", maximum: signatureSize)
            return .consistencySignature(
                ConsistencySignatureMessage(roundID: roundID, sender: sender, signature: signature))
        case .unmaskingResponse:
            let selfMask = try readPeerShares(&r, what: "the self-mask shares")
            let keys = try readPeerShares(&r, what: "the key shares")
            return .unmaskingResponse(
                UnmaskingResponseMessage(roundID: roundID, sender: sender, selfMaskShares: selfMask, keyShares: keys))
        case .shareKeysRequest:
            let count = try r.count("the neighbour keys", minimumElementSize: 4 + 2 * keySize + 4)
            var neighbours: [AdvertisedKeys] = []
            neighbours.reserveCapacity(count)
            for _ in 0..<count {
                let id = try r.u32("a neighbour id")
                neighbours.append(try readKeys(&r, participant: id))
            }
            let seed = try r.blob("the graph seed", maximum: maximumGraphSeedSize)
            return .shareKeysRequest(
                ShareKeysRequest(roundID: roundID, recipient: recipient, neighbours: neighbours, graphSeed: seed))
        case .maskedInputRequest:
            let shares = try readShares(&r)
            let commitments = try readCommitments(&r) {
                ShareCommitment(owner: $0, holder: recipient, selfMask: $1, key: $2)
            }
            return .maskedInputRequest(
                MaskedInputRequest(roundID: roundID, recipient: recipient, shares: shares, commitments: commitments))
        case .consistencyCheckRequest:
            return .consistencyCheckRequest(
                ConsistencyCheckRequest(roundID: roundID, recipient: recipient, survivors: try r.ids("the survivors")))
        case .unmaskingRequest:
            let survivors = try r.ids("the survivors")
            let dropped = try r.ids("the dropped participants")
            let count = try r.count("the signatures", minimumElementSize: 8)
            var signatures: [ParticipantSignature] = []
            signatures.reserveCapacity(count)
            for _ in 0..<count {
                let id = try r.u32("a signer id")
                let signature = try r.blob("a signature", maximum: signatureSize)
                signatures.append(ParticipantSignature(participant: id, signature: signature))
            }
            return .unmaskingRequest(
                UnmaskingRequest(
                    roundID: roundID, recipient: recipient, survivors: survivors, dropped: dropped,
                    signatures: signatures))
        }
    }

    private static func readKeys(_ r: inout ByteReader, participant: UInt32) throws(SecAggError) -> AdvertisedKeys {
        let c = try r.raw(keySize, "the encryption public key")
        let s = try r.raw(keySize, "the masking public key")
        let signature = try r.blob("the key signature", maximum: signatureSize)
        guard signature.isEmpty || signature.count == signatureSize else {
            throw SecAggError(
                code: .malformedMessage,
                message:
                    "SecAgg message: a key signature is \(signature.count) bytes; it must be empty or \(signatureSize)."
            )
        }
        return AdvertisedKeys(participant: participant, encryptionKey: c, maskingKey: s, signature: signature)
    }

    private static func readShares(_ r: inout ByteReader) throws(SecAggError) -> [EncryptedShare] {
        let count = try r.count("the encrypted shares", minimumElementSize: 8)
        var shares: [EncryptedShare] = []
        shares.reserveCapacity(count)
        for _ in 0..<count {
            let peer = try r.u32("a share's peer id")
            let ciphertext = try r.blob("a share's ciphertext")
            shares.append(EncryptedShare(peer: peer, ciphertext: ciphertext))
        }
        return shares
    }

    /// A commitment list: bounded by the bytes that remain and by ``maximumCommitmentCount``
    /// before anything is allocated; digests are fixed-size.
    private static func readCommitments(
        _ r: inout ByteReader, make: (UInt32, [UInt8], [UInt8]) -> ShareCommitment
    ) throws(SecAggError) -> [ShareCommitment] {
        let count = try r.count("the share commitments", minimumElementSize: commitmentSize)
        guard count <= maximumCommitmentCount else {
            throw SecAggError(
                code: .malformedMessage,
                message:
                    "SecAgg message: \(count) share commitments exceed the \(maximumCommitmentCount) of the largest roster."
            )
        }
        var commitments: [ShareCommitment] = []
        commitments.reserveCapacity(count)
        for _ in 0..<count {
            let id = try r.u32("a commitment's participant id")
            let selfMask = try r.raw(SHA256.byteCount, "a self-mask share commitment")
            let key = try r.raw(SHA256.byteCount, "a key share commitment")
            commitments.append(make(id, selfMask, key))
        }
        return commitments
    }

    private static func readPeerShares(_ r: inout ByteReader, what: String) throws(SecAggError) -> [PeerShare] {
        let count = try r.count(what, minimumElementSize: 8 + SecAggProtocol.commitmentNonceLength)
        var shares: [PeerShare] = []
        shares.reserveCapacity(count)
        for _ in 0..<count {
            let peer = try r.u32("a share's peer id")
            let bytes = try r.blob("a Shamir share")
            let nonce = try r.raw(SecAggProtocol.commitmentNonceLength, "a share's commitment nonce")
            do {
                shares.append(PeerShare(peer: peer, share: try ShamirShare(serialized: bytes), nonce: nonce))
            } catch {
                throw SecAggError(
                    code: .malformedMessage,
                    message: "SecAgg message: the Shamir share of peer \(peer) in \(what) is malformed.",
                    cause: error as? CryptoError)
            }
        }
        return shares
    }
}
