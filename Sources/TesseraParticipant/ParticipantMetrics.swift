public import CoreMetrics
import Foundation
import Metrics
import TesseraFederation

/// What a site counts, through swift-metrics into the factory it is given (the process's
/// `MetricsExport` behind `tessera-participant --http`).
///
/// Only counts and durations of the site's own work: nothing about its data (no sample counts,
/// no metric values), since the site's operator may expose this port more widely than the data.
/// Refusals are labelled by the site-policy rule that refused, a fixed set.
public final class ParticipantMetrics: Sendable {
    private let roundsJoined: Counter
    private let evaluations: Counter
    private let training: Metrics.Timer
    private let masking: Metrics.Timer
    private let modelBytes: Counter
    private let updateBytes: Counter
    private let secAggBytes: Counter
    private let connected: Gauge
    private let sessions: Counter
    private let refusals: [String: Counter]

    /// The refusal labels: every site-policy rule, plus `secure_round` (a SecAgg assignment the
    /// site cannot take) and `other`.
    static let refusalReasons = SitePolicyViolation.Code.allNames + ["secure_round", "other"]

    public init(factory: any MetricsFactory) {
        roundsJoined = Counter(label: "tessera_participant_rounds_joined_total", factory: factory)
        evaluations = Counter(label: "tessera_participant_evaluations_total", factory: factory)
        training = Metrics.Timer(label: "tessera_participant_training_seconds", factory: factory)
        masking = Metrics.Timer(label: "tessera_participant_masking_seconds", factory: factory)
        modelBytes = Counter(
            label: "tessera_participant_received_bytes_total", dimensions: [("kind", "model")], factory: factory)
        updateBytes = Counter(
            label: "tessera_participant_sent_bytes_total", dimensions: [("kind", "update")], factory: factory)
        secAggBytes = Counter(
            label: "tessera_participant_sent_bytes_total", dimensions: [("kind", "secagg")], factory: factory)
        connected = Gauge(label: "tessera_participant_connected", factory: factory)
        sessions = Counter(label: "tessera_participant_sessions_total", factory: factory)
        var refusals: [String: Counter] = [:]
        for reason in Self.refusalReasons {
            refusals[reason] = Counter(
                label: "tessera_participant_refusals_total", dimensions: [("reason", reason)], factory: factory)
        }
        self.refusals = refusals
    }

    func session(established: Bool) {
        if established { sessions.increment() }
        connected.record(established ? 1 : 0)
    }

    func joined(evaluation: Bool) {
        (evaluation ? evaluations : roundsJoined).increment()
    }

    func refused(_ error: any Error) {
        let reason: String
        switch error {
        case let violation as SitePolicyViolation: reason = violation.code.description
        case is SecureRoundRefusal: reason = "secure_round"
        default: reason = "other"
        }
        (refusals[reason] ?? refusals["other"])?.increment()
    }

    func trained(seconds: Duration) { training.record(duration: seconds) }

    func masked(seconds: Duration) { masking.record(duration: seconds) }

    func received(modelBytes count: Int) { modelBytes.increment(by: Int64(count)) }

    func sent(_ payload: (update: Int, secAgg: Int)) {
        if payload.update > 0 { updateBytes.increment(by: Int64(payload.update)) }
        if payload.secAgg > 0 { secAggBytes.increment(by: Int64(payload.secAgg)) }
    }
}
