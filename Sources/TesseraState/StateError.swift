import Foundation

/// The coordinator's state could not be opened, read or committed. A failed commit leaves the
/// last committed state as it was: the database rolls the transaction back, and a blob is
/// renamed into place only once complete.
public struct StateError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case cannotOpen, diskFull, readOnly, corrupt, notFound, conflict, io
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The state folder or its database cannot be created or opened.
        public static let cannotOpen = Code(.cannotOpen)
        /// The disk (or a quota) is full: nothing of the failed commit was kept.
        public static let diskFull = Code(.diskFull)
        /// The state folder is read-only: nothing of the failed commit was kept.
        public static let readOnly = Code(.readOnly)
        /// The database or a blob does not hold what was committed (a failed integrity check, a
        /// blob whose bytes do not hash to its name).
        public static let corrupt = Code(.corrupt)
        /// No experiment, run, version or site of that name.
        public static let notFound = Code(.notFound)
        /// The request contradicts the state (an experiment already finished, a duplicate).
        public static let conflict = Code(.conflict)
        /// Any other I/O or SQLite failure.
        public static let io = Code(.io)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        guard let cause else { return message }
        return "\(message): \(cause)"
    }
}
