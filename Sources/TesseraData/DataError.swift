/// The one error type of `TesseraData`.
///
/// Data problems are almost always fixed by a person editing a file, so every error says
/// *where*: the ``file``, the 1-based ``row`` (the line number a text editor shows) and the
/// ``column`` name, when they apply. The same facts are in ``message``, so a single log line
/// is enough; the separate fields let tools (a config validator, the dashboard) point at the
/// cell without parsing text.
public struct DataError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-checkable category. New codes may be added; switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case ioFailure
            case emptyFile
            case missingColumn
            case duplicateColumn
            case raggedRow
            case emptyCell
            case nonNumericCell
            case nonFiniteValue
            case malformedQuoting
            case invalidLabel
            case malformedHeader
            case unsupportedDType
            case unsupportedLayout
            case truncatedData
            case trailingData
            case shapeMismatch
            case invalidArgument
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The file could not be opened, read or written.
        public static let ioFailure = Code(.ioFailure)
        /// The file has no header row (or no bytes at all).
        public static let emptyFile = Code(.emptyFile)
        /// A column named in the options (the label, or a column to use or ignore) is not in
        /// the header. The message lists the columns that are.
        public static let missingColumn = Code(.missingColumn)
        /// Two header cells have the same name, so a column cannot be chosen by name.
        public static let duplicateColumn = Code(.duplicateColumn)
        /// A row has more or fewer cells than the header.
        public static let raggedRow = Code(.raggedRow)
        /// A cell that must hold a value is empty.
        public static let emptyCell = Code(.emptyCell)
        /// A feature cell (or a regression target) is not a number.
        public static let nonNumericCell = Code(.nonNumericCell)
        /// A cell holds NaN or ±infinity, which the policy rejects.
        public static let nonFiniteValue = Code(.nonFiniteValue)
        /// A quoted CSV field is not closed, or has text after its closing quote.
        public static let malformedQuoting = Code(.malformedQuoting)
        /// A label cannot be a class index (negative, fractional, or far too large).
        public static let invalidLabel = Code(.invalidLabel)
        /// A binary file's header (NPY magic and dict, IDX magic) cannot be parsed.
        public static let malformedHeader = Code(.malformedHeader)
        /// The element type is one Tessera does not read (big-endian, complex, structured…).
        public static let unsupportedDType = Code(.unsupportedDType)
        /// The array layout is not C order (NPY `fortran_order: True`).
        public static let unsupportedLayout = Code(.unsupportedLayout)
        /// The file ends before all the elements its header promises.
        public static let truncatedData = Code(.truncatedData)
        /// The file has bytes after the elements its header promises.
        public static let trailingData = Code(.trailingData)
        /// Features and labels (or a tensor and a requested shape) do not fit together.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// An argument is out of its valid range (a fraction, a client count, a batch size).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A complete, human-readable explanation, including the file, row and column.
    public var message: String
    /// The file involved, as the user named it (its path), if any.
    public var file: String?
    /// The 1-based line number of the offending row, if any.
    public var row: Int?
    /// The name of the offending column, if any.
    public var column: String?
    /// The underlying error (for example from the file system), if any.
    public var cause: (any Error & Sendable)?

    public init(
        _ code: Code, _ message: String, file: String? = nil, row: Int? = nil, column: String? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}
