public import Foundation
import GRDB

extension CoordinatorState {
    /// Opens a state folder a coordinator has already written, as the CLI does: a mistyped
    /// `--state` is an error, not a new empty folder.
    public static func openExisting(directory: URL) throws(StateError) -> CoordinatorState {
        let database = directory.appendingPathComponent(databaseFileName)
        guard FileManager.default.fileExists(atPath: database.path) else {
            throw StateError(
                .cannotOpen,
                "no coordinator state in \(directory.path) (no \(databaseFileName)): pass the folder given to "
                    + "tessera-coordinator --state")
        }
        return try CoordinatorState(directory: directory)
    }

    /// Removes the blobs no model version names, with the temporary files a crash left: a
    /// crash between a blob's write and its commit leaves one behind. Returns how many files
    /// it removed.
    ///
    /// Run it only when no round is being committed (a coordinator calls it at start-up): a
    /// commit writes its blobs before the row that names them.
    @discardableResult
    public func collectGarbage() throws(StateError) -> Int {
        let referenced = try read { db in
            Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT digest FROM model_versions
                        UNION SELECT strategy_digest FROM model_versions WHERE strategy_digest IS NOT NULL
                        """))
        }
        return blobs.collectGarbage(keeping: referenced)
    }

    /// How many of experiment `id`'s rounds have finished (completed or failed): the rounds
    /// `tessera experiments` reports as done.
    public func roundsFinished(of id: Int64) throws(StateError) -> Int {
        try read { db in
            try Int.fetchOne(
                db,
                sql:
                    "SELECT COUNT(DISTINCT round) FROM rounds WHERE experiment_id = ? AND status IN ('completed', 'failed')",
                arguments: [id]) ?? 0
        }
    }
}
