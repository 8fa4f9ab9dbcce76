/// The stages of one secure-aggregation round (Bonawitz et al. 2017, §4), in protocol order.
///
/// The raw value is the stage byte of the wire encoding, so it must never be renumbered.
/// ``consistencyCheck`` only runs in the active-adversary setting
/// (``SecAggConfiguration/SecurityMode/active(verificationKeys:)``).
public enum SecAggStage: UInt8, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// Round 0: every participant advertises its two X25519 public keys (c for share
    /// encryption, s for pairwise masks), signed in the active setting.
    case advertiseKeys = 1
    /// Round 1: every participant Shamir-shares its self-mask seed b and its s-secret key
    /// among its neighbours, encrypted under pairwise c-keys and relayed by the server.
    case shareKeys = 2
    /// Round 2: every participant sends its masked input; the server adds it to one running sum.
    case maskedInputCollection = 3
    /// Round 3 (active setting only): every survivor signs the list of survivors, so the
    /// server cannot tell different participants different stories about who dropped.
    case consistencyCheck = 4
    /// Round 4: survivors return b-shares of survivors and s-shares of dropped participants;
    /// the server reconstructs and removes the masks.
    case unmasking = 5

    public static func < (lhs: SecAggStage, rhs: SecAggStage) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .advertiseKeys: "AdvertiseKeys"
        case .shareKeys: "ShareKeys"
        case .maskedInputCollection: "MaskedInputCollection"
        case .consistencyCheck: "ConsistencyCheck"
        case .unmasking: "Unmasking"
        }
    }
}

/// The one error type of `TesseraSecAgg`.
///
/// Secure aggregation mixes three kinds of failure that a caller must tell apart without
/// parsing text: a participant misbehaved (the server drops it and the round goes on), the
/// round cannot finish (too few survivors: the round aborts), or the configuration is unsound
/// (fix the experiment). ``code`` says which; ``participant``, ``stage`` and ``roundID`` say
/// who, when and in which round, so an operator can act on one log line.
public struct SecAggError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-checkable category. New codes may be added; switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidConfiguration
            case infeasibleParameters
            case quantizationOverflow
            case valueOutOfRange
            case truncatedMessage
            case trailingBytes
            case malformedMessage
            case unsupportedVersion
            case wrongRound
            case unexpectedStage
            case duplicateMessage
            case unknownParticipant
            case participantNotActive
            case senderMismatch
            case invalidRecipient
            case missingShare
            case malformedCiphertext
            case shareDecryptionFailed
            case misaddressedShare
            case wrongVectorLength
            case invalidPublicKey
            case invalidSignature
            case invalidShare
            case shareCommitmentMismatch
            case inconsistentRequest
            case tooFewSurvivors
            case reconstructionFailed
            case roundAborted
            case roundFinished
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A configuration value is out of range or inconsistent (threshold above the number of
        /// share holders, duplicate participant ids, id 0, an odd Harary degree, ...).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// No (degree, threshold) pair satisfies the requested security and correctness.
        public static let infeasibleParameters = Code(.infeasibleParameters)
        /// The quantization parameters (bits, maximum weight, number of inputs) would let the
        /// sum wrap around 2^32, so the decoded mean would be silently wrong.
        public static let quantizationOverflow = Code(.quantizationOverflow)
        /// A value is outside what its encoding can hold (a non-finite coordinate, a weight
        /// above the configured maximum, a decoded sum outside the reachable range).
        public static let valueOutOfRange = Code(.valueOutOfRange)
        /// The bytes end before the message does.
        public static let truncatedMessage = Code(.truncatedMessage)
        /// Bytes are left over after a complete message (oversized input).
        public static let trailingBytes = Code(.trailingBytes)
        /// The bytes are not a SecAgg message (bad magic, unknown kind, inconsistent fields).
        public static let malformedMessage = Code(.malformedMessage)
        /// The message was written by an encoding version this build does not read.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The message belongs to another round (late or replayed).
        public static let wrongRound = Code(.wrongRound)
        /// The message belongs to another stage than the one in progress.
        public static let unexpectedStage = Code(.unexpectedStage)
        /// A second message from the same participant in the same stage.
        public static let duplicateMessage = Code(.duplicateMessage)
        /// The sender is not in the round's roster.
        public static let unknownParticipant = Code(.unknownParticipant)
        /// The sender is in the roster but no longer takes part (dropped or excluded earlier).
        public static let participantNotActive = Code(.participantNotActive)
        /// The sender named in the message is not the authenticated transport identity.
        public static let senderMismatch = Code(.senderMismatch)
        /// A share is addressed to a participant that is not an eligible neighbour of its sender.
        public static let invalidRecipient = Code(.invalidRecipient)
        /// A participant did not send a share to every neighbour it was told about.
        public static let missingShare = Code(.missingShare)
        /// An encrypted share does not have the size every honest share has.
        public static let malformedCiphertext = Code(.malformedCiphertext)
        /// An encrypted share failed authentication: it was tampered with, or relayed to the
        /// wrong participant, or encrypted under another key.
        public static let shareDecryptionFailed = Code(.shareDecryptionFailed)
        /// A decrypted share names another sender or recipient than the envelope it came in.
        public static let misaddressedShare = Code(.misaddressedShare)
        /// A masked input does not have the configured number of coordinates.
        public static let wrongVectorLength = Code(.wrongVectorLength)
        /// A public key is malformed or a low-order point.
        public static let invalidPublicKey = Code(.invalidPublicKey)
        /// An Ed25519 signature (active setting) is missing or does not verify.
        public static let invalidSignature = Code(.invalidSignature)
        /// A Shamir share in an unmasking response is malformed, duplicated, unrequested, or
        /// claims another holder.
        public static let invalidShare = Code(.invalidShare)
        /// A Shamir share does not open the commitment its owner published at ShareKeys, or the
        /// owner's commitments are missing, malformed or unsigned: the share is discarded and the
        /// participant that sent it is named.
        public static let shareCommitmentMismatch = Code(.shareCommitmentMismatch)
        /// A client refused a server request that would break its privacy: asking for both
        /// secrets of one peer, or survivor lists that contradict what the client saw or signed.
        public static let inconsistentRequest = Code(.inconsistentRequest)
        /// A stage ended with fewer than t survivors (overall or in one neighbourhood): the masks
        /// can no longer be removed, so the round aborts.
        public static let tooFewSurvivors = Code(.tooFewSurvivors)
        /// Shamir reconstruction produced an inconsistent secret (for example an s-key whose
        /// public key differs from the advertised one).
        public static let reconstructionFailed = Code(.reconstructionFailed)
        /// The round already aborted; no further message is accepted.
        public static let roundAborted = Code(.roundAborted)
        /// The round already produced its result; no further message is accepted.
        public static let roundFinished = Code(.roundFinished)

        public var description: String { value.rawValue }
    }

    /// The category of the failure.
    public var code: Code
    /// What went wrong, in words an operator can act on. Never contains key material or inputs.
    public var message: String
    /// The participant the error is about (the offender, the refused peer, or the participant
    /// whose neighbourhood fell below the threshold); `nil` when it concerns no single one.
    public var participant: UInt32?
    /// The stage in which the error happened, when known.
    public var stage: SecAggStage?
    /// The round the error belongs to, when known.
    public var roundID: UInt64?
    /// A lower-level error that led to this one (for example a `CryptoError`).
    public var cause: (any Error & Sendable)?

    public init(
        code: Code,
        message: String,
        participant: UInt32? = nil,
        stage: SecAggStage? = nil,
        roundID: UInt64? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.participant = participant
        self.stage = stage
        self.roundID = roundID
        self.cause = cause
    }

    public var description: String {
        var context: [String] = []
        if let roundID { context.append("round \(roundID)") }
        if let stage { context.append("stage \(stage)") }
        if let participant { context.append("participant \(participant)") }
        var text = "SecAggError.\(code)"
        if !context.isEmpty { text += " [" + context.joined(separator: ", ") + "]" }
        text += ": \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}
