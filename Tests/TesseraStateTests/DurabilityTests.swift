import Foundation
import TesseraFederation
import TesseraSupport
import Testing

@testable import TesseraState

#if canImport(Glibc)
import Glibc
#endif

@Suite("Durability and bad input: failed commits keep the last state, bad folders are refused clearly")
struct DurabilityTests {
    /// A folder with experiment `trial` and its round 1 committed; round 2 has started.
    static func oneRoundCommitted(_ fixture: StateFixture) throws -> (ExperimentRecord, run: Int64) {
        let experiment = try fixture.state.submit(StateFixture.submission(name: "trial"))
        let run = try fixture.state.beginRun(of: experiment.id)
        try fixture.commit(experiment, run: run, round: 1, metrics: ["accuracy": 0.8])
        try fixture.state.recordRoundStart(experiment: experiment.id, run: run, round: 2, attempt: 0, publicSeed: "02")
        return (experiment, run)
    }

    /// Reopens the folder as a restarted coordinator does and checks that exactly round 1 is
    /// there, that round 2 runs again, and that SQLite finds the database sound.
    static func expectRoundOneIntact(_ folder: URL, experiment: Int64) throws {
        let reopened = try CoordinatorState(directory: folder)
        _ = try reopened.beginRun(of: experiment)
        let checkpoint = try reopened.checkpoint(of: experiment)
        let rounds = checkpoint.records.map(\.round)
        #expect(rounds == [1])
        #expect(checkpoint.latestModel?.version == ModelVersion(major: 1, minor: 0, patch: 1))
        #expect(checkpoint.nextAttempt == 1)
        let integrity = try reopened.integrityCheck()
        #expect(integrity == ["ok"])
        let lines = try reopened.logs(of: experiment).map(\.line)
        #expect(lines.contains("round 2 was interrupted by a restart: it runs again from its start"))
        #expect(!lines.contains("round 2: aggregated"))
    }

    static func blobNames(_ state: CoordinatorState) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: state.blobs.directory.path)) ?? []).sorted()
    }

    #if canImport(Glibc)
    /// Runs `body` with this process's file-size limit lowered to `bytes` and SIGXFSZ ignored,
    /// so a write past the limit fails with EFBIG, as on a full disk. Root is held to it too,
    /// which mode bits are not. The limit is process-wide, so it is kept far above any file
    /// another test writes, and restored at once.
    static func withFileSizeLimit<T>(_ bytes: Int, _ body: () throws -> T) throws -> T {
        let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        var saved = rlimit()
        guard getrlimit(resource, &saved) == 0 else { throw POSIXError(.EPERM) }
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var lowered = saved
        lowered.rlim_cur = rlim_t(bytes)
        guard setrlimit(resource, &lowered) == 0 else { throw POSIXError(.EPERM) }
        defer {
            setrlimit(resource, &saved)
            signal(SIGXFSZ, previousHandler)
        }
        return try body()
    }

    @Test("A blob write that fails for lack of space is diskFull, with the last committed state intact")
    func diskFull() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let (experiment, run) = try Self.oneRoundCommitted(fixture)
        let blobsBefore = Self.blobNames(fixture.state)
        let limit = 16 << 20
        let large = [UInt8](repeating: 7, count: limit + 4096)
        let error = try Self.withFileSizeLimit(limit) {
            #expect(throws: StateError.self) {
                try fixture.commit(experiment, run: run, round: 2, bytes: large)
            }
        }
        #expect(error?.code == .diskFull)
        #expect(error?.message.hasPrefix("the disk is full: cannot write a model blob ") == true)
        #expect(error?.message.hasSuffix("; the last committed state is intact") == true)
        // The temporary file was removed: the blob folder is as it was.
        #expect(Self.blobNames(fixture.state) == blobsBefore)
        try Self.expectRoundOneIntact(fixture.folder, experiment: experiment.id)
    }
    #endif

    @Test("A read-only state folder at a blob write is readOnly, with the last committed state intact")
    func readOnly() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let (experiment, run) = try Self.oneRoundCommitted(fixture)
        // Root ignores mode bits, so the file system's refusal is played through the writer seam.
        let refusing = try CoordinatorState(
            directory: fixture.folder, now: fixture.clock.read,
            writeBlob: { _, url throws(DurableFileError) in
                throw DurableFileError(
                    .createTemporary, path: url.path, errno: EROFS,
                    "cannot create a temporary file to write '\(url.path)'")
            })
        let record = RoundRecord(
            round: 2, modelVersion: "1.0.2", cohortSize: 3, contributors: 3, dropouts: 0, seconds: 1)
        let model = ModelArtifact(
            version: ModelVersion(major: 1, minor: 0, patch: 2), parent: ModelVersion(major: 1, minor: 0, patch: 1),
            bytes: StateFixture.modelBytes(2), strategyState: StrategyState(strategy: "fedavg", rounds: 2), metrics: [:]
        )
        let error = #expect(throws: StateError.self) {
            try refusing.commitRound(
                RoundCommit(experiment: experiment.id, run: run, attempt: 0, record: record, model: model))
        }
        #expect(error?.code == .readOnly)
        #expect(error?.message.hasPrefix("the state folder is not writable: cannot write a model blob ") == true)
        #expect(error?.description.contains("Read-only file system") == true)
        try Self.expectRoundOneIntact(fixture.folder, experiment: experiment.id)
    }

    @Test(
        "Write errors map to what the operator must do",
        arguments: [
            (ENOSPC, "diskFull"), (EDQUOT, "diskFull"), (EFBIG, "diskFull"), (EROFS, "readOnly"), (EACCES, "readOnly"),
            (EIO, "io"),
        ])
    func errnoMapping(code: Int32, expected: String) {
        let error = StateError.fromWrite(
            DurableFileError(.write, path: "/x", errno: code, "cannot write '/x'"), what: "x")
        #expect(error.code.description == expected)
    }

    @Test("A failure inside the round's transaction rolls all of it back, the rounds row included")
    func transactionRollsBack() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        try state.siteConnected(StateFixture.announcement("site-a"))
        let (experiment, run) = try Self.oneRoundCommitted(fixture)
        let logsBefore = try state.logs(of: experiment.id).count
        var benched = CircuitBreaker()
        benched.record(.failed, at: 0, policy: CircuitBreakerPolicy(failureThreshold: 1))
        // Round 2 republishes 1.0.1: the version row violates UNIQUE after the round's other rows went in.
        let error = #expect(throws: StateError.self) {
            try fixture.commit(
                experiment, run: run, round: 2, outcomes: ["site-a": .failed], breakers: ["site-a": benched],
                version: ModelVersion(major: 1, minor: 0, patch: 1))
        }
        #expect(error?.code == .conflict)
        #expect(error?.message == "cannot commit round 2: it contradicts what is committed; nothing of it was kept")
        let site = try state.site("site-a")
        #expect(site.recent.isEmpty)
        #expect(site.breaker == CircuitBreaker())
        let logsAfter = try state.logs(of: experiment.id).count
        #expect(logsAfter == logsBefore)
        let versions = try state.models(matching: ModelQuery()).map(\.version.description)
        #expect(versions == ["1.0.1"])
        try Self.expectRoundOneIntact(fixture.folder, experiment: experiment.id)
    }

    /// A commit that only reached the page cache survives a killed process but not a power
    /// loss. Opening a GRDB pool sets its writer to `synchronous = NORMAL` after the
    /// configuration's own set-up ran, which is how this once went unnoticed.
    @Test("Every commit is flushed: the writer runs with synchronous = FULL, on a new folder and on reopening")
    func commitsAreFlushed() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        #expect(try fixture.state.writerSynchronousLevel() == 2)
        let reopened = try CoordinatorState(directory: fixture.folder)
        #expect(try reopened.writerSynchronousLevel() == 2)
    }

    @Test("A database file that is not SQLite is refused as cannotOpen, and left as it was")
    func notADatabase() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-state-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent(CoordinatorState.databaseFileName)
        let text = Data(String(repeating: "these are notes, not a database\n", count: 200).utf8)
        try text.write(to: file)
        let error = #expect(throws: StateError.self) { try CoordinatorState(directory: folder) }
        #expect(error?.code == .cannotOpen)
        #expect(
            error?.message
                == "cannot open the coordinator state \(file.path) (is it a Tessera state folder, and writable?)")
        #expect(error?.description.contains("not a database") == true)
        let after = try Data(contentsOf: file)
        #expect(after == text)
    }

    @Test("The CLI opens only an existing state folder, and never creates one")
    func openExisting() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-state-\(UUID().uuidString)")
        let error = #expect(throws: StateError.self) { try CoordinatorState.openExisting(directory: folder) }
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.hasPrefix("no coordinator state in \(folder.path) (no state.sqlite)") == true)
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    @Test("A reader (the CLI) and a writer (the coordinator) can have the folder open at once")
    func twoOpeners() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let writer = fixture.state
        let reader = try CoordinatorState.openExisting(directory: fixture.folder)
        let experiment = try writer.submit(StateFixture.submission(name: "trial"))
        let run = try writer.beginRun(of: experiment.id)
        try fixture.commit(experiment, run: run, round: 1)
        let seen = try reader.models(matching: ModelQuery()).map(\.reference.description)
        #expect(seen == ["trial@1.0.1"])
        // The reader may write too (a CLI promotion) while the writer goes on committing.
        try reader.promote(try ModelReference(parsing: "trial@1.0.1"), to: .staging, by: "local:alice", reason: nil)
        try fixture.commit(experiment, run: run, round: 2)
        let stages = try writer.models(matching: ModelQuery()).map { "\($0.reference) \($0.stage)" }
        #expect(stages == ["trial@1.0.2 candidate", "trial@1.0.1 staging"])
        let integrity = try reader.integrityCheck()
        #expect(integrity == ["ok"])
    }

    @Test("Garbage collection removes unreferenced blobs and stray temporary files, and keeps every referenced one")
    func garbageCollection() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        let experiment = try state.submit(StateFixture.submission(name: "trial"))
        let run = try state.beginRun(of: experiment.id)
        try fixture.commit(experiment, run: run, round: 1)
        // A strategy with state writes a second blob per version.
        let record = RoundRecord(
            round: 2, modelVersion: "1.0.2", cohortSize: 3, contributors: 3, dropouts: 0, seconds: 1)
        let model = ModelArtifact(
            version: ModelVersion(major: 1, minor: 0, patch: 2), parent: ModelVersion(major: 1, minor: 0, patch: 1),
            bytes: StateFixture.modelBytes(2),
            strategyState: StrategyState(strategy: "fedadam", rounds: 2, vectors: ["m": [1, 2]]),
            metrics: [:])
        try state.commitRound(
            RoundCommit(experiment: experiment.id, run: run, attempt: 0, record: record, model: model))
        let referenced = Self.blobNames(state)
        #expect(referenced.count == 3)

        // What a crash between a blob's write and its commit leaves: an orphan and a temporary file.
        let orphan = try state.blobs.put([9, 9, 9])
        try Data([1]).write(to: state.blobs.directory.appendingPathComponent(".\(orphan).tmp-0011223344556677"))
        #expect(Self.blobNames(state).count == 5)
        let removed = try state.collectGarbage()
        #expect(removed == 2)
        #expect(Self.blobNames(state) == referenced)

        let checkpoint = try state.checkpoint(of: experiment.id)
        #expect(checkpoint.strategyState?.vectors["m"] == [1, 2])
        let first = try state.model(try ModelReference(parsing: "trial@1.0.1"))
        let bytes = try state.artifact(of: first)
        #expect(bytes == StateFixture.modelBytes(1))
        let again = try state.collectGarbage()
        #expect(again == 0)
    }
}
