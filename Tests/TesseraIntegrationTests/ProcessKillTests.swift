import Foundation
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraTesting
import TesseraTransport
import Testing

/// A participant process killed in the middle of a secure round: the round completes through
/// dropout recovery, and the site, restarted, joins again and takes part in a later round.
///
/// The real binaries run on loopback: a coordinator and four sites (secure aggregation, cohort
/// minimum 3). The victim, hospital-d, kills itself with a failpoint
/// (`TESSERA_PARTICIPANT_FAILPOINT`) at an exact protocol point, which a test watching logs could
/// not hit: after ShareKeys (on the masked-input request) or after its masked input (on the
/// Unmasking request).
///
/// Rounds start as soon as three sites are connected, so the order of events is pinned by
/// freezing hospital-a (SIGSTOP) at two moments; a frozen site holds its round open, because the
/// coordinator waits for it until a deadline far beyond the test:
/// 1. Round 1 is selected with hospital-a frozen and without the victim, which joins before
///    hospital-a resumes: round 2, where the victim dies, has all four sites.
/// 2. hospital-a is frozen the moment the victim exits, so the remaining rounds cannot run out
///    before the restarted victim has joined (it takes part in round 3 or 4).
@Suite(.serialized) struct ProcessKillTests {
    static let sites = ["hospital-a", "hospital-b", "hospital-c", "hospital-d"]
    static let victim = "hospital-d"
    static let held = "hospital-a"
    static let rounds = 4
    static let killRound = 2

    @Test func siteKilledAfterShareKeysLeavesItsInputOutAndRejoins() async throws {
        let run = try await Self.run(failpoint: .dieOnMaskedInputRequest)
        // Its shares were delivered, its masked input never was: the other three are the sum,
        // and its pairwise masks were removed with its reconstructed key.
        #expect(
            run.coordinatorLog.contains("round \(Self.killRound): \(Self.victim) disconnected during masked_input"),
            "\(run)")
        #expect(run.coordinatorLog.contains("round \(Self.killRound): unmasking with 3 participants"), "\(run)")
        let record = try #require(run.record(Self.killRound))
        #expect(record.status == .completed && record.cohortSize == 4, "\(run)")
        #expect(record.contributors == 3 && record.dropouts == 1, "\(run)")
        #expect(!run.victimLog.contains("round \(Self.killRound): masked update sent"), "\(run)")
    }

    @Test func siteKilledAfterItsMaskedInputStaysInTheSumAndRejoins() async throws {
        let run = try await Self.run(failpoint: .dieOnUnmaskingRequest)
        // Its masked input arrived: it is one of the four inputs of the sum; only its unmasking
        // shares are missing, and the other holders' shares are enough.
        #expect(run.victimLog.contains("round \(Self.killRound): masked update sent"), "\(run)")
        #expect(run.coordinatorLog.contains("round \(Self.killRound): unmasking with 4 participants"), "\(run)")
        #expect(
            run.coordinatorLog.contains("round \(Self.killRound): \(Self.victim) disconnected during unmasking"),
            "\(run)")
        let record = try #require(run.record(Self.killRound))
        #expect(record.status == .completed && record.cohortSize == 4, "\(run)")
        #expect(record.contributors == 4, "\(run)")
    }

    @Test func anUnknownFailpointStopsTheParticipantAtStartup() async throws {
        let participantBinary = try #require(
            ProcessSupport.binary("tessera-participant"), "build the executables first (swift build)")
        let root = try ProcessSupport.temporaryRoot("tessera-failpoint")
        defer { try? FileManager.default.removeItem(at: root) }
        let participant = try LoggedProcess(
            name: "participant", executable: participantBinary,
            arguments: ["--config", root.appendingPathComponent("site.yaml").path],
            log: root.appendingPathComponent("participant.log"),
            environment: [ParticipantFailpoint.environmentVariable: "die-on-share-keys"])
        defer { participant.stop() }
        try #require(await participant.waitForExit(within: 20), "\(participant.text)")
        #expect(
            participant.process.terminationReason == .exit
                && participant.process.terminationStatus == ParticipantProgram.exitStatusNeedsAttention,
            "\(participant.text)")
        #expect(
            participant.text.contains("TESSERA_PARTICIPANT_FAILPOINT=die-on-share-keys is not a failpoint"),
            "\(participant.text)")
        #expect(
            participant.text.contains("die-on-masked-input-request, die-on-unmasking-request"), "\(participant.text)")
    }

    /// What a run left behind, for the assertions particular to each failpoint.
    struct Run: CustomStringConvertible {
        var results: ExperimentResults?
        var coordinatorLog: String
        var victimLog: String
        var restartedLog: String

        func record(_ round: Int) -> RoundRecord? { results?.rounds.first { $0.round == round } }

        var description: String {
            """

            --- rounds
            \(results?.rounds.map(\.summaryLine).joined(separator: "\n") ?? "no results.json")
            --- coordinator
            \(coordinatorLog)
            --- \(ProcessKillTests.victim) (killed)
            \(victimLog)
            --- \(ProcessKillTests.victim) (restarted)
            \(restartedLog)
            """
        }
    }

    /// Runs the experiment with the victim dying at `failpoint`, checks what both failpoints have
    /// in common (every round completes, the victim dies where asked and comes back), and returns
    /// the logs and results.
    static func run(failpoint: ParticipantFailpoint) async throws -> Run {
        let coordinatorBinary = try #require(
            ProcessSupport.binary("tessera-coordinator"), "build the executables first (swift build)")
        let participantBinary = try #require(ProcessSupport.binary("tessera-participant"))
        let root = try ProcessSupport.temporaryRoot("tessera-kill")
        defer { try? FileManager.default.removeItem(at: root) }

        let experiment = try ProcessSupport.prepareFederation(
            at: root, name: "killed", seed: 7, rounds: rounds, sites: sites, minimum: 3, evaluateEvery: 2, csvSeed: 11)

        let results = root.appendingPathComponent("results")
        let (coordinator, port) = try ProcessSupport.startCoordinator(
            binary: coordinatorBinary, experiment: experiment, tlsDirectory: root.appendingPathComponent("coordinator"),
            trustDirectory: root.appendingPathComponent("trust"), results: results,
            log: root.appendingPathComponent("coordinator.log"))
        var participants: [LoggedProcess] = []
        defer {
            for participant in participants { participant.stop() }
            coordinator.stop()
        }
        let bound = try #require(port, "the coordinator did not report its port: \(coordinator.text)")
        for site in sites {
            try ProcessSupport.writeSiteFile(
                to: root.appendingPathComponent("\(site).yaml"), site: site, coordinatorPort: bound,
                experiment: "killed")
        }
        func start(
            _ site: String, log: String, failpoint: ParticipantFailpoint? = nil,
            onExit: (@Sendable (Process) -> Void)? = nil
        )
            throws -> LoggedProcess
        {
            let process = try LoggedProcess(
                name: log, executable: participantBinary,
                arguments: ["--config", root.appendingPathComponent("\(site).yaml").path, "--once"],
                log: root.appendingPathComponent("\(log).log"),
                environment: [ParticipantFailpoint.environmentVariable: failpoint?.rawValue],
                onExit: onExit)
            participants.append(process)
            return process
        }
        func logs(victim: LoggedProcess?, restarted: LoggedProcess?) -> Run {
            let data = try? Data(contentsOf: results.appendingPathComponent("results.json"))
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return Run(
                results: data.flatMap { try? decoder.decode(ExperimentResults.self, from: $0) },
                coordinatorLog: coordinator.text,
                victimLog: victim?.text ?? "", restartedLog: restarted?.text ?? "")
        }

        // Round 1: hospital-a frozen, selected with b and c; the victim joins while it is held.
        let held = try start(Self.held, log: Self.held)
        try #require(await held.waitForLog("joined the federation as \(Self.held)", within: 20), "\(held.text)")
        held.pause()
        for site in sites where site != Self.held && site != Self.victim { _ = try start(site, log: site) }
        try #require(
            await coordinator.waitForLog("round 1: selected 3 of 3 eligible participants", within: 20),
            "\(logs(victim: nil, restarted: nil))")
        let heldPID = held.pid
        let victim = try start(Self.victim, log: "\(Self.victim)-killed", failpoint: failpoint) { process in
            // At once, before the coordinator can finish the rounds without the victim (and only
            // when the failpoint fired, not when the test stops a victim that did not die).
            if process.terminationReason == .exit && process.terminationStatus == 137 { kill(heldPID, SIGSTOP) }
        }
        try #require(
            await victim.waitForLog("joined the federation as \(Self.victim)", within: 20),
            "\(logs(victim: victim, restarted: nil))")
        held.resume()

        // Round 2: the victim dies at its failpoint; it is restarted without it.
        try #require(
            await victim.waitForExit(within: 30),
            "the failpoint did not fire:\(logs(victim: victim, restarted: nil))")
        #expect(
            victim.process.terminationReason == .exit && victim.process.terminationStatus == 137,
            "\(logs(victim: victim, restarted: nil))")
        #expect(victim.text.contains("failpoint \(failpoint.rawValue): exiting now"), "\(victim.text)")
        let restarted = try start(Self.victim, log: "\(Self.victim)-restarted")
        try #require(
            await restarted.waitForLog("joined the federation as \(Self.victim)", within: 20),
            "\(logs(victim: victim, restarted: restarted))")
        held.resume()

        // The rest of the experiment, with the restarted victim.
        try #require(
            await coordinator.waitForExit(within: 30),
            "the coordinator did not finish:\(logs(victim: victim, restarted: restarted))")
        let run = logs(victim: victim, restarted: restarted)
        #expect(coordinator.process.terminationReason == .exit && coordinator.process.terminationStatus == 0, "\(run)")
        let records = try #require(run.results?.rounds, "no results.json: \(run)")
        #expect(records.map(\.round) == Array(1...rounds), "\(run)")
        for record in records {
            #expect(record.status == .completed, "round \(record.round) failed: \(record.failureReason ?? "")\(run)")
        }
        #expect(run.record(1)?.cohortSize == 3, "the victim should have joined after round 1 was selected\(run)")

        // The restarted site took part in a later round, whose sum has all four inputs.
        let later = (killRound + 1...rounds).filter { run.restartedLog.contains("round \($0): masked update sent") }
        #expect(!later.isEmpty, "the restarted site took part in no round after round \(killRound)\(run)")
        for round in later {
            #expect(run.record(round)?.cohortSize == 4 && run.record(round)?.contributors == 4, "round \(round)\(run)")
        }
        for participant in participants where participant !== victim {
            #expect(
                await participant.waitForExit(within: 20), "\(participant.name) still runs:\n\(participant.text)")
            #expect(
                participant.process.terminationReason == .exit && participant.process.terminationStatus == 0,
                "\(participant.name):\n\(participant.text)")
        }
        return run
    }
}
