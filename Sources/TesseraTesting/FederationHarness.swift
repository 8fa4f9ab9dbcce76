public import TesseraCoordinator
import TesseraTensor
import TesseraTransport

extension CoordinatorService {
    /// Runs this coordinator together with participant session loops until the experiment ends,
    /// and returns its outcome: the one way a whole federation is run in one process (in-process
    /// transport, loopback mTLS, tests). A participant loop that throws ends the run with its error.
    ///
    /// With more than one participant, OpenBLAS runs single-threaded for the duration: the sites
    /// train concurrently and are the parallelism, and OpenBLAS's one thread pool, shared by
    /// concurrent callers, would spend its time spinning on its lock instead.
    public func run(alongside participants: [@Sendable () async throws -> Void]) async throws -> Outcome {
        try await TensorRuntime.withThreadCount(participants.count > 1 ? 1 : TensorRuntime.threadCount) {
            try await runConcurrently(with: participants)
        }
    }

    private func runConcurrently(with participants: [@Sendable () async throws -> Void]) async throws -> Outcome {
        try await withThrowingTaskGroup(of: Outcome?.self) { group in
            for participant in participants {
                group.addTask {
                    try await participant()
                    return nil
                }
            }
            group.addTask { await self.run() }
            var outcome: Outcome?
            for try await result in group where result != nil { outcome = result }
            guard let outcome else {
                throw TesseraRuntimeError(
                    .invalidConfiguration, "the federation ended without the coordinator's outcome")
            }
            return outcome
        }
    }
}
