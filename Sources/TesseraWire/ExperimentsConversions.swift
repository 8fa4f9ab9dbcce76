import Foundation
public import TesseraFederation

/// The bounds of `tessera.v1.ExperimentsService` (documented in `experiments.proto`). The
/// coordinator checks every request against them before it does anything else with it; the YAML
/// is measured before it is parsed.
public enum ExperimentsAPILimits {
    /// The largest experiment file a submission may carry: 1 MiB of UTF-8.
    public static let maximumConfigBytes = 1 << 20
    /// The longest file path a submission may name (for error messages only).
    public static let maximumSourceBytes = 1024
    /// The longest model name a query may name.
    public static let maximumNameBytes = 256
    /// The longest model reference (`NAME@MAJOR.MINOR.PATCH`).
    public static let maximumReferenceBytes = 300
    /// How many `--where` conditions a model query may carry, and how long each may be.
    public static let maximumConditions = 16
    public static let maximumConditionBytes = 256
    /// List sizes: what 0 asks for, and the most a request may ask for.
    public static let defaultListLimit = 100
    public static let maximumListLimit = 1000
    /// Log lines: what 0 asks for, and the most a request may ask for.
    public static let defaultLogLines = 1000
    public static let maximumLogLines = 5000

    /// A request's `limit`: 0 means `default`; above `maximum` is refused rather than clipped,
    /// so a caller never silently gets less than it asked for.
    public static func limit(_ requested: UInt32, default: Int, maximum: Int, field: String) throws(WireError) -> Int {
        if requested == 0 { return `default` }
        guard requested <= maximum else {
            throw WireError.outOfRange(field, "asks for \(requested); at most \(maximum) (0 for \(`default`)).")
        }
        return Int(requested)
    }

    /// Refuses a string longer than `maximum` UTF-8 bytes, naming the field and the bound.
    public static func check(_ text: String, maximumBytes maximum: Int, field: String) throws(WireError) {
        let count = text.utf8.count
        guard count <= maximum else {
            throw WireError(
                code: .sizeLimitExceeded, message: "is \(count) bytes; at most \(maximum) bytes are accepted.",
                field: field)
        }
    }
}

// MARK: ModelStage

extension Tessera_V1_ModelStage {
    public init(_ stage: ModelStage) {
        switch stage {
        case .candidate: self = .candidate
        case .staging: self = .staging
        case .production: self = .production
        case .archived: self = .archived
        }
    }
}

extension ModelStage {
    /// `nil` for UNSPECIFIED (no stage given); an unknown value throws.
    public init?(_ wire: Tessera_V1_ModelStage, field: String) throws(WireError) {
        switch wire {
        case .unspecified: return nil
        case .candidate: self = .candidate
        case .staging: self = .staging
        case .production: self = .production
        case .archived: self = .archived
        case .UNRECOGNIZED(let value):
            throw WireError(code: .unknownEnumValue, message: "unknown model stage \(value).", field: field)
        }
    }
}

// MARK: RegisteredModel

extension Tessera_V1_RegisteredModel {
    public init(_ model: RegisteredModel) throws(WireError) {
        self.init()
        name = model.name
        version = try Tessera_V1_ModelVersion(model.version)
        digest = model.digest
        if let parent = model.parent { self.parent = try Tessera_V1_ModelVersion(parent) }
        experiment = try checkedUInt64(model.experiment, wireField("RegisteredModel", "experiment"))
        run = try checkedUInt64(model.run, wireField("RegisteredModel", "run"))
        round = try checkedUInt64(model.round, wireField("RegisteredModel", "round"))
        cohortSize = try checkedUInt64(model.cohortSize, wireField("RegisteredModel", "cohort_size"))
        contributors = try checkedUInt64(model.contributors, wireField("RegisteredModel", "contributors"))
        metrics = model.metrics
        configHash = model.configHash
        architecture = model.architecture
        createdAt = model.createdAt.timeIntervalSince1970
        stage = Tessera_V1_ModelStage(model.stage)
    }
}

extension RegisteredModel {
    public init(_ wire: Tessera_V1_RegisteredModel) throws(WireError) {
        let field = { (name: String) in wireField("RegisteredModel", name) }
        guard wire.hasVersion else { throw WireError.missing(field("version"), "the model's version") }
        guard let stage = try ModelStage(wire.stage, field: field("stage")) else {
            throw WireError.missing(field("stage"), "the model's stage")
        }
        let parent: ModelVersion? = try wire.hasParent ? ModelVersion(wire.parent) : nil
        self.init(
            name: wire.name, version: try ModelVersion(wire.version),
            digest: wire.digest, parent: parent,
            experiment: try checkedInt64(wire.experiment, field("experiment")),
            run: try checkedInt64(wire.run, field("run")), round: try checkedInt(wire.round, field("round")),
            cohortSize: try checkedInt(wire.cohortSize, field("cohort_size")),
            contributors: try checkedInt(wire.contributors, field("contributors")), metrics: wire.metrics,
            configHash: wire.configHash, architecture: wire.architecture,
            createdAt: try checkedDate(wire.createdAt, field("created_at")), stage: stage)
    }
}

// MARK: StageTransition

extension Tessera_V1_StageTransition {
    public init(_ transition: StageTransition) {
        self.init()
        from = Tessera_V1_ModelStage(transition.from)
        to = Tessera_V1_ModelStage(transition.to)
        actor = transition.actor
        at = transition.at.timeIntervalSince1970
        if let reason = transition.reason { self.reason = reason }
    }
}

extension StageTransition {
    /// A transition of `model` (the wire form leaves the model out: it travels beside it).
    public init(_ wire: Tessera_V1_StageTransition, of model: ModelReference) throws(WireError) {
        let field = { (name: String) in wireField("StageTransition", name) }
        guard let from = try ModelStage(wire.from, field: field("from")) else {
            throw WireError.missing(field("from"), "the stage before the change")
        }
        guard let to = try ModelStage(wire.to, field: field("to")) else {
            throw WireError.missing(field("to"), "the stage after the change")
        }
        self.init(
            model: model, from: from, to: to, actor: wire.actor, at: try checkedDate(wire.at, field("at")),
            reason: wire.hasReason ? wire.reason : nil)
    }
}

// MARK: ModelQuery

extension Tessera_V1_ListModelsRequest {
    public init(_ query: ModelQuery) throws(WireError) {
        self.init()
        name = query.name ?? ""
        if let experiment = query.experiment {
            self.experiment = try checkedUInt64(experiment, wireField("ListModelsRequest", "experiment"))
        }
        if let stage = query.stage { self.stage = Tessera_V1_ModelStage(stage) }
        conditions = query.conditions.map(\.description)
        if let limit = query.limit { self.limit = UInt32(clamping: max(0, limit)) }
    }
}

extension ModelQuery {
    /// The query a request asks for, every bound checked and every condition parsed.
    public init(_ wire: Tessera_V1_ListModelsRequest) throws(WireError) {
        let field = { (name: String) in wireField("ListModelsRequest", name) }
        try ExperimentsAPILimits.check(
            wire.name, maximumBytes: ExperimentsAPILimits.maximumNameBytes, field: field("name"))
        guard wire.conditions.count <= ExperimentsAPILimits.maximumConditions else {
            throw WireError(
                code: .sizeLimitExceeded,
                message: "has \(wire.conditions.count) conditions; at most \(ExperimentsAPILimits.maximumConditions).",
                field: field("conditions"))
        }
        var conditions: [MetricCondition] = []
        for text in wire.conditions {
            try ExperimentsAPILimits.check(
                text, maximumBytes: ExperimentsAPILimits.maximumConditionBytes, field: field("conditions"))
            do {
                conditions.append(try MetricCondition(parsing: text))
            } catch {
                throw WireError.outOfRange(field("conditions"), error.message)
            }
        }
        let experiment: Int64? = try wire.experiment == 0 ? nil : checkedInt64(wire.experiment, field("experiment"))
        self.init(
            name: wire.name.isEmpty ? nil : wire.name,
            experiment: experiment,
            stage: try ModelStage(wire.stage, field: field("stage")), conditions: conditions,
            limit: try ExperimentsAPILimits.limit(
                wire.limit, default: ExperimentsAPILimits.defaultListLimit,
                maximum: ExperimentsAPILimits.maximumListLimit, field: field("limit")))
    }
}

// MARK: Checked values

/// A wire `uint64` id or count that must fit an `Int64`.
func checkedInt64(_ value: UInt64, _ field: String) throws(WireError) -> Int64 {
    guard let int = Int64(exactly: value) else {
        throw WireError.outOfRange(field, "\(value) does not fit a 64-bit signed integer.")
    }
    return int
}

func checkedUInt64(_ value: Int64, _ field: String) throws(WireError) -> UInt64 {
    guard let unsigned = UInt64(exactly: value) else {
        throw WireError.outOfRange(field, "cannot send the negative value \(value).")
    }
    return unsigned
}

/// A time in seconds since 1970 that must be finite.
func checkedDate(_ seconds: Double, _ field: String) throws(WireError) -> Date {
    guard seconds.isFinite else { throw WireError.outOfRange(field, "\(seconds) is not a time.") }
    return Date(timeIntervalSince1970: seconds)
}
