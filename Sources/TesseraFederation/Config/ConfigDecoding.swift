import Yams

// Strict decoding support shared by every configuration section.
//
// Each section decodes itself in `init(from:)`, starting from the defaults of its own
// initializer (so a default is written down exactly once), and first refuses any key it does
// not define. Problems are thrown as `ConfigError` carrying the path from the decoder's coding
// path; `ExperimentConfig.parse` then adds the file, line and column from the YAML tree.

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
    /// The section's keyed container, after checking that every key in the mapping is one of
    /// `Key`'s. Throws ``ConfigError/Code-swift.struct/unknownKey`` naming the bad key, the
    /// accepted keys and, when the key is a near-miss, the likely intended one.
    func configSection<Key: CodingKey & CaseIterable>(_ keys: Key.Type) throws -> (KeyedDecodingContainer<Key>, Set<String>) {
        let everything = try container(keyedBy: AnyConfigKey.self)
        let accepted = Key.allCases.map(\.stringValue)
        let present = everything.allKeys.map(\.stringValue)
        for key in present where !accepted.contains(key) {
            throw ConfigError(
                .unknownKey, at: ConfigPath.components(codingPath) + [.key(key)],
                "unknown key\(suggestion(for: key, among: accepted)); accepted keys: \(accepted.joined(separator: ", "))")
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
                "\"\(text)\" is not one of \(C.acceptedList)\(suggestion(for: text, among: C.allCases.map(\.rawValue)))")
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
