/// An error from the tensor engine: a shape that does not fit, a file that cannot be read,
/// a parameter vector of the wrong length.
///
/// The message always says what was expected and what was found, so that a user who reads
/// it knows what to fix without opening the source.
public struct TensorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; stable for programmatic handling.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case shapeMismatch, invalidArgument, malformedFile, unsupportedDType, ioFailure, unknownParameter
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Two shapes that must agree do not.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// An argument is out of its valid range.
        public static let invalidArgument = Code(.invalidArgument)
        /// A model file is truncated, inconsistent or hostile.
        public static let malformedFile = Code(.malformedFile)
        /// A model file holds a data type Tessera cannot load.
        public static let unsupportedDType = Code(.unsupportedDType)
        /// Reading or writing a file failed.
        public static let ioFailure = Code(.ioFailure)
        /// A named parameter is missing or not expected by the model.
        public static let unknownParameter = Code(.unknownParameter)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
