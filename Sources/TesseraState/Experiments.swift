public import Foundation
import GRDB
public import TesseraFederation
import TesseraSupport
import TesseraTensor

extension CoordinatorState {
    // MARK: Experiments

    /// Queues an experiment and chooses the MAJOR.MINOR of the versions it will publish: the
    /// model's name is the experiment's, a first experiment of a name writes 1.0.x, a later one
    /// with the same architecture the next MINOR, and one with a different architecture the
    /// next MAJOR (a new architecture is a new contract).
    public func submit(_ submission: ExperimentSubmission) throws(StateError) -> ExperimentRecord {
        let at = Self.seconds(now())
        let id = try write("the submission of \(submission.name)") { db -> Int64 in
            let previous = try Row.fetchAll(
                db,
                sql: """
                    SELECT version_major, version_minor, architecture FROM experiments
                    WHERE name = ? ORDER BY version_major DESC, version_minor DESC
                    """, arguments: [submission.name])
            var major = 1
            var minor = 0
            if let latest = previous.first {
                let latestMajor: Int = latest["version_major"]
                let latestMinor: Int = latest["version_minor"]
                let architecture: String = latest["architecture"]
                if architecture == submission.architecture {
                    major = latestMajor
                    minor = latestMinor + 1
                } else {
                    major = latestMajor + 1
                }
            }
            try db.execute(
                sql: """
                    INSERT INTO experiments (name, config_yaml, config_hash, source, status, submitted_by,
                        submitted_at, version_major, version_minor, architecture, rounds_planned)
                    VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    submission.name, submission.configYAML, submission.configHash, submission.source,
                    submission.submittedBy, at, major, minor, submission.architecture, submission.rounds,
                ])
            let id = db.lastInsertedRowID
            try Self.appendLog(db, experiment: id, at: at, lines: ["submitted by \(submission.submittedBy)"])
            return id
        }
        return try experiment(id)
    }

    public func experiment(_ id: Int64) throws(StateError) -> ExperimentRecord {
        guard let record = try read({ db in try Self.experiment(db, id) }) else {
            throw StateError(.notFound, "no experiment \(id) in \(directory.path)")
        }
        return record
    }

    /// Every experiment, oldest first; only those with `status` when given.
    public func experiments(status: ExperimentStatus? = nil) throws(StateError) -> [ExperimentRecord] {
        try read { db in
            let rows =
                if let status {
                    try Row.fetchAll(
                        db, sql: "SELECT * FROM experiments WHERE status = ? ORDER BY id", arguments: [status.rawValue])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM experiments ORDER BY id")
                }
            return rows.map(Self.experiment(from:))
        }
    }

    /// Queued and running experiments, in the order they run: those a crash interrupted first,
    /// then the queue by submission.
    public func unfinishedExperiments() throws(StateError) -> [ExperimentRecord] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM experiments WHERE status IN ('queued', 'running')
                    ORDER BY CASE status WHEN 'running' THEN 0 ELSE 1 END, id
                    """
            ).map(Self.experiment(from:))
        }
    }

    /// Ends an experiment (completed, failed or cancelled) with a last word on it.
    public func finish(_ id: Int64, as status: ExperimentStatus, message: String? = nil) throws(StateError) {
        precondition(status.isFinished, "finish(_:as:) takes a final status")
        let at = Self.seconds(now())
        try write("the end of experiment \(id)") { db in
            // A cancellation is final: an experiment cancelled while its last round ran stays
            // cancelled when its coordinator then reports it finished.
            try db.execute(
                sql: """
                    UPDATE experiments SET status = ?, finished_at = ?, message = ?
                    WHERE id = ? AND (status != 'cancelled' OR ? = 'cancelled')
                    """,
                arguments: [status.rawValue, at, message, id, status.rawValue])
            try db.execute(
                sql: "UPDATE runs SET ended_at = ?, end_reason = ? WHERE experiment_id = ? AND ended_at IS NULL",
                arguments: [at, status.rawValue, id])
            try Self.appendLog(db, experiment: id, at: at, lines: ["\(status)" + (message.map { ": \($0)" } ?? "")])
        }
    }

    /// Cancels a queued or running experiment; a finished one cannot be.
    public func cancel(_ id: Int64, by actor: String) throws(StateError) -> ExperimentRecord {
        let record = try experiment(id)
        guard !record.status.isFinished else {
            throw StateError(.conflict, "experiment \(id) (\(record.name)) is already \(record.status)")
        }
        try finish(id, as: .cancelled, message: "cancelled by \(actor)")
        return try experiment(id)
    }

    // MARK: Runs and rounds

    /// Starts a run of experiment `id`: any round attempt an earlier run left `started` is
    /// marked `abandoned` (it runs again from its start, as a new attempt), and the experiment
    /// becomes `running`. Returns the run's id.
    public func beginRun(of id: Int64) throws(StateError) -> Int64 {
        let at = Self.seconds(now())
        return try write("the start of a run of experiment \(id)") { db in
            try db.execute(
                sql:
                    "UPDATE runs SET ended_at = ?, end_reason = 'interrupted' WHERE experiment_id = ? AND ended_at IS NULL",
                arguments: [at, id])
            let abandoned = try Int.fetchAll(
                db, sql: "SELECT round FROM rounds WHERE experiment_id = ? AND status = 'started'", arguments: [id])
            try db.execute(
                sql:
                    "UPDATE rounds SET status = 'abandoned', finished_at = ? WHERE experiment_id = ? AND status = 'started'",
                arguments: [at, id])
            try db.execute(
                sql: """
                    UPDATE experiments SET status = 'running', started_at = COALESCE(started_at, ?)
                    WHERE id = ? AND status IN ('queued', 'running')
                    """, arguments: [at, id])
            try db.execute(sql: "INSERT INTO runs (experiment_id, started_at) VALUES (?, ?)", arguments: [id, at])
            let run = db.lastInsertedRowID
            var lines = ["run \(run) started"]
            for round in abandoned {
                lines.append("round \(round) was interrupted by a restart: it runs again from its start")
            }
            try Self.appendLog(db, experiment: id, at: at, lines: lines)
            return run
        }
    }

    /// Records that a round attempt has started, before its first message leaves.
    public func recordRoundStart(
        experiment: Int64, run: Int64, round: Int, attempt: Int, publicSeed: String, logLines: [String] = []
    ) throws(StateError) {
        let at = Self.seconds(now())
        try write("the start of round \(round)") { db in
            try Self.insertStart(
                db, experiment: experiment, run: run,
                RoundStart(round: round, attempt: attempt, publicSeed: publicSeed, logLines: logLines), at: at)
        }
    }

    static func insertStart(_ db: Database, experiment: Int64, run: Int64, _ start: RoundStart, at: Double) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO rounds (experiment_id, round, attempt, run_id, status, started_at, public_seed)
                VALUES (?, ?, ?, ?, 'started', ?, ?)
                """
        ).execute(arguments: [experiment, start.round, start.attempt, run, at, start.publicSeed])
        try appendLog(db, experiment: experiment, at: at, lines: start.logLines)
    }

    /// Commits a finished round atomically: its blobs first (durably), then one transaction
    /// with the round's record and stages, its model version, its sites' outcomes and
    /// breakers, and the log lines. On any error nothing of it is kept.
    ///
    /// With `next`, the same transaction records the start of the round after it (see
    /// ``recordRoundStart(experiment:run:round:attempt:publicSeed:logLines:)``), unless the
    /// experiment was cancelled meanwhile: a cancelled experiment starts no more rounds. One
    /// transaction is one flush of the log where two would be two, on every round boundary.
    ///
    /// - Returns: the experiment as the transaction found it; when its status is
    ///   ``ExperimentStatus/cancelled``, `next` was not recorded.
    @discardableResult
    public func commitRound(
        _ commit: RoundCommit, thenStart next: RoundStart? = nil
    ) throws(StateError)
        -> ExperimentRecord
    {
        let at = Self.seconds(now())
        var files: [FileContents] = []
        if let model = commit.model {
            files.append(model.contents)
            if !model.strategyState.vectors.isEmpty {
                files.append(FileContents(try Self.encodeStrategyVectors(model.strategyState)))
            }
        }
        // A thread of its own writes the blobs (the long part, mostly waiting on the disk) while
        // this one runs the transaction, which waits for them before it names them. Not a
        // Dispatch queue: the caller may hold one of the few threads Swift concurrency and
        // Dispatch share, and the write must not wait for another of them to come free.
        let digests = Handoff<[String]>()
        if files.isEmpty {
            digests.finish(.success([]))
        } else {
            let (blobs, files) = (blobs, files)
            Thread {
                digests.finish(
                    Result { () throws(StateError) in
                        var written: [String] = []
                        for file in files { written.append(try blobs.put(file)) }
                        return written
                    })
            }.start()
        }
        // Whatever happens to the transaction, no write is left running behind it.
        defer { _ = try? digests.wait() }
        return try commitRows(commit, next: next, at: at, digests: digests)
    }

    /// The transaction of ``commitRound(_:thenStart:)``: it waits for `digests` (the blobs on
    /// disk) before it names them, and commits only then.
    private func commitRows(
        _ commit: RoundCommit, next: RoundStart?, at: Double, digests pendingBlobs: Handoff<[String]>
    ) throws(StateError) -> ExperimentRecord {
        let record = commit.record
        return try write("round \(record.round)") { db in
            let experiment = try Self.experiment(db, commit.experiment)
            guard let experiment else {
                throw StateError(.notFound, "no experiment \(commit.experiment) to commit round \(record.round) to")
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO rounds (experiment_id, round, attempt, run_id, status, started_at, finished_at,
                        public_seed, record_json)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (experiment_id, round, attempt) DO UPDATE SET
                        status = excluded.status, finished_at = excluded.finished_at, record_json = excluded.record_json
                    """
            ).execute(arguments: [
                commit.experiment, record.round, commit.attempt, commit.run, record.status.rawValue,
                at - record.seconds, at, record.publicSeed, try Self.json(record),
            ])
            let stageRow = try db.cachedStatement(sql: "INSERT OR REPLACE INTO round_stages VALUES (?, ?, ?, ?, ?)")
            for (stage, seconds) in record.stageSeconds.sorted(by: { $0.key < $1.key }) {
                try stageRow.execute(arguments: [commit.experiment, record.round, commit.attempt, stage, seconds])
            }
            let siteRow = try db.cachedStatement(sql: "INSERT OR REPLACE INTO round_sites VALUES (?, ?, ?, ?, ?, ?)")
            for (site, outcome) in commit.siteOutcomes.sorted(by: { $0.key < $1.key }) {
                try siteRow.execute(
                    arguments: [commit.experiment, record.round, commit.attempt, site, outcome.rawValue, at])
            }
            let breakerRow = try db.cachedStatement(sql: "UPDATE participants SET breaker_json = ? WHERE site = ?")
            for (site, breaker) in commit.breakers.sorted(by: { $0.key < $1.key }) {
                try breakerRow.execute(arguments: [try Self.json(breaker), site])
            }
            try Self.appendLog(db, experiment: commit.experiment, at: at, lines: commit.logLines + [record.summaryLine])
            if let next, experiment.status != .cancelled {
                try Self.insertStart(db, experiment: commit.experiment, run: commit.run, next, at: at)
            }
            // Waited for even without a model, so that a failed write is never overtaken.
            let digests = try pendingBlobs.wait()
            if let model = commit.model {
                let modelDigest = digests[0]
                let strategyDigest = digests.count > 1 ? digests[1] : nil
                try db.cachedStatement(
                    sql: """
                        INSERT INTO model_versions (name, major, minor, patch, digest, parent, experiment_id, run_id,
                            round, cohort_size, contributors, metrics_json, config_hash, architecture, created_at,
                            stage, strategy_name, strategy_rounds, strategy_digest)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'candidate', ?, ?, ?)
                        """
                ).execute(arguments: [
                    experiment.name, model.version.major, model.version.minor, model.version.patch, modelDigest,
                    model.parent?.description, commit.experiment, commit.run, record.round, record.cohortSize,
                    record.contributors, try Self.json(model.metrics), experiment.configHash,
                    experiment.architecture, at, model.strategyState.strategy, model.strategyState.rounds,
                    strategyDigest,
                ])
            }
            return experiment
        }
    }

    /// Where experiment `id` stands: its finished rounds, its latest model and strategy state,
    /// and the attempt its next round starts as.
    public func checkpoint(of id: Int64) throws(StateError) -> ExperimentCheckpoint {
        let experiment = try experiment(id)
        let (records, nextAttempt, runs) = try read { db -> ([RoundRecord], Int, Int) in
            let texts = try String.fetchAll(
                db,
                sql: """
                    SELECT record_json FROM rounds WHERE experiment_id = ? AND status IN ('completed', 'failed')
                    ORDER BY round, attempt
                    """, arguments: [id])
            let records = try texts.map { text in try Self.decode(RoundRecord.self, text, what: "round record")! }
            let next = (records.map(\.round).max() ?? 0) + 1
            let attempts =
                try Int.fetchOne(
                    db, sql: "SELECT MAX(attempt) + 1 FROM rounds WHERE experiment_id = ? AND round = ?",
                    arguments: [id, next]) ?? 0
            let runs =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", arguments: [id]) ?? 0
            return (records, attempts, runs)
        }
        let latest = try modelRows(matching: ModelQuery(experiment: id, limit: 1)).first
        var strategy: StrategyState?
        if let latest {
            strategy = try strategyState(of: latest)
        }
        return ExperimentCheckpoint(
            experiment: experiment, records: records, latestModel: latest, strategyState: strategy,
            nextAttempt: nextAttempt, runs: runs)
    }

    /// The finished rounds of experiment `id`, in order: what `rounds.csv` and `results.json`
    /// are written from.
    public func records(of id: Int64) throws(StateError) -> [RoundRecord] {
        try checkpoint(of: id).records
    }

    /// The experiment's log, oldest first (at most the latest `limit` lines).
    public func logs(of id: Int64, limit: Int = 1000) throws(StateError) -> [(at: Date, line: String)] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT at, line FROM (SELECT id, at, line FROM experiment_log WHERE experiment_id = ?
                        ORDER BY id DESC LIMIT ?) ORDER BY id
                    """, arguments: [id, max(1, limit)]
            ).map { row in (Date(timeIntervalSince1970: row["at"]), row["line"]) }
        }
    }

    /// Appends log lines outside a round commit (experiment start, errors).
    public func appendLog(_ id: Int64, _ lines: [String]) throws(StateError) {
        guard !lines.isEmpty else { return }
        let at = Self.seconds(now())
        try write("the log of experiment \(id)") { db in try Self.appendLog(db, experiment: id, at: at, lines: lines) }
    }

    // MARK: Rows

    static func appendLog(_ db: Database, experiment: Int64, at: Double, lines: [String]) throws {
        let row = try db.cachedStatement(sql: "INSERT INTO experiment_log (experiment_id, at, line) VALUES (?, ?, ?)")
        for line in lines {
            try row.execute(arguments: [experiment, at, line])
        }
    }

    static func experiment(_ db: Database, _ id: Int64) throws -> ExperimentRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM experiments WHERE id = ?", arguments: [id]).map(experiment(from:))
    }

    static func experiment(from row: Row) -> ExperimentRecord {
        ExperimentRecord(
            id: row["id"], name: row["name"], configYAML: row["config_yaml"], configHash: row["config_hash"],
            source: row["source"], status: ExperimentStatus(rawValue: row["status"]) ?? .failed,
            submittedBy: row["submitted_by"], submittedAt: Date(timeIntervalSince1970: row["submitted_at"]),
            startedAt: date(row["started_at"]), finishedAt: date(row["finished_at"]),
            versionMajor: row["version_major"], versionMinor: row["version_minor"], architecture: row["architecture"],
            roundsPlanned: row["rounds_planned"], message: row["message"])
    }

    // MARK: Strategy state

    /// Strategy vectors as a safetensors file (one 1-D tensor per name): compact, and readable
    /// by the same tools as the models.
    static func encodeStrategyVectors(_ state: StrategyState) throws(StateError) -> [UInt8] {
        do {
            return try Safetensors.encode(
                state.vectors.map { (name: $0.key, tensor: Tensor($0.value)) },
                metadata: ["strategy": state.strategy, "rounds": String(state.rounds)])
        } catch {
            throw StateError(.io, "cannot encode the state of strategy \(state.strategy)", cause: error)
        }
    }

    func strategyState(of model: RegisteredModel) throws(StateError) -> StrategyState {
        let (name, rounds, digest) = try read { db -> (String, Int, String?) in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT strategy_name, strategy_rounds, strategy_digest FROM model_versions
                    WHERE name = ? AND major = ? AND minor = ? AND patch = ?
                    """, arguments: [model.name, model.version.major, model.version.minor, model.version.patch])
            guard let row else { throw StateError(.notFound, "no version \(model.reference)") }
            return (row["strategy_name"], row["strategy_rounds"], row["strategy_digest"])
        }
        var state = StrategyState(strategy: name, rounds: rounds)
        if let digest {
            let bytes = try blobs.get(digest)
            do {
                let file = try Safetensors.decode(bytes)
                for (key, tensor) in file.tensors { state.vectors[key] = tensor.scalars }
            } catch {
                throw StateError(
                    .corrupt, "the strategy state \(digest) of \(model.reference) does not decode", cause: error)
            }
        }
        return state
    }
}
