/// The one error type of `TesseraPrivacy`: a caller tells a bad parameter (fix the experiment
/// or the site policy) from a target that no noise can reach and from an input that breaks the
/// mechanism's bounds, through ``code``, without parsing text.
public struct PrivacyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-checkable category. New codes may be added; switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidParameter
            case unreachableTarget
            case budgetExceeded
            case sensitivityExceeded
            case ringOverflow
            case malformedInput
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A parameter is outside its domain (a negative noise, a rate above 1, a δ of 0, …).
        public static let invalidParameter = Code(.invalidParameter)
        /// No noise within the searched range reaches the requested (ε, δ).
        public static let unreachableTarget = Code(.unreachableTarget)
        /// The step would take the ε spent past the budget.
        public static let budgetExceeded = Code(.budgetExceeded)
        /// An input exceeds the sensitivity the mechanism was calibrated for (an unclipped update,
        /// a rounding that cannot meet its norm bound).
        public static let sensitivityExceeded = Code(.sensitivityExceeded)
        /// The integer ring is too small for the sum it must carry.
        public static let ringOverflow = Code(.ringOverflow)
        /// A vector has the wrong length or a non-finite value.
        public static let malformedInput = Code(.malformedInput)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
