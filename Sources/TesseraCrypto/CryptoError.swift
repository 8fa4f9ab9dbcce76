/// The one error type thrown by `TesseraCrypto`.
///
/// Crypto failures are reported as values rather than crashes because most of them come from
/// untrusted input: a peer's public key, a sealed share relayed by the coordinator, a share
/// read back from disk. The caller decides whether that means "drop this participant" or "abort
/// the round"; the ``code`` lets it decide without parsing the ``message``, and the message tells
/// a person what was wrong with which input.
public struct CryptoError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-checkable category. New codes may be added; switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidKey
            case invalidLength
            case authenticationFailed
            case libraryFailure
            case invalidShare
            case insufficientShares
            case invalidArgument
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A key (or public point) was malformed, had the wrong size, or was rejected as weak,
        /// for example an X25519 point of small order that would give a predictable secret.
        public static let invalidKey = Code(.invalidKey)
        /// An input had a length the primitive cannot accept (too short to hold a nonce and
        /// tag, a seed that is not 32 bytes, a share whose size does not match its header).
        public static let invalidLength = Code(.invalidLength)
        /// The AEAD tag did not verify: the ciphertext, its nonce, the tag or the associated
        /// data were altered, or the wrong key was used. Never distinguish further than this.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// libsodium or OpenSSL reported an internal failure that no input caused
        /// (allocation failure, missing cipher provider).
        public static let libraryFailure = Code(.libraryFailure)
        /// A Shamir share is malformed, duplicated, out of the field, or inconsistent with
        /// the others.
        public static let invalidShare = Code(.invalidShare)
        /// Fewer Shamir shares than the threshold were supplied, so the secret is (by design)
        /// information-theoretically hidden.
        public static let insufficientShares = Code(.insufficientShares)
        /// A parameter outside its documented range (for example a Shamir threshold of 0).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { value.rawValue }
    }

    /// The category of the failure.
    public var code: Code
    /// What is wrong, in words a user can act on. Never contains key material.
    public var message: String
    /// A lower-level error that led to this one, if any.
    public var cause: (any Error & Sendable)?

    /// An error of category `code`. Write `message` for the person who has to act on it: name
    /// the input (key, share, participant, round) and what was wrong with it, never secret bytes.
    public init(code: Code, message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause {
            return "CryptoError.\(code): \(message) (cause: \(cause))"
        }
        return "CryptoError.\(code): \(message)"
    }
}
