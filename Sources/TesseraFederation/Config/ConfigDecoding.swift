import Yams

// Strict decoding support shared by every configuration file (the experiment file, a site file).
//
// Each section decodes itself in `init(from:)`, starting from the defaults of its own
// initializer (so a default is written down exactly once), and first refuses any key it does
// not define (``Swift/Decoder/strictContainer(keyedBy:)``). Problems are thrown as `ConfigError`
// carrying the path from the decoder's coding path; ``ConfigDocument`` then adds the file, line
// and column from the YAML tree.

/// Decodes a YAML configuration file strictly, with every error located in the file.
///
/// Any file type uses it the same way: its `Decodable` types refuse unknown keys with
/// ``Swift/Decoder/strictContainer(keyedBy:)`` and throw ``ConfigError`` at their coding path
/// for bad values; the errors come out as `file:line:column: path: message`, the format of
/// experiment files.
public enum ConfigDocument {
    /// Decodes `yaml` into `Document`, then turns it into the result with `finish` (resolving
    /// and checking what decoding cannot, such as files on disk). A ``ConfigError`` thrown by
    /// either at a path, and any `DecodingError`, comes out with `source`, line and column. An
    /// empty document decodes as an empty mapping.
    public static func decode<Document: Decodable, Result>(
        _ type: Document.Type, yaml: String, source: String, then finish: (Document) throws -> Result
    ) throws(ConfigError) -> Result {
        let root = try compose(yaml, source: source)
        do throws(ConfigError) {
            return try decode(type, from: root, source: source, then: finish)
        } catch {
            // An empty document has no positions; its errors (a required key) belong at its start.
            var located = error
            if located.line == nil, root.mapping?.isEmpty == true {
                located.line = 1
                located.column = 1
            }
            throw located
        }
    }

    /// ``decode(_:yaml:source:then:)`` from a composed (or merged) YAML tree.
    static func decode<Document: Decodable, Result>(
        _ type: Document.Type, from root: Node, source: String, then finish: (Document) throws -> Result
    ) throws(ConfigError) -> Result {
        do {
            return try finish(try YAMLDecoder().decode(type, from: root))
        } catch {
            throw locate(error, in: root, source: source)
        }
    }

    /// The YAML tree of `yaml`; an empty or null document is an empty mapping. Syntax errors and
    /// duplicated keys are ``ConfigError/Code-swift.struct/syntax`` with their line and column.
    static func compose(_ yaml: String, source: String) throws(ConfigError) -> Node {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, yaml: yaml, source: source)
        } catch {
            throw ConfigError(.syntax, path: "", "not valid YAML: \(error)", file: source)
        }
        guard let node, node.null == nil else { return .mapping(Node.Mapping([])) }
        return node
    }

    private static func syntaxError(_ error: YamlError, yaml: String, source: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return ConfigError(
                .syntax, path: "", "not valid YAML: \(detail)", file: source, line: mark.line, column: mark.column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let repeated = duplicates.sorted().first.flatMap {
                secondOccurrence(of: $0, in: yaml, mappingAt: context.mark)
            }
            return ConfigError(
                .syntax, path: "", "duplicated key \(duplicates.joined(separator: ", ")); give each key once",
                file: source, line: repeated?.line ?? context.mark.line, column: repeated?.column ?? context.mark.column
            )
        default:
            return ConfigError(.syntax, path: "", "not valid YAML: \(error)", file: source)
        }
    }

    /// Where `key:` is written the second time in the block mapping that starts at `mark` (Yams
    /// reports the mapping's position); `nil` when it is not found that way, as in a flow mapping.
    private static func secondOccurrence(
        of key: String, in yaml: String, mappingAt mark: Mark
    ) -> (line: Int, column: Int)? {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let indent = mark.column - 1
        guard mark.line >= 1, mark.line <= lines.count else { return nil }
        var seen = 0
        for number in mark.line...lines.count {
            let text = lines[number - 1].unicodeScalars
            if number > mark.line {
                // The mapping's keys start at its column; blank and comment lines and deeper values are skipped.
                let leading = text.prefix(while: { $0 == " " }).count
                if leading == text.count || text[text.index(text.startIndex, offsetBy: leading)] == "#" { continue }
                if leading < indent { break }
                if leading > indent { continue }
            }
            guard text.count > indent else { continue }
            let rest = Substring(text[text.index(text.startIndex, offsetBy: indent)...])
            guard rest.hasPrefix(key), rest.dropFirst(key.count).drop(while: { $0 == " " }).first == ":" else {
                continue
            }
            seen += 1
            if seen == 2 { return (number, mark.column) }
        }
        return nil
    }

    // MARK: Locating errors in the YAML tree

    /// Turns any error thrown while decoding or validating into a ``ConfigError`` with the
    /// file, line and column of the value it concerns.
    static func locate(_ error: any Error, in root: Node, source: String) -> ConfigError {
        var result: ConfigError
        switch error {
        case let error as ConfigError:
            result = error
        case DecodingError.typeMismatch(let type, let context):
            let components = ConfigPath.components(context.codingPath)
            let found = lookup(components, in: root).map(describe) ?? "nothing"
            result = ConfigError(.typeMismatch, at: components, "expected \(describe(type)), found \(found)")
        case DecodingError.valueNotFound(let type, let context):
            result = ConfigError(
                .missingValue, at: ConfigPath.components(context.codingPath),
                "expected \(describe(type)), found nothing")
        case DecodingError.keyNotFound(let key, let context):
            result = ConfigError(
                .missingValue, at: ConfigPath.components(context.codingPath) + [.key(key.stringValue)], "required")
        case DecodingError.dataCorrupted(let context):
            result = ConfigError(.invalidValue, at: ConfigPath.components(context.codingPath), context.debugDescription)
        default:
            result = ConfigError(.invalidValue, path: "", "\(error)")
        }
        result.file = source
        if result.line == nil {
            let node = lookup(result.components, in: root, key: result.code == .unknownKey, nearest: true)
            result.line = node?.mark?.line
            result.column = node?.mark?.column
        }
        return result
    }

    /// The node at `path` (or, with `key`, the key node of its last component; with `nearest`,
    /// the deepest node that exists on the way).
    static func lookup(_ path: [ConfigPath.Component], in root: Node, key: Bool = false, nearest: Bool = false) -> Node?
    {
        var current = root
        for (depth, component) in path.enumerated() {
            let last = depth == path.count - 1
            switch component {
            case .key(let name):
                guard let pair = current.mapping?.first(where: { $0.key.string == name }) else {
                    return nearest ? current : nil
                }
                if last && key { return pair.key }
                current = pair.value
            case .index(let index):
                guard let list = current.sequence, index < list.count else { return nearest ? current : nil }
                current = list[index]
            }
        }
        return current
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): node.null != nil ? "nothing (null)" : "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        switch name {
        case "Int", "Int64", "Int32": return "an integer"
        case "UInt64", "UInt32", "UInt": return "a non-negative integer"
        case "Double", "Float": return "a number"
        case "Bool": return "true or false"
        case "String": return "a string"
        case "Mapping": return "a mapping of keys to values"
        case "Sequence": return "a list"
        case "Scalar": return "a single value"
        default:
            if name.hasPrefix("Array<") { return "a list" }
            if name.hasPrefix("Dictionary<") { return "a mapping" }
            return "a value of type \(name)"
        }
    }
}

/// A coding key for any string, to see every key a mapping holds (the synthesized `CodingKeys`
/// only see the keys they define, which is how typos slip through ordinary `Codable`).
struct AnyConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A closed set of names in an experiment file (`fedavg`, `sgd`, `dirichlet`, …). Decoded
/// through ``KeyedDecodingContainer/choice(_:forKey:default:)`` so a bad name is reported with
/// the accepted ones.
protocol ConfigChoice: RawRepresentable<String>, CaseIterable, Sendable, Hashable, Codable {}

extension ConfigChoice {
    static var acceptedList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension Decoder {
    /// The keyed container of a configuration mapping, after checking that every key in it is
    /// one of `Key`'s: ordinary `Codable` ignores the others, which is how typos slip through.
    /// Throws ``ConfigError/Code-swift.struct/unknownKey`` naming the bad key, the accepted keys
    /// and, when the key is a near-miss, the likely intended one.
    public func strictContainer<Key: CodingKey & CaseIterable>(
        keyedBy keys: Key.Type
    ) throws -> KeyedDecodingContainer<Key> {
        try configSection(keys).0
    }

    /// ``strictContainer(keyedBy:)`` and the keys the mapping holds; the keys in `excluded` are
    /// refused as unknown too (a section that shares its keys with another, less one).
    func configSection<Key: CodingKey & CaseIterable>(
        _ keys: Key.Type, excluding excluded: Set<String> = []
    ) throws -> (KeyedDecodingContainer<Key>, Set<String>) {
        let everything = try container(keyedBy: AnyConfigKey.self)
        let accepted = Key.allCases.map(\.stringValue).filter { !excluded.contains($0) }
        let present = everything.allKeys.map(\.stringValue)
        for key in present where !accepted.contains(key) {
            throw ConfigError(
                .unknownKey, at: ConfigPath.components(codingPath) + [.key(key)],
                "unknown key\(suggestion(for: key, among: accepted)); accepted keys: \(accepted.joined(separator: ", "))"
            )
        }
        return (try container(keyedBy: Key.self), Set(present))
    }

    /// Refuses keys that are valid in the section but not for the chosen variant of it (a
    /// `momentum` for `fedadam`, an `alpha` for `iid` partitioning): silently ignoring them
    /// would let a researcher believe a setting took effect.
    ///
    /// - Parameters:
    ///   - present: the keys the mapping holds.
    ///   - allowed: the keys the chosen variant uses.
    ///   - usage: for each variant-specific key, the choices that use it.
    ///   - label: what the choice is called in messages (`strategy`, `dataset kind`, …).
    ///   - chosen: the chosen value.
    func rejectInapplicable(
        present: Set<String>, allowed: [String], usage: [String: [String]], label: String, chosen: String
    ) throws {
        for key in present.sorted() where !allowed.contains(key) {
            let users = usage[key].map { "; it applies to \($0.joined(separator: ", "))" } ?? ""
            throw ConfigError(
                .unknownKey, at: ConfigPath.components(codingPath) + [.key(key)],
                "not used by \(label) \"\(chosen)\"\(users). Keys for \(label) \"\(chosen)\": "
                    + allowed.joined(separator: ", "))
        }
    }

    /// ``ConfigError/Code-swift.struct/missingValue`` for `key` of this section.
    func missing(_ key: String, _ why: String) -> ConfigError {
        ConfigError(.missingValue, at: ConfigPath.components(codingPath) + [.key(key)], "required \(why)")
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, default fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// The value at `key`, or `fallback` (which may be `nil`) when absent or null.
    func optional<T: Decodable>(_ key: Key, default fallback: T? = nil) throws -> T? {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// A name from a closed set; a name outside it throws ``ConfigError/Code-swift.struct/invalidValue``
    /// listing the accepted names.
    func choice<C: ConfigChoice>(_ type: C.Type, forKey key: Key, default fallback: C) throws -> C {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return fallback }
        guard let value = C(rawValue: text) else {
            throw ConfigError(
                .invalidValue, at: ConfigPath.components(codingPath) + [.key(key.stringValue)],
                "\"\(text)\" is not one of \(C.acceptedList)\(suggestion(for: text, among: C.allCases.map(\.rawValue)))"
            )
        }
        return value
    }
}

/// `" (did you mean "x"?)"` when `word` is within two edits of one accepted word.
func suggestion(for word: String, among candidates: [String]) -> String {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0)) }.filter { $0.1 <= 2 }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return "" }
    return " (did you mean \"\(best.0)\"?)"
}

/// Levenshtein distance, for suggestions only (keys are short).
private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

// MARK: - Validation helpers

/// Collects range checks of one section so that `validate()` reads as a list of rules.
struct ConfigRules {
    let prefix: [ConfigPath.Component]

    init(_ prefix: String) { self.prefix = ConfigPath.parse(prefix) }

    func path(_ key: String) -> [ConfigPath.Component] { prefix + ConfigPath.parse(key) }

    /// Throws ``ConfigError/Code-swift.struct/invalidValue`` at `key` with `message` unless `condition`.
    func check(_ condition: Bool, _ key: String, _ message: @autoclosure () -> String) throws(ConfigError) {
        guard condition else { throw ConfigError(.invalidValue, at: path(key), message()) }
    }

    /// Throws ``ConfigError/Code-swift.struct/conflict`` at `key` unless `condition`.
    func conflict(unless condition: Bool, _ key: String, _ message: @autoclosure () -> String) throws(ConfigError) {
        guard condition else { throw ConfigError(.conflict, at: path(key), message()) }
    }

    func positive(_ value: Double, _ key: String) throws(ConfigError) {
        try check(value.isFinite && value > 0, key, "must be a positive number, got \(value)")
    }

    func positive(_ value: Int, _ key: String) throws(ConfigError) {
        try check(value > 0, key, "must be a positive integer, got \(value)")
    }

    func nonNegative(_ value: Double, _ key: String) throws(ConfigError) {
        try check(value.isFinite && value >= 0, key, "must be a finite number ≥ 0, got \(value)")
    }

    /// `value ∈ [low, high)`.
    func halfOpen(_ value: Double, _ low: Double, _ high: Double, _ key: String) throws(ConfigError) {
        try check(value >= low && value < high, key, "must lie in [\(format(low)), \(format(high))), got \(value)")
    }

    /// `value ∈ (low, high]`.
    func leftOpen(_ value: Double, _ low: Double, _ high: Double, _ key: String) throws(ConfigError) {
        try check(value > low && value <= high, key, "must lie in (\(format(low)), \(format(high))], got \(value)")
    }

    private func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}

extension ConfigChoice {
    /// For each key that some choices use, the names of those choices (for error messages).
    static func usage(_ keys: (Self) -> [String]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for choice in allCases {
            for key in keys(choice) { result[key, default: []].append(choice.rawValue) }
        }
        return result
    }
}

// MARK: - Canonical encoding

extension KeyedEncodingContainer {
    /// Encodes `value` only when `key` is one the section's chosen variant uses (and the value
    /// is not `nil`), so the canonical form holds no settings that have no effect and decodes
    /// back under the strict rules.
    mutating func encode<T: Encodable>(_ value: T?, forKey key: Key, ifIn allowed: [String]) throws {
        guard allowed.contains(key.stringValue), let value else { return }
        try encode(value, forKey: key)
    }
}
