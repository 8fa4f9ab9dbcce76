import Foundation

/// A filter over the model registry: `tessera models list --experiment E --stage S --where "accuracy>=0.9"`.
public struct ModelQuery: Sendable, Hashable {
    public var name: String?
    public var experiment: Int64?
    public var stage: ModelStage?
    /// Every condition must hold; a version without the named metric does not match.
    public var conditions: [MetricCondition]
    /// At most this many versions, newest first; `nil` for all.
    public var limit: Int?

    public init(
        name: String? = nil, experiment: Int64? = nil, stage: ModelStage? = nil, conditions: [MetricCondition] = [],
        limit: Int? = nil
    ) {
        self.name = name
        self.experiment = experiment
        self.stage = stage
        self.conditions = conditions
        self.limit = limit
    }

    public func matches(_ model: RegisteredModel) -> Bool {
        if let name, model.name != name { return false }
        if let experiment, model.experiment != experiment { return false }
        if let stage, model.stage != stage { return false }
        return conditions.allSatisfy { $0.holds(for: model) }
    }
}

/// One `--where` condition: a metric, a comparison and a number (`accuracy>=0.9`, `loss<0.3`,
/// `round=20`).
public struct MetricCondition: Sendable, Hashable, CustomStringConvertible {
    public enum Comparison: String, Sendable, Hashable, CaseIterable {
        // Two-character operators first, so `>=` is not read as `>`.
        case greaterOrEqual = ">="
        case lessOrEqual = "<="
        case notEqual = "!="
        case equal = "="
        case greater = ">"
        case less = "<"
    }

    public var metric: String
    public var comparison: Comparison
    public var value: Double

    /// The fields a condition can name besides the round's metrics.
    public static let fields = ["round", "cohort_size", "contributors", "patch"]

    public init(metric: String, comparison: Comparison, value: Double) {
        self.metric = metric
        self.comparison = comparison
        self.value = value
    }

    /// Parses `METRIC OP NUMBER`, with optional spaces; `==` is accepted for `=`.
    public init(parsing text: String) throws(RegistryError) {
        let normalized = text.replacingOccurrences(of: "==", with: "=")
        for comparison in Comparison.allCases {
            guard let range = normalized.range(of: comparison.rawValue) else { continue }
            let metric = normalized[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            let number = normalized[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard !metric.isEmpty, metric.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw RegistryError(.invalidQuery, "'\(text)': name a metric before '\(comparison.rawValue)'")
            }
            guard let value = Double(number), value.isFinite else {
                throw RegistryError(.invalidQuery, "'\(text)': '\(number)' is not a number")
            }
            self.init(metric: metric, comparison: comparison, value: value)
            return
        }
        throw RegistryError(
            .invalidQuery, "'\(text)' has no comparison: use METRIC OP NUMBER with OP one of >= <= > < = !=")
    }

    /// The value `metric` has for `model`, if it has one.
    public static func value(of metric: String, in model: RegisteredModel) -> Double? {
        switch metric {
        case "round": Double(model.round)
        case "cohort_size": Double(model.cohortSize)
        case "contributors": Double(model.contributors)
        case "patch": Double(model.version.patch)
        default: model.metrics[metric]
        }
    }

    public func holds(for model: RegisteredModel) -> Bool {
        guard let actual = Self.value(of: metric, in: model) else { return false }
        switch comparison {
        case .greaterOrEqual: return actual >= value
        case .lessOrEqual: return actual <= value
        case .notEqual: return actual != value
        case .equal: return actual == value
        case .greater: return actual > value
        case .less: return actual < value
        }
    }

    public var description: String { "\(metric)\(comparison.rawValue)\(value)" }
}
