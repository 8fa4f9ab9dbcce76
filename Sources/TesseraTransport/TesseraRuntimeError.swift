/// An error of the networked runtime: what went wrong, for which site, and what to do about it.
public struct TesseraRuntimeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case unauthenticated, sessionRefused, modelUnavailable, invalidConfiguration, transport
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The peer's identity could not be established (no or untrusted certificate, unknown token).
        public static let unauthenticated = Code(.unauthenticated)
        /// The coordinator refused the session for good (for example an unsupported protocol version).
        public static let sessionRefused = Code(.sessionRefused)
        /// A model named by digest could not be fetched or did not verify.
        public static let modelUnavailable = Code(.modelUnavailable)
        /// A configuration value (address, file, dataset) is unusable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The connection failed.
        public static let transport = Code(.transport)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}
