public import Foundation
import GRDB
import TesseraFederation

/// The coordinator's durable state: one SQLite database in WAL mode (`state.sqlite`) and the
/// content-addressed model blobs, both in one folder (`--state DIR`).
///
/// Commits are synchronous (`PRAGMA synchronous = FULL`): once a commit returns it survives a
/// crash or a power loss. A round's blobs are written before the transaction that names them,
/// so a committed row never points at a missing file. Every method is safe to call from any
/// thread; the CLI may read the folder while a coordinator runs on it.
public final class CoordinatorState: Sendable {
    public static let databaseFileName = "state.sqlite"

    public let directory: URL
    public let blobs: BlobStore
    let database: DatabasePool
    /// The wall clock rows are stamped with (injected by tests).
    let now: @Sendable () -> Date

    /// Opens the state folder, creating it and its database on first use and applying any
    /// migration the database lacks.
    public convenience init(directory: URL, now: @escaping @Sendable () -> Date = { Date() }) throws(StateError) {
        try self.init(directory: directory, now: now, writeBlob: BlobStore.durableWrite)
    }

    /// `writeBlob` lets tests play a disk that refuses the blob of a commit.
    init(
        directory: URL, now: @escaping @Sendable () -> Date, writeBlob: @escaping BlobStore.FileWriter
    ) throws(StateError) {
        self.directory = directory
        self.now = now
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StateError(.cannotOpen, "cannot create the state folder \(directory.path)", cause: error)
        }
        blobs = try BlobStore(root: directory, writeFile: writeBlob)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        let path = directory.appendingPathComponent(Self.databaseFileName).path
        do {
            database = try DatabasePool(path: path, configuration: configuration)
            // After the pool is open, not in `prepareDatabase`: opening a pool puts its writer in
            // WAL mode with `synchronous = NORMAL`, which would leave commits unflushed (they
            // survive a killed process, not a power loss).
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Schema.migrator.migrate(database)
        } catch {
            throw StateError(
                .cannotOpen, "cannot open the coordinator state \(path) (is it a Tessera state folder, and writable?)",
                cause: error)
        }
    }

    /// The writer connection's `PRAGMA synchronous` (2 is FULL: every commit is flushed).
    func writerSynchronousLevel() throws(StateError) -> Int {
        do {
            return try database.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
        } catch {
            throw StateError(.io, "cannot read the state's synchronous setting", cause: error)
        }
    }

    /// SQLite's own check of the whole database: `["ok"]` when it is sound.
    public func integrityCheck() throws(StateError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    // MARK: Access

    func read<T>(_ body: (Database) throws -> T) throws(StateError) -> T {
        do {
            return try database.read(body)
        } catch let error as StateError {
            throw error
        } catch let error as RegistryError {
            throw StateError(.notFound, error.message, cause: error)
        } catch {
            throw StateError(.io, "cannot read the coordinator state in \(directory.path)", cause: error)
        }
    }

    /// Runs `body` in one immediate transaction: all of it commits, or none of it.
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(StateError) -> T {
        do {
            return try database.write(body)
        } catch let error as StateError {
            throw error
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_FULL:
                throw StateError(
                    .diskFull, "the disk is full: cannot commit \(what); the last committed state is intact",
                    cause: error)
            case .SQLITE_CONSTRAINT:
                throw StateError(
                    .conflict, "cannot commit \(what): it contradicts what is committed; nothing of it was kept",
                    cause: error)
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                throw StateError(
                    .readOnly,
                    "the state folder is not writable: cannot commit \(what); the last committed state is intact",
                    cause: error)
            default:
                throw StateError(.io, "cannot commit \(what); the last committed state is intact", cause: error)
            }
        } catch {
            throw StateError(.io, "cannot commit \(what); the last committed state is intact", cause: error)
        }
    }

    static func seconds(_ date: Date) -> Double { date.timeIntervalSince1970 }
    static func date(_ seconds: Double?) -> Date? { seconds.map(Date.init(timeIntervalSince1970:)) }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?, what: String) throws -> T? {
        guard let text else { return nil }
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StateError(.corrupt, "the state's \(what) does not decode", cause: error)
        }
    }
}
