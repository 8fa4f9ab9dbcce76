public import Foundation
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
                .unreadableFile, path: "", "cannot read the experiment file: \(error.localizedDescription)",
                file: url.path)
        }
        return try parse(yaml: text, source: url.path, baseDirectory: url.deletingLastPathComponent().path)
    }

    /// Decodes and validates experiment YAML. `source` names it in errors (a file path, or
    /// something like `<stdin>`); relative dataset paths resolve against `baseDirectory`
    /// (`nil`: the working directory).
    public static func parse(
        yaml: String, source: String, baseDirectory: String? = nil
    ) throws(ConfigError) -> ExperimentConfig {
        let document = try ConfigDocument.compose(yaml, source: source)
        guard let root = document.mapping else {
            throw ConfigError(
                .typeMismatch, path: "",
                "the document must be a mapping of sections (name:, rounds:, model:, …), found \(ConfigDocument.describe(document))",
                file: source, line: document.mark?.line, column: document.mark?.column)
        }
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

    /// Decodes a mapping into a configuration and validates it; every error is located in `mapping`.
    static func decodeAndValidate(
        _ mapping: Node.Mapping, source: String, baseDirectory: String?
    ) throws(ConfigError) -> ExperimentConfig {
        try ConfigDocument.decode(ExperimentConfig.self, from: .mapping(mapping), source: source) { config in
            var config = config
            config.baseDirectory = baseDirectory
            try config.validate()
            return config
        }
    }

    private static func expandVariants(
        _ entry: (key: Node, value: Node), base: Node.Mapping, baseConfig: ExperimentConfig, source: String,
        baseDirectory: String?
    ) throws(ConfigError) -> [ExperimentVariant] {
        let root = Node.mapping(Node.Mapping([entry]))
        func fail(_ code: ConfigError.Code, _ path: [ConfigPath.Component], _ message: String) -> ConfigError {
            ConfigDocument.locate(ConfigError(code, at: path, message), in: root, source: source)
        }
        guard let list = entry.value.sequence, !list.isEmpty else {
            throw fail(
                .typeMismatch, [.key("variants")],
                "must be a non-empty list of {name, set} entries, found \(ConfigDocument.describe(entry.value))")
        }
        var variants: [ExperimentVariant] = []
        for (i, item) in list.enumerated() {
            let here: [ConfigPath.Component] = [.key("variants"), .index(i)]
            guard let fields = item.mapping else {
                throw fail(
                    .typeMismatch, here, "must be a mapping with name: and set:, found \(ConfigDocument.describe(item))"
                )
            }
            for (key, _) in fields where key.string != "name" && key.string != "set" {
                throw fail(.unknownKey, here + [.key(key.string ?? "?")], "unknown key; accepted keys: name, set")
            }
            guard let nameNode = fields["name"], let name = nameNode.scalar?.string, !name.isEmpty else {
                throw fail(
                    .missingValue, here + [.key("name")], "required: a name for this arm (letters, digits, ., _, -)")
            }
            guard isValidName(name) else {
                throw fail(
                    .invalidValue, here + [.key("name")], "\"\(name)\" may only hold letters, digits, ., _ and -")
            }
            if variants.contains(where: { $0.name == name }) {
                throw fail(
                    .invalidValue, here + [.key("name")],
                    "\"\(name)\" is used by an earlier variant; names must be unique")
            }
            var overrides = Node.Mapping([])
            if let set = fields["set"], set.null == nil {
                guard let mapping = set.mapping else {
                    throw fail(
                        .typeMismatch, here + [.key("set")],
                        "must be a mapping of settings to change, found \(ConfigDocument.describe(set))")
                }
                overrides = mapping
            }
            if overrides.contains(where: { $0.key.string == "name" }) {
                throw fail(
                    .conflict, here + [.key("set"), .key("name")],
                    "a variant's run is named <experiment>-<variant>; set variants[\(i)].name instead")
            }
            var generated: [(Node, Node)] = [(Node("name"), Node(baseConfig.name + "-" + name))]
            if let directory = baseConfig.outputDirectory,
                !overrides.contains(where: { $0.key.string == "output_directory" })
            {
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
        if !error.components.isEmpty, ConfigDocument.lookup(error.components, in: .mapping(overrides)) != nil {
            var moved = ConfigError(error.code, at: prefix + error.components, error.message)
            let found = ConfigDocument.lookup(error.components, in: .mapping(overrides), key: error.code == .unknownKey)
            moved.file = source
            moved.line = found?.mark?.line
            moved.column = found?.mark?.column
            return moved
        }
        var kept = error
        kept.message += " (in variant \"\(name)\", variants[\(index)])"
        return kept
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
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
            }
    }
}
