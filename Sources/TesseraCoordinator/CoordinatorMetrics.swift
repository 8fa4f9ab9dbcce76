public import CoreMetrics
import Foundation
import Metrics
import Synchronization
public import TesseraFederation

/// What the coordinator counts, through swift-metrics into the factory it is given (the
/// process's ``MetricsExport`` in a deployment).
///
/// Every series is made up front from a fixed set of label values (outcomes, stages, byte
/// kinds, health states), so a site or a researcher can never add a series: the exposition
/// stays the same size whatever the federation does. Per-round and per-site detail belongs to
/// traces, logs and the dashboard.
public final class CoordinatorMetrics: Sendable {
    /// What a byte counter counts: models sent to sites, updates (plaintext or masked) received,
    /// and SecAgg protocol messages both ways (``counted``).
    public enum ByteKind: String, Sendable, CaseIterable {
        case model
        case update
        case secagg
    }

    public enum Direction: String, Sendable, CaseIterable {
        case received
        case sent
    }

    /// The byte series that exist: the coordinator never receives a model or sends an update.
    static let counted: [(Direction, ByteKind)] = [
        (.sent, .model), (.sent, .secagg), (.received, .update), (.received, .secagg),
    ]

    private let roundsCompleted: Counter
    private let roundsFailed: Counter
    private let roundDuration: [RoundRecord.Status: Metrics.Timer]
    private let stageDuration: [String: Metrics.Timer]
    private let unmasking: Metrics.Timer
    private let dropouts: [RoundStage: Counter]
    private let bytes: [Direction: [ByteKind: Counter]]
    private let participantsConnected: Gauge
    private let participantsSelected: Meter
    private let health: [SiteHealth: Gauge]
    private let uploadSlotsInUse: Gauge
    private let uploadSlots: Gauge
    private let fetchesInFlight: Meter
    private let rejections: Counter
    private let currentRound: Gauge
    private let factory: any MetricsFactory
    /// The model-metric and privacy gauges, made when their first value comes: an experiment
    /// without central evaluation or privacy shows no such series rather than a made-up zero.
    private let latest = Mutex<[String: Gauge]>([:])

    /// The model metrics kept as `tessera_model_metric{metric, source}`: the latest value of
    /// each, from the sites' evaluation and from the coordinator's central test set.
    static let modelMetricNames: [(metric: String, source: String, value: @Sendable (RoundRecord) -> Double?)] = [
        ("loss", "train", { $0.trainLoss }),
        ("loss", "sites", { $0.evalLoss }), ("accuracy", "sites", { $0.evalAccuracy }),
        ("auc", "sites", { $0.evalAUC }),
        ("loss", "central", { $0.centralLoss }), ("accuracy", "central", { $0.centralAccuracy }),
        ("auc", "central", { $0.centralAUC }),
    ]

    public init(factory: any MetricsFactory) {
        roundsCompleted = Counter(
            label: "tessera_rounds_total", dimensions: [("outcome", "completed")], factory: factory)
        roundsFailed = Counter(label: "tessera_rounds_total", dimensions: [("outcome", "failed")], factory: factory)
        var roundDuration: [RoundRecord.Status: Metrics.Timer] = [:]
        for status in [RoundRecord.Status.completed, .failed] {
            roundDuration[status] = Metrics.Timer(
                label: "tessera_round_duration_seconds", dimensions: [("outcome", status.rawValue)], factory: factory)
        }
        self.roundDuration = roundDuration
        var stageDuration: [String: Metrics.Timer] = [:]
        for stage in RoundStage.allCases.map(\.rawValue) + [CoordinatorStateMachine.centralEvaluationStage] {
            stageDuration[stage] = Metrics.Timer(
                label: "tessera_stage_duration_seconds", dimensions: [("stage", stage)], factory: factory)
        }
        self.stageDuration = stageDuration
        unmasking = Metrics.Timer(label: "tessera_secagg_unmasking_seconds", factory: factory)
        var dropouts: [RoundStage: Counter] = [:]
        for stage in RoundStage.allCases {
            dropouts[stage] = Counter(
                label: "tessera_dropouts_total", dimensions: [("stage", stage.rawValue)], factory: factory)
        }
        self.dropouts = dropouts
        var bytes: [Direction: [ByteKind: Counter]] = [:]
        for (direction, kind) in Self.counted {
            bytes[direction, default: [:]][kind] = Counter(
                label: "tessera_\(direction.rawValue)_bytes_total", dimensions: [("kind", kind.rawValue)],
                factory: factory)
        }
        self.bytes = bytes
        participantsConnected = Gauge(
            label: "tessera_participants", dimensions: [("state", "connected")], factory: factory)
        participantsSelected = Meter(
            label: "tessera_participants", dimensions: [("state", "selected")], factory: factory)
        var health: [SiteHealth: Gauge] = [:]
        for state in [SiteHealth.healthy, .degraded, .unreachable, .revoked] {
            health[state] = Gauge(
                label: "tessera_sites", dimensions: [("health", state.rawValue)], factory: factory)
        }
        self.health = health
        uploadSlotsInUse = Gauge(label: "tessera_upload_slots_in_use", factory: factory)
        uploadSlots = Gauge(label: "tessera_upload_slots", factory: factory)
        fetchesInFlight = Meter(label: "tessera_model_fetches_in_flight", factory: factory)
        rejections = Counter(label: "tessera_rejections_total", factory: factory)
        currentRound = Gauge(label: "tessera_round", factory: factory)
        self.factory = factory
    }

    /// Counts what one event's actions say: rounds started and finished (with their stage
    /// durations and model metrics) and participants lost, by the stage they were lost in.
    func observe(_ actions: [CoordinatorAction]) {
        for action in actions {
            switch action {
            case .roundStarted(let round, _, _):
                currentRound.record(round)
                participantsSelected.set(0)
            case .participantLost(_, _, let stage):
                dropouts[stage]?.increment()
            case .roundFinished(let record):
                finished(record)
            case .send(_, .train):
                participantsSelected.increment()
            case .reject:
                rejections.increment()
            default:
                break
            }
        }
    }

    private func finished(_ record: RoundRecord) {
        (record.status == .completed ? roundsCompleted : roundsFailed).increment()
        roundDuration[record.status]?.recordSeconds(record.seconds)
        for (stage, seconds) in record.stageSeconds {
            stageDuration[stage]?.recordSeconds(seconds)
        }
        if let seconds = record.stageSeconds[RoundStage.unmasking.rawValue] { unmasking.recordSeconds(seconds) }
        participantsSelected.set(0)
        guard record.status == .completed else { return }
        for entry in Self.modelMetricNames {
            if let value = entry.value(record), value.isFinite {
                setLatest(value, as: "tessera_model_metric", [("metric", entry.metric), ("source", entry.source)])
            }
        }
        if let epsilon = record.privacy?.epsilon, epsilon.isFinite {
            setLatest(epsilon, as: "tessera_privacy_epsilon_spent", [])
        }
    }

    /// Sets the latest-value gauge `label` with `dimensions`, one of a fixed set.
    private func setLatest(_ value: Double, as label: String, _ dimensions: [(String, String)]) {
        let key = label + dimensions.map { "/\($0.1)" }.joined()
        let gauge = latest.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions, factory: factory)
            gauges[key] = gauge
            return gauge
        }
        gauge.record(value)
    }

    func bytes(_ count: Int, _ direction: Direction, _ kind: ByteKind) {
        guard count > 0 else { return }
        bytes[direction]?[kind]?.increment(by: Int64(count))
    }

    func sessions(connected: Int, uploadSlotsInUse inUse: Int, of capacity: Int) {
        participantsConnected.record(connected)
        uploadSlotsInUse.record(inUse)
        uploadSlots.record(capacity)
    }

    /// A model fetch was admitted (its window is in flight) or ended.
    func fetch(admitted: Bool) {
        if admitted { fetchesInFlight.increment() } else { fetchesInFlight.decrement() }
    }

    /// Sets `tessera_sites{health}` from the participant registry (at each scrape).
    public func sites(byHealth counts: [SiteHealth: Int]) {
        for (state, gauge) in health { gauge.record(counts[state] ?? 0) }
    }
}

extension Metrics.Timer {
    fileprivate func recordSeconds(_ seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        recordNanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
