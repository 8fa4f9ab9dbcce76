import TesseraCrypto
public import TesseraData
import TesseraSecAgg
import TesseraTensor

/// A participant's local data for one dataset name: what it trains on and what it evaluates on.
public struct LocalData: Sendable {
    public var train: Dataset
    public var test: Dataset?

    public init(train: Dataset, test: Dataset? = nil) {
        self.train = train
        self.test = test
    }

    /// A site's data split into a training and a held-out part (when `testFraction > 0` and
    /// there are at least two samples), optionally standardised with statistics fitted on the
    /// training part only, so nothing about the held-out rows leaks into training.
    public init(splitting data: Dataset, testFraction: Double, standardise: Bool, seed: UInt64) throws {
        var train = data
        var test: Dataset?
        if testFraction > 0, data.count >= 2 {
            let split = try data.split(testFraction: testFraction, seed: seed)
            train = split.train
            test = split.test.count > 0 ? split.test : nil
        }
        if standardise {
            let standardizer = try Standardizer.fit(train)
            train = try standardizer.transform(train)
            test = try test.map { try standardizer.transform($0) }
        }
        self.init(train: train, test: test)
    }
}

/// The participant side of a round, transport-free: coordinator messages in, participant
/// messages out.
///
/// It trains with `LocalTrainer`, and in a secure round it quantizes its update and runs the
/// `SecAggClient` state machine, so the update itself never leaves it: only the masked vector
/// does. The network participant and the in-memory simulation both wrap this type.
public final class ParticipantAgent {
    public let site: SiteID
    public private(set) var data: [String: LocalData]
    public let softwareVersion: String
    /// Seeds the stochastic rounding of updates in simulations, for reproducible runs; `nil`
    /// uses the operating system's CSPRNG.
    private let simulationSeed: UInt64?
    private let trainingOverride: TrainingOverride?
    private var trainers: [ModelArchitecture: LocalTrainer] = [:]
    private var secure: (round: Int, client: SecAggClient, input: [UInt32])?

    /// Stands in for local training: given the global model and the task, returns the
    /// outcome. For benchmarks that time the runtime without the model's cost ("training
    /// stubbed to a fixed update"); the dataset must still be offered, for its sample count.
    public typealias TrainingOverride = @Sendable (_ global: [Float], _ task: TrainingTask) throws -> TrainingOutcome

    public init(
        site: SiteID, data: [String: LocalData], softwareVersion: String = "", simulationSeed: UInt64? = nil,
        trainingOverride: TrainingOverride? = nil
    ) {
        self.site = site
        self.data = data
        self.softwareVersion = softwareVersion
        self.simulationSeed = simulationSeed
        self.trainingOverride = trainingOverride
    }

    /// What this participant tells the coordinator when it connects.
    public var descriptor: ParticipantDescriptor {
        ParticipantDescriptor(
            site: site, datasets: data.mapValues(\.train.count), cores: 1, softwareVersion: softwareVersion)
    }

    /// Handles one coordinator message and returns the replies.
    public func handle(_ message: CoordinatorMessage) -> [ParticipantMessage] {
        switch message {
        case .train(let instruction):
            return train(instruction)
        case .secAgg(let round, let request):
            return respond(round: round, request)
        case .evaluate(let instruction):
            return evaluate(instruction)
        case .leaveRound(let round, _):
            if secure?.round == round { secure = nil }
            return []
        }
    }

    private func trainer(for architecture: ModelArchitecture) throws -> LocalTrainer {
        if let trainer = trainers[architecture] { return trainer }
        let trainer = LocalTrainer(model: try architecture.build(seed: 0), loss: architecture.loss)
        trainers[architecture] = trainer
        return trainer
    }

    private func train(_ instruction: TrainInstruction) -> [ParticipantMessage] {
        let round = instruction.round
        secure = nil
        guard let local = data[instruction.datasetName] else {
            return [.failed(round: round, reason: "\(site) has no dataset named '\(instruction.datasetName)'")]
        }
        do {
            let outcome =
                try trainingOverride?(instruction.parameters, instruction.task)
                ?? trainer(for: instruction.architecture).train(
                    global: instruction.parameters, on: local.train, task: instruction.task)
            let report = TrainingReport(
                sampleCount: outcome.sampleCount, loss: outcome.loss, accuracy: outcome.accuracy, steps: outcome.steps)
            guard let assignment = instruction.secure else {
                return [.update(round: round, delta: outcome.delta, report: report)]
            }
            let codec = try assignment.codec()
            let weight = UInt32(clamping: min(outcome.sampleCount, Int(assignment.maxWeight)))
            let input: [UInt32]
            var client: SecAggClient
            let configuration = try assignment.configuration(vectorLength: outcome.delta.count)
            // Stochastic rounding may be seeded (reproducible simulations); key pairs and mask
            // seeds always come from the operating system's CSPRNG.
            if let simulationSeed {
                var rng = TesseraRandom(seed: simulationSeed ^ instruction.task.seed)
                input = try codec.encode(outcome.delta, weight: weight, using: &rng)
            } else {
                var rng = SecureRandomGenerator()
                input = try codec.encode(outcome.delta, weight: weight, using: &rng)
            }
            client = try SecAggClient(id: assignment.participantIndex, configuration: configuration)
            let advertise = try client.advertiseKeys()
            secure = (round, client, input)
            return [.trained(round: round, report: report), .secAgg(round: round, .advertiseKeys(advertise))]
        } catch {
            return [.failed(round: round, reason: "\(error)")]
        }
    }

    private func respond(round: Int, _ request: SecAggMessage) -> [ParticipantMessage] {
        // Taken out while the client works, so that no second copy of its vectors is kept alive.
        guard secure?.round == round, var state = secure.take() else {
            return [.failed(round: round, reason: "\(site) holds no secure-aggregation state for round \(round)")]
        }
        do {
            var rng = SecureRandomGenerator()
            let reply = try state.client.respond(to: request, input: state.input, using: &rng)
            secure = state
            if case .unmaskingResponse = reply { secure = nil }
            return [.secAgg(round: round, reply)]
        } catch {
            secure = nil
            return [.failed(round: round, reason: "\(error)")]
        }
    }

    /// Work to do between messages, after the replies to the last one have been sent: in a
    /// secure round past ShareKeys, masks the input ahead of the coordinator's request (see
    /// `SecAggClient.prepareMaskedInput(_:)`), so the masked input leaves as soon as it is asked
    /// for. Returns whether a masked input is ready; a no-op at any other point.
    @discardableResult
    public func prepareAhead() -> Bool {
        guard var state = secure.take() else { return false }
        defer { secure = state }
        return state.client.prepareMaskedInput(state.input)
    }

    private func evaluate(_ instruction: EvaluateInstruction) -> [ParticipantMessage] {
        guard let local = data[instruction.datasetName] else {
            return [
                .failed(round: instruction.round, reason: "\(site) has no dataset named '\(instruction.datasetName)'")
            ]
        }
        do {
            let metrics = try trainer(for: instruction.architecture).evaluate(
                parameters: instruction.parameters, on: local.test ?? local.train)
            return [.evaluation(round: instruction.round, metrics)]
        } catch {
            return [.failed(round: instruction.round, reason: "\(error)")]
        }
    }
}
