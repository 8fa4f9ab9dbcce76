import GRDB

/// The database's schema, as migrations from the first version on: a state folder written by
/// any earlier Tessera opens in a later one, which applies what it lacks in order. A migration
/// is never edited once released; a change is a new migration.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: experiments, runs, rounds, models, sites") { db in
            try db.execute(sql: version1)
        }
        return migrator
    }

    /// Times are seconds since 1970 (UTC) as REAL; JSON columns hold Codable values.
    static let version1 = """
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            config_yaml TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            source TEXT,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
            submitted_by TEXT NOT NULL,
            submitted_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            version_major INTEGER NOT NULL,
            version_minor INTEGER NOT NULL,
            architecture TEXT NOT NULL,
            rounds_planned INTEGER NOT NULL,
            message TEXT
        );
        CREATE INDEX experiments_by_status ON experiments(status, id);

        -- One coordinator process's time on an experiment: a restart starts a new run.
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id),
            started_at REAL NOT NULL,
            ended_at REAL,
            end_reason TEXT
        );

        -- Every attempt of every round: 'started' is written before the round's first message
        -- leaves; a restart marks the attempts it finds 'started' as 'abandoned'.
        CREATE TABLE rounds (
            experiment_id INTEGER NOT NULL REFERENCES experiments(id),
            round INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            status TEXT NOT NULL CHECK (status IN ('started', 'completed', 'failed', 'abandoned')),
            started_at REAL NOT NULL,
            finished_at REAL,
            public_seed TEXT,
            record_json TEXT,
            PRIMARY KEY (experiment_id, round, attempt)
        );

        CREATE TABLE round_stages (
            experiment_id INTEGER NOT NULL,
            round INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            stage TEXT NOT NULL,
            seconds REAL NOT NULL,
            PRIMARY KEY (experiment_id, round, attempt, stage),
            FOREIGN KEY (experiment_id, round, attempt) REFERENCES rounds(experiment_id, round, attempt)
        );

        CREATE TABLE round_sites (
            experiment_id INTEGER NOT NULL,
            round INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            site TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('contributed', 'failed', 'roundFailed')),
            at REAL NOT NULL,
            PRIMARY KEY (experiment_id, round, attempt, site),
            FOREIGN KEY (experiment_id, round, attempt) REFERENCES rounds(experiment_id, round, attempt)
        );
        CREATE INDEX round_sites_by_site ON round_sites(site, at);

        CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            major INTEGER NOT NULL,
            minor INTEGER NOT NULL,
            patch INTEGER NOT NULL,
            digest TEXT NOT NULL,
            parent TEXT,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id),
            run_id INTEGER NOT NULL,
            round INTEGER NOT NULL,
            cohort_size INTEGER NOT NULL,
            contributors INTEGER NOT NULL,
            metrics_json TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            architecture TEXT NOT NULL,
            created_at REAL NOT NULL,
            stage TEXT NOT NULL CHECK (stage IN ('candidate', 'staging', 'production', 'archived')),
            strategy_name TEXT NOT NULL,
            strategy_rounds INTEGER NOT NULL,
            strategy_digest TEXT,
            UNIQUE (name, major, minor, patch)
        );
        CREATE INDEX model_versions_by_experiment ON model_versions(experiment_id, patch);

        -- The audit trail of stage changes.
        CREATE TABLE stage_transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_id INTEGER NOT NULL REFERENCES model_versions(id),
            from_stage TEXT NOT NULL,
            to_stage TEXT NOT NULL,
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            reason TEXT
        );

        CREATE TABLE participants (
            site TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            software_version TEXT NOT NULL,
            cores INTEGER NOT NULL,
            memory_bytes INTEGER,
            datasets_json TEXT NOT NULL,
            connected INTEGER NOT NULL DEFAULT 0,
            revoked INTEGER NOT NULL DEFAULT 0,
            breaker_json TEXT
        );

        CREATE TABLE experiment_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id),
            at REAL NOT NULL,
            line TEXT NOT NULL
        );
        CREATE INDEX experiment_log_by_experiment ON experiment_log(experiment_id, id);
        """
}
