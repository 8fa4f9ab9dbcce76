/// Why an aggregation rule or a server strategy refused a round's inputs.
///
/// Aggregation runs once per round on the coordinator. When it throws, the round fails and
/// the global model stays where it was (the experiment's `on_round_failure` policy decides what
/// happens next), so every message says what was wrong with the inputs and what to change.
public struct AggregationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it was, for callers that react differently to each.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case emptyInput, mismatchedLengths, nonFiniteValue, invalidWeight, invalidParameter
            case tooManyByzantine, individualUpdatesRequired, invalidState
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// No updates (or zero-length vectors) were given.
        public static let emptyInput = Code(.emptyInput)
        /// Updates, the global model or optimiser state have different lengths.
        public static let mismatchedLengths = Code(.mismatchedLengths)
        /// An update holds NaN or ±∞ (a diverged participant); aggregating it would poison the model.
        public static let nonFiniteValue = Code(.nonFiniteValue)
        /// A sample weight is negative or not finite, or all weights are zero.
        public static let invalidWeight = Code(.invalidWeight)
        /// A hyperparameter lies outside its range (for example a trim fraction of 0.5).
        public static let invalidParameter = Code(.invalidParameter)
        /// Too few updates for the number of Byzantine participants assumed (Krum needs n > 2f + 2).
        public static let tooManyByzantine = Code(.tooManyByzantine)
        /// A robust rule was given only the aggregated mean (secure aggregation), not the individual updates.
        public static let individualUpdatesRequired = Code(.individualUpdatesRequired)
        /// Restored optimiser state does not belong to this strategy or this model.
        public static let invalidState = Code(.invalidState)

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
