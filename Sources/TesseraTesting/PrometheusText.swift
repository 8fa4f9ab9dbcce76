/// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that
/// scrape `/metrics`: it refuses any line a Prometheus server would refuse, so a test that reads
/// the exposition through it also checks the format.
public struct PrometheusText: Sendable {
    public struct Sample: Sendable, Hashable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var reason: String
        public var description: String { "line \(line) (\(reason)): \(text)" }
    }

    public private(set) var samples: [Sample] = []
    /// The declared type of each metric family (`# TYPE name type`).
    public private(set) var types: [String: String] = [:]

    public init(_ text: String) throws(FormatError) {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line)
            if line.isEmpty { continue }
            func fail(_ reason: String) -> FormatError { FormatError(line: index + 1, text: line, reason: reason) }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3).map(String.init)
                if words.count >= 2, words[1] == "TYPE" {
                    guard words.count == 4, Self.isMetricName(words[2]),
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3])
                    else { throw fail("malformed TYPE line") }
                    guard types[words[2]] == nil else { throw fail("second TYPE line for \(words[2])") }
                    types[words[2]] = words[3]
                }
                continue
            }
            var rest = Substring(line)
            let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
            guard Self.isMetricName(name) else { throw fail("bad metric name") }
            rest = rest.dropFirst(name.count)
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    let label = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                    guard !label.isEmpty, !(label.first!.isNumber) else { throw fail("bad label name") }
                    rest = rest.dropFirst(label.count)
                    guard rest.hasPrefix("=\"") else { throw fail("label \(label) without a quoted value") }
                    rest = rest.dropFirst(2)
                    var value = ""
                    while let character = rest.first, character != "\"" {
                        rest = rest.dropFirst()
                        if character == "\\" {
                            guard let escaped = rest.first else { throw fail("dangling escape") }
                            rest = rest.dropFirst()
                            switch escaped {
                            case "\\": value.append("\\")
                            case "\"": value.append("\"")
                            case "n": value.append("\n")
                            default: throw fail("unknown escape \\\(escaped)")
                            }
                        } else {
                            value.append(character)
                        }
                    }
                    guard rest.first == "\"" else { throw fail("unterminated label value") }
                    rest = rest.dropFirst()
                    guard labels.updateValue(value, forKey: label) == nil else { throw fail("label \(label) twice") }
                    if rest.first == "," {
                        rest = rest.dropFirst()
                    } else if rest.first != "}" {
                        throw fail("expected , or } after a label")
                    }
                }
                rest = rest.dropFirst()
            }
            guard rest.first == " " else { throw fail("no space before the value") }
            let fields = rest.dropFirst().split(separator: " ")
            guard (1...2).contains(fields.count), let value = Self.value(String(fields[0])) else {
                throw fail("bad value")
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`; `nil` if there is none.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in
            sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value }
        }?.value
    }

    /// Every series (name and labels), to compare what two runs expose.
    public var series: Set<String> {
        Set(
            samples.map { sample in
                sample.name + "{"
                    + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: ",") + "}"
            })
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" || first == ":" else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == ":" }
    }

    static func value(_ text: String) -> Double? {
        switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
    }
}
