import Foundation
import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraCoordinator
import TesseraFederation
import TesseraState
import TesseraTesting
import TesseraWire
import Testing

/// The researcher's API of a running coordinator, over the in-process transport: who may submit,
/// list and cancel, what a submission is validated against, and the bounds of every request.
@Suite struct ExperimentsAPITests {
    static let tokens: [String: String] = [
        "alice-token": "alice", "bob-token": "bob", "ops-token": "ops", "site-token": "hospital-a",
    ]

    /// alice and bob are researchers, ops an operator; hospital-a is a site (no role here).
    static let authorize: ExperimentsAuthorization = { peer in
        switch peer.site {
        case "alice", "bob": .researcher(peer.site)
        case "ops": .operator(peer.site)
        default: nil
        }
    }

    static func experiment(name: String = "trial", seed: Int = 11) -> String {
        """
        name: \(name)
        seed: \(seed)
        rounds: 3
        participants: 3
        model: {preset: logistic_regression, inputs: 4, classes: 2}
        dataset: {kind: csv, paths: [a.csv, b.csv, c.csv], label_column: label}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: 3}
        secure_aggregation: {enabled: false}

        """
    }

    struct Callers: Sendable {
        let state: CoordinatorState
        /// Every experiment the service reported as changed, in order.
        let changes: ChangeLog
        let alice: ExperimentsAPIClient<InProcessTransport.Client>
        let bob: ExperimentsAPIClient<InProcessTransport.Client>
        let ops: ExperimentsAPIClient<InProcessTransport.Client>
        let site: ExperimentsAPIClient<InProcessTransport.Client>
        let stranger: ExperimentsAPIClient<InProcessTransport.Client>
        /// The generated client as alice, for requests the wrapper would refuse to send.
        let raw: Tessera_V1_ExperimentsService.Client<InProcessTransport.Client>
        let aliceMetadata: Metadata
    }

    func withAPI(_ body: @Sendable (Callers) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-api-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = try CoordinatorState(directory: folder, now: { Date(timeIntervalSince1970: 1_800_000_000) })
        let changes = ChangeLog()
        let service = ExperimentsAPIService(
            state: state, identity: InProcessIdentityResolver(tokens: Self.tokens), authorize: Self.authorize,
            logger: testLogger(), onChange: { changes.append($0) })
        let transport = InProcessTransport()
        try await withGRPCServer(transport: transport.server, services: [service]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                func caller(_ token: String) -> ExperimentsAPIClient<InProcessTransport.Client> {
                    ExperimentsAPIClient(wrapping: client, metadata: InProcessIdentityResolver.metadata(token: token))
                }
                try await body(
                    Callers(
                        state: state, changes: changes, alice: caller("alice-token"), bob: caller("bob-token"),
                        ops: caller("ops-token"),
                        site: caller("site-token"), stranger: caller("unknown-token"),
                        raw: Tessera_V1_ExperimentsService.Client(wrapping: client),
                        aliceMetadata: InProcessIdentityResolver.metadata(token: "alice-token")))
            }
        }
    }

    /// The status and message of the refusal `body` ends in (fails the test if it succeeds).
    func refusal(_ body: () async throws -> Void) async -> RPCError? {
        do {
            try await body()
            Issue.record("the request was not refused")
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            Issue.record("refused with \(error), not an RPCError")
            return nil
        }
    }

    @Test func aValidSubmissionIsQueuedUnderTheResearchersName() async throws {
        try await withAPI { api in
            let yaml = Self.experiment()
            let record = try await api.alice.submit(yaml: yaml, source: "/home/alice/trial.yaml")
            #expect(record.status == .queued)
            #expect(record.submittedBy == "researcher:alice")
            #expect(record.name == "trial")
            #expect(record.versionMajor == 1 && record.versionMinor == 0)
            let stored = try api.state.experiment(record.id)
            #expect(stored.configYAML == yaml)
            #expect(stored.submittedBy == "researcher:alice")
            // No path of the researcher's machine becomes the base of the coordinator's paths.
            #expect(stored.source == nil)
            let queue = try api.state.unfinishedExperiments().map(\.id)
            #expect(queue == [record.id])
            // The coordinator's queue is told, once the experiment is committed.
            let told = api.changes.records.map { "\($0.id) \($0.status)" }
            #expect(told == ["\(record.id) queued"])
        }
    }

    @Test func anInvalidFileIsRefusedWithTheTextOfTesseraValidate() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("typo.yaml")
        let yaml = Self.experiment() + "local_training: {epochs: 1, lerning_rate: 0.1}\n"
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        // What `tessera validate typo.yaml` prints: the ConfigError of loading the file.
        let validateSays: String
        do {
            _ = try ExperimentConfig.load(from: file)
            validateSays = ""
        } catch {
            validateSays = error.description
        }
        #expect(validateSays.contains("lerning_rate"))
        try await withAPI { api in
            let error = await refusal { _ = try await api.alice.submit(yaml: yaml, source: file.path) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message == validateSays)
            let queued = try api.state.experiments()
            #expect(queued.isEmpty)
        }
    }

    @Test func aFileTheCoordinatorCannotRunIsRefused() async throws {
        try await withAPI { api in
            let shapeless = Self.experiment().replacingOccurrences(of: ", inputs: 4, classes: 2", with: "")
            let noShape = await refusal { _ = try await api.alice.submit(yaml: shapeless, source: "shapeless.yaml") }
            #expect(noShape?.code == .invalidArgument)
            #expect(noShape?.message.contains("set model.inputs and model.classes") == true)
            let arms = Self.experiment() + "variants:\n  - {name: fast, set: {rounds: 2}}\n"
            let variants = await refusal { _ = try await api.alice.submit(yaml: arms, source: "arms.yaml") }
            #expect(variants?.code == .invalidArgument)
            #expect(variants?.message.contains("one configuration per experiment") == true)
            let queued = try api.state.experiments()
            #expect(queued.isEmpty)
        }
    }

    @Test func aSiteCertificateIsRefusedNamingTheRoleNeeded() async throws {
        try await withAPI { api in
            let submit = await refusal { _ = try await api.site.submit(yaml: Self.experiment(), source: "x.yaml") }
            #expect(submit?.code == .permissionDenied)
            #expect(submit?.message.contains("researcher") == true)
            #expect(submit?.message.contains("hospital-a") == true)
            let list = await refusal { _ = try await api.site.experiments() }
            #expect(list?.code == .permissionDenied)
            let models = await refusal { _ = try await api.site.models(matching: ModelQuery()) }
            #expect(models?.code == .permissionDenied)
            let stranger = await refusal { _ = try await api.stranger.experiments() }
            #expect(stranger?.code == .unauthenticated)
            let queued = try api.state.experiments()
            #expect(queued.isEmpty)
        }
    }

    @Test func aResearcherCancelsOnlyItsOwnAndAnOperatorAny() async throws {
        try await withAPI { api in
            let alices = try await api.alice.submit(yaml: Self.experiment(seed: 1), source: "a.yaml")
            let bobs = try await api.bob.submit(yaml: Self.experiment(seed: 2), source: "b.yaml")

            let denied = await refusal { _ = try await api.bob.cancel(alices.id) }
            #expect(denied?.code == .permissionDenied)
            #expect(denied?.message.contains("researcher:alice") == true)
            #expect(try api.state.experiment(alices.id).status == .queued)

            let own = try await api.alice.cancel(alices.id)
            #expect(own.status == .cancelled)
            #expect(own.message == "cancelled by researcher:alice")
            let again = await refusal { _ = try await api.alice.cancel(alices.id) }
            #expect(again?.code == .failedPrecondition)

            let told = api.changes.records.map { "\($0.id) \($0.status)" }
            #expect(told == ["\(alices.id) queued", "\(bobs.id) queued", "\(alices.id) cancelled"])
            let byOperator = try await api.ops.cancel(bobs.id)
            #expect(byOperator.status == .cancelled)
            #expect(try api.state.experiment(bobs.id).message == "cancelled by operator:ops")

            let missing = await refusal { _ = try await api.ops.cancel(999) }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func anOversizedFileIsRefusedBeforeItIsParsed() async throws {
        try await withAPI { api in
            // Not YAML at all: a parser would report a syntax error, the size check names the bound.
            let oversized = String(repeating: "\t:", count: ExperimentsAPILimits.maximumConfigBytes / 2 + 1)
            var request = Tessera_V1_SubmitExperimentRequest()
            request.configYaml = oversized
            request.source = "huge.yaml"
            let error = await refusal { _ = try await api.raw.submit(request, metadata: api.aliceMetadata) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("config_yaml") == true)
            #expect(error?.message.contains("at most \(ExperimentsAPILimits.maximumConfigBytes) bytes") == true)
            // The client refuses it before sending, with the same bound.
            do {
                _ = try await api.alice.submit(yaml: oversized, source: "huge.yaml")
                Issue.record("the client sent an oversized file")
            } catch let error as WireError {
                #expect(error.code == .sizeLimitExceeded)
            }
            let queued = try api.state.experiments()
            #expect(queued.isEmpty)
        }
    }

    @Test func aSecondSubmissionOfAnUnfinishedConfigurationIsRefused() async throws {
        try await withAPI { api in
            let first = try await api.alice.submit(yaml: Self.experiment(), source: "a.yaml")
            let error = await refusal { _ = try await api.bob.submit(yaml: Self.experiment(), source: "b.yaml") }
            #expect(error?.code == .alreadyExists)
            #expect(error?.message.contains("experiment \(first.id)") == true)
            _ = try await api.alice.cancel(first.id)
            let again = try await api.bob.submit(yaml: Self.experiment(), source: "b.yaml")
            #expect(again.versionMinor == 1)
        }
    }

    @Test func listShowAndLogs() async throws {
        try await withAPI { api in
            let yaml = Self.experiment(name: "first", seed: 1)
            let first = try await api.alice.submit(yaml: yaml, source: "a.yaml")
            let second = try await api.bob.submit(yaml: Self.experiment(name: "second", seed: 2), source: "b.yaml")

            let all = try await api.alice.experiments()
            #expect(all.experiments.map(\.id) == [first.id, second.id])
            #expect(all.total == 2)
            // A list does not carry configurations; show does.
            #expect(all.experiments.allSatisfy { $0.configYAML.isEmpty })
            let mine = try await api.alice.experiments(mine: true)
            #expect(mine.experiments.map(\.id) == [first.id])
            let latest = try await api.alice.experiments(limit: 1)
            #expect(latest.experiments.map(\.id) == [second.id])
            #expect(latest.total == 2)
            _ = try await api.bob.cancel(second.id)
            let cancelled = try await api.alice.experiments(status: .cancelled)
            #expect(cancelled.experiments.map(\.id) == [second.id])

            let shown = try await api.bob.experiment(first.id)
            #expect(shown.configYAML == yaml)
            #expect(shown.submittedBy == "researcher:alice")
            #expect(shown.submittedAt == Date(timeIntervalSince1970: 1_800_000_000))

            let lines = try await api.bob.logs(of: second.id).map(\.line)
            #expect(lines == ["submitted by researcher:bob", "cancelled: cancelled by researcher:bob"])
            let last = try await api.bob.logs(of: second.id, limit: 1).map(\.line)
            #expect(last == ["cancelled: cancelled by researcher:bob"])

            let unknown = await refusal { _ = try await api.alice.experiment(42) }
            #expect(unknown?.code == .notFound)
            let noLog = await refusal { _ = try await api.alice.logs(of: 42) }
            #expect(noLog?.code == .notFound)
            let zero = await refusal { _ = try await api.alice.experiment(0) }
            #expect(zero?.code == .invalidArgument)
            let tooMany = await refusal { _ = try await api.alice.experiments(limit: 1001) }
            #expect(tooMany?.code == .invalidArgument)
            let tooManyLines = await refusal { _ = try await api.alice.logs(of: first.id, limit: 5001) }
            #expect(tooManyLines?.code == .invalidArgument)
        }
    }

    @Test func researchersReadTheModelRegistry() async throws {
        try await withAPI { api in
            let experiment = try await api.alice.submit(yaml: Self.experiment(), source: "a.yaml")
            let run = try api.state.beginRun(of: experiment.id)
            let record = RoundRecord(
                round: 1, modelVersion: "1.0.1", cohortSize: 3, contributors: 3, dropouts: 0, seconds: 1)
            try api.state.commitRound(
                RoundCommit(
                    experiment: experiment.id, run: run, attempt: 0, record: record,
                    model: ModelArtifact(
                        version: ModelVersion(major: 1, minor: 0, patch: 1),
                        parent: ModelVersion(major: 1, minor: 0, patch: 0), bytes: [1, 2, 3],
                        strategyState: StrategyState(strategy: "fedavg", rounds: 1), metrics: ["accuracy": 0.9])))

            let good = try await api.bob.models(
                matching: ModelQuery(conditions: [try MetricCondition(parsing: "accuracy>=0.8")]))
            #expect(good.map(\.reference.description) == ["trial@1.0.1"])
            #expect(good.first?.parent == ModelVersion(major: 1, minor: 0, patch: 0))
            #expect(good.first?.metrics == ["accuracy": 0.9])
            let none = try await api.bob.models(
                matching: ModelQuery(conditions: [try MetricCondition(parsing: "accuracy>=0.95")]))
            #expect(none.isEmpty)

            let shown = try await api.bob.model(try ModelReference(parsing: "trial@1.0.1"))
            #expect(shown.model.stage == .candidate)
            #expect(shown.model.experiment == experiment.id)

            let unknown = await refusal { _ = try await api.bob.model(try ModelReference(parsing: "trial@9.9.9")) }
            #expect(unknown?.code == .notFound)
            var tooMany = Tessera_V1_ListModelsRequest()
            tooMany.conditions = Array(repeating: "accuracy>=0.1", count: ExperimentsAPILimits.maximumConditions + 1)
            let conditions = await refusal { _ = try await api.raw.listModels(tooMany, metadata: api.aliceMetadata) }
            #expect(conditions?.code == .invalidArgument)
            var garbled = Tessera_V1_ShowModelRequest()
            garbled.reference = "trial@one"
            let reference = await refusal { _ = try await api.raw.showModel(garbled, metadata: api.aliceMetadata) }
            #expect(reference?.code == .invalidArgument)
        }
    }
}

/// What an ``ExperimentsAPIService`` reported through `onChange`.
final class ChangeLog: Sendable {
    private let stored = Mutex<[ExperimentRecord]>([])
    func append(_ record: ExperimentRecord) { stored.withLock { $0.append(record) } }
    var records: [ExperimentRecord] { stored.withLock { $0 } }
}
