import Foundation
import TesseraFederation
import TesseraPKI
import TesseraState
import TesseraTensor
import Testing

/// The real coordinator killed with SIGKILL at random moments of a federation of real
/// participant processes, and restarted on the same state folder: the experiment completes,
/// every round is in the state exactly once, the final model is bit for bit the uninterrupted
/// run's, and SQLite's integrity check passes.
///
/// The moments are drawn from a seeded generator: a round (not the last), one of its events
/// (selected, aggregated, completed) and a delay of up to 40 ms after it, so kills land
/// mid-round and between rounds. `TESSERA_CRASH_TRIALS` sets the number of trials (3 in
/// `make test`, 20 in `make crash-test`). The experiment is plaintext FedAdam with every site
/// in every round: the sites' training seeds come from the experiment seed, so an uninterrupted
/// run and a resumed one must publish identical models, and FedAdam's moments must survive the
/// restart for that to hold.
@Suite(.serialized) struct CoordinatorCrashTests {
    static let rounds = 6
    static let sites = ["hospital-a", "hospital-b", "hospital-c"]

    struct Federation {
        let root: URL
        let experiment: URL
        let coordinatorBinary: URL
        let participantBinary: URL
        let port: Int
    }

    static func prepare() throws -> Federation {
        let coordinatorBinary = try #require(
            ProcessSupport.binary("tessera-coordinator"), "build the executables first (swift build)")
        let participantBinary = try #require(ProcessSupport.binary("tessera-participant"))
        let root = try ProcessSupport.temporaryRoot("tessera-crash")
        _ = try ProcessSupport.prepareFederation(
            at: root, name: "crash", seed: 11, rounds: rounds, sites: sites, minimum: sites.count, evaluateEvery: 2,
            csvSeed: 3)
        let experiment = root.appendingPathComponent("experiment.yaml")
        try """
        name: crash
        seed: 11
        rounds: \(rounds)
        participants: \(sites.count)
        model: {preset: logistic_regression, inputs: 4, classes: 2}
        dataset: {kind: csv, paths: [\(sites.map { "\($0).csv" }.joined(separator: ", "))], label_column: label}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: \(sites.count)}
        strategy: {name: fedadam, server_learning_rate: 0.05}
        local_training: {epochs: 1, batch_size: 10, optimizer: sgd, learning_rate: 0.2}
        secure_aggregation: {enabled: false}
        evaluation: {every: 2}
        """.write(to: experiment, atomically: true, encoding: .utf8)
        let port = try freePort()
        for site in sites {
            try """
            coordinator: 127.0.0.1:\(port)
            identity: \(site)
            datasets:
              crash:
                path: \(site).csv
                label_column: label
            policy: {require_secure_aggregation: false, minimum_cohort: 3}
            """.write(to: root.appendingPathComponent("\(site).yaml"), atomically: true, encoding: .utf8)
        }
        return Federation(
            root: root, experiment: experiment, coordinatorBinary: coordinatorBinary,
            participantBinary: participantBinary, port: port)
    }

    /// A port no one listens on now (bound, read, closed), so that every coordinator of a trial
    /// listens where the sites reconnect.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        try #require(bound, "cannot bind a loopback port")
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct RunResult {
        let model: [UInt8]
        /// Rounds run again after a kill caught them mid-way.
        var rerun: [Int] = []
        let kills: Int
        let state: URL
        let results: URL
        let log: String
    }

    /// Runs the experiment to its end on a fresh state folder, killing the coordinator at each
    /// of `kills` (a round and the event after which to kill it) and starting it again.
    static func run(
        _ federation: Federation, name: String, kills: [(round: Int, event: String, delay: Double)]
    ) async throws -> RunResult {
        let state = federation.root.appendingPathComponent("\(name)-state")
        let results = federation.root.appendingPathComponent("\(name)-results")
        var participants: [LoggedProcess] = []
        defer { for participant in participants { participant.stop() } }
        var log = ""
        var killed = 0
        var plan = kills
        for start in 0... {
            let coordinatorLog = federation.root.appendingPathComponent("\(name)-coordinator-\(start).log")
            let (coordinator, port) = try ProcessSupport.startCoordinator(
                binary: federation.coordinatorBinary, experiment: federation.experiment,
                tlsDirectory: federation.root.appendingPathComponent("coordinator"),
                trustDirectory: federation.root.appendingPathComponent("trust"), results: results, log: coordinatorLog,
                state: state, listen: "127.0.0.1:\(federation.port)")
            defer { coordinator.stop() }
            if port == nil, await coordinator.waitForExit(within: 30), coordinator.text.contains("is already completed")
            {
                // Killed after the experiment ended: the restart only writes the results again.
                #expect(coordinator.process.terminationStatus == 0, "\(coordinator.text)")
                log += coordinator.text
                break
            }
            try #require(port == federation.port, "coordinator \(start) did not start:\n\(coordinator.text)")
            if participants.isEmpty {
                for site in sites {
                    participants.append(
                        try LoggedProcess(
                            name: site, executable: federation.participantBinary,
                            arguments: ["--config", federation.root.appendingPathComponent("\(site).yaml").path],
                            log: federation.root.appendingPathComponent("\(name)-\(site).log")))
                }
            }
            if let kill = plan.first {
                plan.removeFirst()
                let line = "round \(kill.round): \(kill.event)"
                // A restarted coordinator may resume past the round of the next kill: any later
                // round, or the end, also releases the wait.
                let later = ((kill.round + 1)...(Self.rounds + 1)).map { "round \($0): " }
                let reached = await coordinator.waitFor(within: 120) { log, exited in
                    exited || log.contains(line) || later.contains { log.contains($0) }
                }
                try #require(reached, "coordinator \(start) never logged '\(line)':\n\(coordinator.text)")
                // A real process cannot run on an injected clock: the delay only spreads the kill
                // moments; every assertion below holds wherever the kill lands.
                try await Task.sleep(for: .seconds(kill.delay))
                if coordinator.isRunning {
                    coordinator.killNow()
                    killed += 1
                    _ = await coordinator.waitForExit(within: 20)
                    log += coordinator.text
                    continue
                }
                // It finished before the kill: the run is over.
                plan = []
            }
            let exited = await coordinator.waitForExit(within: 180)
            log += coordinator.text
            try #require(exited, "coordinator \(start) did not finish:\n\(coordinator.text)")
            #expect(coordinator.process.terminationStatus == 0, "\(coordinator.text)")
            break
        }
        let model = [UInt8](try Data(contentsOf: results.appendingPathComponent("model.safetensors")))
        return RunResult(model: model, kills: killed, state: state, results: results, log: log)
    }

    /// Checks what the state holds after a run: one completed record per round, in order, one
    /// model version per round, and a sound database.
    static func checkState(_ result: RunResult) throws {
        let state = try CoordinatorState(directory: result.state)
        let experiments = try state.experiments()
        try #require(experiments.count == 1, "\(experiments)")
        let experiment = experiments[0]
        #expect(experiment.status == .completed, "\(experiment)")
        let records = try state.records(of: experiment.id)
        let completed = records.filter { $0.status == .completed }.map(\.round)
        #expect(completed == Array(1...rounds), "rounds in the state: \(records.map(\.round))")
        let versions = try state.models(matching: ModelQuery(experiment: experiment.id)).map(\.version.patch).sorted()
        #expect(versions == Array(1...rounds), "model versions: \(versions)")
        let rerun = records.filter { $0.attempt != nil }.map(\.round)
        if !rerun.isEmpty { print("rounds run again after an interrupted attempt: \(rerun)") }
        let integrity = try state.integrityCheck()
        #expect(integrity == ["ok"])
        let csv = try String(contentsOf: result.results.appendingPathComponent("rounds.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst().count
        #expect(rows == rounds, "rounds.csv:\n\(csv)")
    }

    @Test("SIGKILL at random moments: the experiment completes with the uninterrupted run's model")
    func killedCoordinatorResumes() async throws {
        let federation = try Self.prepare()
        defer { try? FileManager.default.removeItem(at: federation.root) }
        let reference = try await Self.run(federation, name: "reference", kills: [])
        try Self.checkState(reference)

        let trials = Int(ProcessInfo.processInfo.environment["TESSERA_CRASH_TRIALS"] ?? "") ?? 3
        var generator = TesseraRandom(seed: 2026)
        let events = ["selected", "aggregated", "completed"]
        var totalKills = 0
        for trial in 1...max(1, trials) {
            // One kill in most trials, two in every third.
            let count = trial % 3 == 0 ? 2 : 1
            var kills: [(round: Int, event: String, delay: Double)] = []
            var round = 0
            for _ in 0..<count {
                round = Int.random(in: (round + 1)...(Self.rounds - count + kills.count), using: &generator)
                kills.append(
                    (round, events.randomElement(using: &generator)!, Double.random(in: 0...0.04, using: &generator)))
            }
            let result = try await Self.run(federation, name: "trial-\(trial)", kills: kills)
            totalKills += result.kills
            try Self.checkState(result)
            #expect(
                result.model == reference.model,
                "trial \(trial) (kills \(kills)): the final model differs from the uninterrupted run's")
            print(
                "crash trial \(trial): \(result.kills) kills at \(kills.map { "round \($0.round) \($0.event) +\(Int($0.delay * 1000)) ms" }), completed, model identical: \(result.model == reference.model)"
            )
        }
        print("crash test: \(trials) trials, \(totalKills) kills, every experiment completed")
        // A kill drawn late in the experiment can find it already over (the run then simply
        // completed); the test is empty only if no kill landed at all.
        #expect(totalKills >= 1, "no kill landed in \(trials) trials")
    }
}
