import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraState
import TesseraTesting

extension PreparedExperiment {
    /// A state folder at `folder` with this experiment submitted and its first run begun, and the
    /// recorder that commits the run's rounds there.
    func durableState(
        in folder: URL
    ) throws -> (state: CoordinatorState, record: ExperimentRecord, recorder: ExperimentRecorder) {
        let state = try CoordinatorState(directory: folder)
        let record = try state.submit(
            ExperimentSubmission(
                name: config.name, configYAML: "name: \(config.name)\n", configHash: config.name,
                architecture: plan.architecture.summary, rounds: config.rounds, submittedBy: "local:test"))
        let recorder = try ExperimentRecorder(
            state: state, experiment: record, run: try state.beginRun(of: record.id), architecture: plan.architecture)
        return (state, record, recorder)
    }
}
