/// A problem with an experiment file, located precisely enough to fix without guessing.
///
/// Every error names the YAML path of the offending value (`local_training.learning_rate`,
/// `dataset.paths[2]`, `variants[1].set.strategy.name`), says what is accepted there, and,
/// when the error came from a file, the file and the 1-based line and column.
///
///     Experiments/quickstart.yaml:14:3: local_training.lerning_rate: unknown key; accepted keys: epochs, batch_size, …
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it was.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case unreadableFile, syntax, unknownKey, typeMismatch, invalidValue, missingValue, conflict
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The file could not be read.
        public static let unreadableFile = Code(.unreadableFile)
        /// The text is not valid YAML (or has a duplicated key).
        public static let syntax = Code(.syntax)
        /// A key that this section does not define (usually a typo), or one that the chosen
        /// kind/strategy/optimizer does not use.
        public static let unknownKey = Code(.unknownKey)
        /// A value of the wrong type: text where a number belongs, a list where a mapping belongs.
        public static let typeMismatch = Code(.typeMismatch)
        /// A value out of its range or not one of the accepted names.
        public static let invalidValue = Code(.invalidValue)
        /// A key that must be given was not.
        public static let missingValue = Code(.missingValue)
        /// Values that are each valid but cannot be used together.
        public static let conflict = Code(.conflict)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// The YAML path of the value, `""` for the whole document.
    public var path: String
    /// What is wrong and what is accepted.
    public var message: String
    /// The file (or other source name) the YAML came from.
    public var file: String?
    /// 1-based line of the value (or of the key, for unknown keys), when known.
    public var line: Int?
    /// 1-based column, when known.
    public var column: Int?

    /// The path as components, to locate the value in the YAML tree.
    let components: [ConfigPath.Component]

    public init(
        _ code: Code, path: String, _ message: String, file: String? = nil, line: Int? = nil, column: Int? = nil
    ) {
        self.code = code
        self.path = path
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.components = ConfigPath.parse(path)
    }

    /// An error at the value a decoder is at (`codingPath`, plus the key in question), thrown
    /// from `init(from:)`; ``ConfigDocument`` adds the file, line and column.
    public init(_ code: Code, at codingPath: [any CodingKey], _ message: String) {
        self.init(code, at: ConfigPath.components(codingPath), message)
    }

    /// An error at `key` of the mapping `container` decodes.
    public init<Key: CodingKey>(_ code: Code, at key: Key, in container: KeyedDecodingContainer<Key>, _ message: String)
    {
        self.init(code, at: container.codingPath + [key], message)
    }

    init(_ code: Code, at components: [ConfigPath.Component], _ message: String) {
        self.code = code
        self.components = components
        self.path = ConfigPath.format(components)
        self.message = message
    }

    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line {
                location += ":\(line)"
                if let column { location += ":\(column)" }
            }
            location += ": "
        }
        return location + (path.isEmpty ? "" : "\(path): ") + message
    }
}

/// YAML paths as written in error messages: keys joined by `.`, list positions as `[i]`.
enum ConfigPath {
    enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    static func format(_ components: [Component]) -> String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    static func parse(_ path: String) -> [Component] {
        var components: [Component] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: true) {
            var rest = Substring(part)
            if let bracket = rest.firstIndex(of: "[") {
                let key = rest[..<bracket]
                if !key.isEmpty { components.append(.key(String(key))) }
                rest = rest[bracket...]
                while rest.first == "[", let close = rest.firstIndex(of: "]") {
                    if let index = Int(rest[rest.index(after: rest.startIndex)..<close]) {
                        components.append(.index(index))
                    }
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                components.append(.key(String(rest)))
            }
        }
        return components
    }

    static func components(_ codingPath: [any CodingKey]) -> [Component] {
        codingPath.map { key in key.intValue.map(Component.index) ?? .key(key.stringValue) }
    }
}
