import SwiftProtobuf
import TesseraFederation
import TesseraSecAgg
import TesseraTensor
import TesseraWire

/// What a participant does with a task from the coordinator before it fetches the model: the
/// wire→domain conversion, the site policy's screening, and the SecAgg configuration it
/// builds from an accepted secure assignment.
enum TaskTargets {
    /// The default policy, and a permissive one that lets more tasks through to the steps
    /// after the screening.
    static let policies = [
        SitePolicy(),
        SitePolicy(
            requireSecureAggregation: false, requireActiveAdversaryProtection: false, minimumCohort: 2,
            maxCorruptionRate: 0, maxDropoutRate: 0, shareMetrics: .perSite, maxEvaluationsPerRound: 100),
    ]

    /// The largest model a target builds to compare its parameter count with the shape's.
    static let largestModelBuilt = 20_000

    /// Input: a `ModelArchitecture` message.
    static func modelArchitecture(_ bytes: [UInt8]) -> Int {
        guard let wire = try? Tessera_V1_ModelArchitecture(serializedBytes: bytes),
            let architecture = try? ModelArchitecture(wire)
        else { return 0 }
        let again = try? ModelArchitecture(Tessera_V1_ModelArchitecture(architecture))
        fuzzExpect(again == architecture, "\(architecture.summary) does not survive a round trip through the wire")
        for policy in policies { _ = try? policy.checkModel(architecture, round: 1) }
        checkBuild(architecture)
        return 1
    }

    /// Input: a `TrainTask` message, also read as an `EvaluateTask`.
    static func trainTask(_ bytes: [UInt8]) -> Int {
        var accepted = 0
        let header = EnvelopeHeader(experimentID: "fuzz", round: 2, stage: .training, sequence: 1)
        if let wire = try? Tessera_V1_TrainTask(serializedBytes: bytes),
            let spec = try? TrainTaskSpec(wire, header: header)
        {
            for policy in policies {
                screen(
                    architecture: spec.architecture, parameterCount: spec.parameterCount, task: spec.task,
                    secure: spec.secure, evaluation: false, round: spec.round, policy: policy)
            }
            checkRoundTrip(spec)
            accepted += 1
        }
        if let wire = try? Tessera_V1_EvaluateTask(serializedBytes: bytes),
            let spec = try? EvaluateTaskSpec(wire, header: header)
        {
            for policy in policies {
                screen(
                    architecture: spec.architecture, parameterCount: spec.parameterCount, task: nil,
                    secure: spec.secure, evaluation: true, round: spec.round, policy: policy)
            }
            let wireAgain = try? Tessera_V1_EvaluateTask(spec)
            fuzzExpect(wireAgain != nil, "an accepted evaluate task does not encode")
            let again = try? EvaluateTaskSpec(wireAgain!, header: header)
            fuzzExpect(again == spec, "an evaluate task does not survive a round trip through the wire")
            accepted += 1
        }
        return accepted
    }

    /// The participant's screening of a task (`ParticipantAgent.screen`), then what it builds
    /// once the task passes.
    static func screen(
        architecture: ModelArchitecture, parameterCount: Int, task: TrainingTask?, secure: SecureRoundAssignment?,
        evaluation: Bool, round: Int, policy: SitePolicy
    ) {
        do {
            if evaluation { try policy.checkEvaluation(round: round, answeredThisRound: 0) }
            try policy.checkModel(architecture, round: round)
            guard parameterCount == architecture.parameterCount else { return }
            let bytes = parameterCount.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
            try policy.checkModelBytes(bytes.overflow ? .max : bytes.partialValue, round: round)
            if let task { try policy.checkTask(task, round: round) }
            if let secure {
                try policy.checkSecureRound(
                    round: round, rosterSize: secure.rosterSize, graph: secure.graph, threshold: secure.threshold,
                    active: secure.activeAdversary)
            } else if !evaluation {
                try policy.checkPlaintextRound(round: round)
            }
        } catch {
            return
        }
        if let secure {
            _ = try? secure.codec()
            _ = try? secure.metrics()
            _ = try? secure.configuration(vectorLength: parameterCount)
        }
        checkBuild(architecture)
    }

    /// A model small enough to build here has exactly the parameters its shape promises.
    private static func checkBuild(_ architecture: ModelArchitecture) {
        guard let count = architecture.parameterCount, count <= largestModelBuilt,
            let widest = architecture.widestLayer, widest <= largestModelBuilt
        else { return }
        let model = try? architecture.build(seed: 1)
        fuzzExpect(
            model?.parameterCount == count,
            "\(architecture.summary) promises \(count) parameters; building it gave \(model?.parameterCount ?? -1)")
    }

    /// Whatever a participant accepts, the coordinator's encoder writes back the same.
    static func checkRoundTrip(_ spec: TrainTaskSpec) {
        let wire = try? Tessera_V1_TrainTask(spec)
        fuzzExpect(wire != nil, "an accepted train task does not encode")
        let header = EnvelopeHeader(experimentID: spec.experimentID, round: spec.round, stage: .training, sequence: 1)
        let again = try? TrainTaskSpec(wire!, header: header)
        fuzzExpect(again == spec, "a train task does not survive a round trip through the wire")
    }
}
