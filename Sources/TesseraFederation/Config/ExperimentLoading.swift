import Foundation
import Yams

extension ExperimentConfig {
    /// Reads, decodes and validates an experiment file. Relative dataset paths in it are
    /// resolved against the file's directory (``baseDirectory``).
    public static func load(from url: URL) throws(ConfigError) -> ExperimentConfig {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(
                .unreadableFile, path: "", "cannot read the experiment file: \(error.localizedDescription)", file: url.path)
        }
        return try parse(yaml: text, source: url.path, baseDirectory: url.deletingLastPathComponent().path)
    }

    /// Decodes and validates experiment YAML. `source` names it in errors (a file path, or
    /// something like `<stdin>`); relative dataset paths resolve against `baseDirectory`
    /// (`nil`: the working directory).
    public static func parse(yaml: String, source: String, baseDirectory: String? = nil) throws(ConfigError) -> ExperimentConfig {
        let root = try compose(yaml, source: source)
        var base = root
        var variantsNode: (key: Node, value: Node)?
        if let index = root.firstIndex(where: { $0.key.string == "variants" }) {
            variantsNode = root[index]
            base = Node.Mapping(root.filter { $0.key.string != "variants" }, root.tag, root.style, root.mark)
        }
        var config = try decodeAndValidate(base, source: source, baseDirectory: baseDirectory)
        if let variantsNode {
            config.variants = try expandVariants(
                variantsNode, base: base, baseConfig: config, source: source, baseDirectory: baseDirectory)
        }
        return config
    }

    // MARK: - Steps

    private static func compose(_ yaml: String, source: String) throws(ConfigError) -> Node.Mapping {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, source: source)
        } catch {
            throw ConfigError(.syntax, path: "", "not valid YAML: \(error)", file: source)
        }
        guard let node else { return Node.Mapping([]) }  // an empty file: every default
        if node.null != nil { return Node.Mapping([]) }
        guard let mapping = node.mapping else {
            throw ConfigError(
                .typeMismatch, path: "",
                "the document must be a mapping of sections (name:, rounds:, model:, …), found \(describe(node))",
                file: source, line: node.mark?.line, column: node.mark?.column)
        }
        return mapping
    }

    private static func syntaxError(_ error: YamlError, source: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return ConfigError(.syntax, path: "", "not valid YAML: \(detail)", file: source, line: mark.line, column: mark.column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(
                .syntax, path: "", "duplicated key \(duplicates.joined(separator: ", ")) \(context.text); give each key once",
                file: source, line: context.mark.line, column: context.mark.column)
        default:
            return ConfigError(.syntax, path: "", "not valid YAML: \(error)", file: source)
        }
    }

    /// Decodes a mapping into a configuration and validates it; every error is located in `mapping`.
    static func decodeAndValidate(
        _ mapping: Node.Mapping, source: String, baseDirectory: String?
    ) throws(ConfigError) -> ExperimentConfig {
        let node = Node.mapping(mapping)
        var config: ExperimentConfig
        do {
            config = try YAMLDecoder().decode(ExperimentConfig.self, from: node)
        } catch {
            throw locate(error, in: node, source: source)
        }
        config.baseDirectory = baseDirectory
        do {
            try config.validate()
        } catch {
            throw locate(error, in: node, source: source)
        }
        return config
    }

    private static func expandVariants(
        _ entry: (key: Node, value: Node), base: Node.Mapping, baseConfig: ExperimentConfig, source: String,
        baseDirectory: String?
    ) throws(ConfigError) -> [ExperimentVariant] {
        let root = Node.mapping(Node.Mapping([entry]))
        func fail(_ code: ConfigError.Code, _ path: [ConfigPath.Component], _ message: String) -> ConfigError {
            locate(ConfigError(code, at: path, message), in: root, source: source)
        }
        guard let list = entry.value.sequence, !list.isEmpty else {
            throw fail(.typeMismatch, [.key("variants")], "must be a non-empty list of {name, set} entries, found \(describe(entry.value))")
        }
        var variants: [ExperimentVariant] = []
        for (i, item) in list.enumerated() {
            let here: [ConfigPath.Component] = [.key("variants"), .index(i)]
            guard let fields = item.mapping else {
                throw fail(.typeMismatch, here, "must be a mapping with name: and set:, found \(describe(item))")
            }
            for (key, _) in fields where key.string != "name" && key.string != "set" {
                throw fail(.unknownKey, here + [.key(key.string ?? "?")], "unknown key; accepted keys: name, set")
            }
            guard let nameNode = fields["name"], let name = nameNode.scalar?.string, !name.isEmpty else {
                throw fail(.missingValue, here + [.key("name")], "required: a name for this arm (letters, digits, ., _, -)")
            }
            guard isValidName(name) else {
                throw fail(.invalidValue, here + [.key("name")], "\"\(name)\" may only hold letters, digits, ., _ and -")
            }
            if variants.contains(where: { $0.name == name }) {
                throw fail(.invalidValue, here + [.key("name")], "\"\(name)\" is used by an earlier variant; names must be unique")
            }
            var overrides = Node.Mapping([])
            if let set = fields["set"], set.null == nil {
                guard let mapping = set.mapping else {
                    throw fail(.typeMismatch, here + [.key("set")], "must be a mapping of settings to change, found \(describe(set))")
                }
                overrides = mapping
            }
            if overrides.contains(where: { $0.key.string == "name" }) {
                throw fail(
                    .conflict, here + [.key("set"), .key("name")],
                    "a variant's run is named <experiment>-<variant>; set variants[\(i)].name instead")
            }
            var generated: [(Node, Node)] = [(Node("name"), Node(baseConfig.name + "-" + name))]
            if let directory = baseConfig.outputDirectory, !overrides.contains(where: { $0.key.string == "output_directory" }) {
                generated.append((Node("output_directory"), Node(directory + "/" + name)))
            }
            let merged = merge(merge(base, overrides), Node.Mapping(generated))
            do {
                let config = try decodeAndValidate(merged, source: source, baseDirectory: baseDirectory)
                variants.append(ExperimentVariant(name: name, config: config))
            } catch {
                throw relocate(error, variant: i, name: name, overrides: overrides, source: source)
            }
        }
        return variants
    }

    /// An error found in a merged variant points into the variant's `set:` when the offending
    /// value came from there; otherwise it keeps the base path and says which arm failed.
    private static func relocate(
        _ error: ConfigError, variant index: Int, name: String, overrides: Node.Mapping, source: String
    ) -> ConfigError {
        let prefix: [ConfigPath.Component] = [.key("variants"), .index(index), .key("set")]
        if !error.components.isEmpty, lookup(error.components, in: .mapping(overrides)) != nil {
            var moved = ConfigError(error.code, at: prefix + error.components, error.message)
            let found = lookup(error.components, in: .mapping(overrides), key: error.code == .unknownKey)
            moved.file = source
            moved.line = found?.mark?.line
            moved.column = found?.mark?.column
            return moved
        }
        var kept = error
        kept.message += " (in variant \"\(name)\", variants[\(index)])"
        return kept
    }

    // MARK: - Locating errors in the YAML tree

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
            result = ConfigError(.missingValue, at: ConfigPath.components(context.codingPath), "expected \(describe(type)), found nothing")
        case DecodingError.keyNotFound(let key, let context):
            result = ConfigError(.missingValue, at: ConfigPath.components(context.codingPath) + [.key(key.stringValue)], "required")
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
    static func lookup(_ path: [ConfigPath.Component], in root: Node, key: Bool = false, nearest: Bool = false) -> Node? {
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

    private static func describe(_ node: Node) -> String {
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

    // MARK: - Merging

    /// `overrides` deep-merged over `base`: mappings merge key by key, anything else replaces.
    static func merge(_ base: Node.Mapping, _ overrides: Node.Mapping) -> Node.Mapping {
        var pairs: [(Node, Node)] = []
        for (key, value) in base {
            if let replacement = overrides.first(where: { $0.key.string == key.string })?.value {
                if let a = value.mapping, let b = replacement.mapping {
                    pairs.append((key, .mapping(merge(a, b))))
                } else {
                    pairs.append((key, replacement))
                }
            } else {
                pairs.append((key, value))
            }
        }
        for (key, value) in overrides where !base.contains(where: { $0.key.string == key.string }) {
            pairs.append((key, value))
        }
        return Node.Mapping(pairs, base.tag, base.style, base.mark)
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name.first != "." && name.first != "-"
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }
}
