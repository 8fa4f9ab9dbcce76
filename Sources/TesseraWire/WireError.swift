/// The one error type of `TesseraWire`: bytes or a message from the network that cannot be
/// turned into a domain value, or a domain value that cannot be put on the wire.
///
/// Everything this module decodes comes from another machine, so every failure is a value the
/// session can act on, never a crash: a participant's malformed envelope gets a `Rejection` and
/// the round goes on. ``code`` tells a program what happened without parsing text; ``field``
/// names the protobuf field (`tessera.v1.TrainTask.parameter_count`) and ``message`` says what
/// was wrong with it, so one log line tells an operator which side to fix.
public struct WireError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-checkable category. New codes may be added; switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case malformedBytes
            case missingField
            case unknownEnumValue
            case valueOutOfRange
            case staleMessage
            case replayedMessage
            case unexpectedMessage
            case unsupportedProtocolVersion
            case invalidSecAggPayload
            case parameterCountMismatch
            case chunkOutOfOrder
            case chunkOutOfRange
            case sizeLimitExceeded
            case digestMismatch
            case incompleteStream
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The bytes are not a protobuf encoding of the expected message (garbage, truncated).
        public static let malformedBytes = Code(.malformedBytes)
        /// A required field, oneof or sub-message is absent (or empty where empty means absent).
        public static let missingField = Code(.missingField)
        /// An enum value (or a stage name) this build does not know: a newer peer, or a bug.
        public static let unknownEnumValue = Code(.unknownEnumValue)
        /// A number outside what the field allows: a size that overflows `Int` (for example a
        /// negative number sent as unsigned), a zero that must be positive, an index outside
        /// its roster, a non-finite hyperparameter.
        public static let valueOutOfRange = Code(.valueOutOfRange)
        /// The header names another experiment, round or stage than the one running: the
        /// message arrived late or belongs elsewhere. Refuse it; the round is unaffected.
        public static let staleMessage = Code(.staleMessage)
        /// The header's sequence number is not larger than one already accepted on the stream.
        public static let replayedMessage = Code(.replayedMessage)
        /// A well-formed message the protocol does not allow here: a second Hello, a round
        /// message before Hello, a coordinator-only SecAgg message from a participant, a chunk
        /// of one vector interleaved with something else.
        public static let unexpectedMessage = Code(.unexpectedMessage)
        /// The peer speaks a wire protocol version this build does not.
        public static let unsupportedProtocolVersion = Code(.unsupportedProtocolVersion)
        /// The SecAgg bytes did not decode (``WireError/cause`` holds the `SecAggError`).
        public static let invalidSecAggPayload = Code(.invalidSecAggPayload)
        /// A vector's announced length differs from the length the round expects or from the
        /// parameters actually supplied.
        public static let parameterCountMismatch = Code(.parameterCountMismatch)
        /// A chunk does not start where the previous one ended (a gap, a repeat, an overlap),
        /// or is not aligned to whole 4-byte values.
        public static let chunkOutOfOrder = Code(.chunkOutOfOrder)
        /// A chunk reaches past the announced total, or changes the total or digest half way.
        public static let chunkOutOfRange = Code(.chunkOutOfRange)
        /// An announced total or a single chunk is larger than the configured maximum. Checked
        /// before anything is allocated for it.
        public static let sizeLimitExceeded = Code(.sizeLimitExceeded)
        /// The reassembled bytes do not hash to the announced SHA-256 digest.
        public static let digestMismatch = Code(.digestMismatch)
        /// The stream ended (or was finished) before every announced byte arrived.
        public static let incompleteStream = Code(.incompleteStream)

        public var description: String { value.rawValue }
    }

    /// The category of the failure.
    public var code: Code
    /// What was wrong, in words a person can act on.
    public var message: String
    /// The fully qualified protobuf field (or message) at fault, e.g.
    /// `tessera.v1.ModelChunk.offset`; `nil` when no single field is to blame.
    public var field: String?
    /// A lower-level error that led to this one (a `SecAggError`, a SwiftProtobuf error).
    public var cause: (any Error & Sendable)?

    public init(code: Code, message: String, field: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.cause = cause
    }

    public var description: String {
        var text = "WireError.\(code)"
        if let field { text += " [\(field)]" }
        text += ": \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

extension WireError {
    static func missing(_ field: String, _ what: String) -> WireError {
        WireError(code: .missingField, message: "\(what) is missing.", field: field)
    }

    static func outOfRange(_ field: String, _ message: String) -> WireError {
        WireError(code: .valueOutOfRange, message: message, field: field)
    }
}

/// Field paths are written in full in every error: `tessera.v1.` + message + field.
@inline(__always)
func wireField(_ message: String, _ field: String) -> String { "tessera.v1.\(message).\(field)" }

// MARK: - Checked numeric conversions

/// A wire `uint64` that must fit a Swift `Int`. Values above `Int.max` are what a peer sends
/// when it writes a negative `Int` as unsigned, so the message says so.
func checkedInt(_ value: UInt64, _ field: String) throws(WireError) -> Int {
    guard let int = Int(exactly: value) else {
        throw WireError.outOfRange(
            field, "\(value) does not fit a 64-bit signed integer (a negative number sent as unsigned?).")
    }
    return int
}

/// A sample count from a peer: at most ``WireProtocol/maximumSampleCount``, so that no sum of
/// counts a coordinator forms can overflow.
func checkedSampleCount(_ value: UInt64, _ field: String) throws(WireError) -> Int {
    guard value <= UInt64(WireProtocol.maximumSampleCount) else {
        throw WireError.outOfRange(
            field, "\(value) samples; at most \(WireProtocol.maximumSampleCount) are accepted.")
    }
    return Int(value)
}

/// Text from a peer (a name, a version, a reason): at most `limit` UTF-8 bytes.
func checkedText(_ text: String, limit: Int, _ field: String) throws(WireError) -> String {
    guard text.utf8.count <= limit else {
        throw WireError.outOfRange(field, "\(text.utf8.count) bytes of text; at most \(limit) are accepted.")
    }
    return text
}

/// A wire `uint64` that must be a positive `Int` (a count where 0 means "unset" in proto3).
func checkedPositiveInt(_ value: UInt64, _ field: String) throws(WireError) -> Int {
    let int = try checkedInt(value, field)
    guard int > 0 else { throw WireError.outOfRange(field, "must be at least 1, got 0 (unset?).") }
    return int
}

/// A domain `Int` going onto a `uint64` field. A negative value is a bug on this side; it is
/// reported instead of trapping or wrapping around into a huge number on the peer.
func checkedUInt64(_ value: Int, _ field: String) throws(WireError) -> UInt64 {
    guard let unsigned = UInt64(exactly: value) else {
        throw WireError.outOfRange(field, "cannot send the negative value \(value).")
    }
    return unsigned
}
