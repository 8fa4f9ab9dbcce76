public import Foundation
import GRDB
public import TesseraFederation

extension CoordinatorState {
    /// How many of a site's latest round outcomes its health is judged on.
    public static let recentOutcomes = 10

    /// Records a site's Hello: first seen on its first connection, and what it reports now.
    public func siteConnected(_ announcement: SiteAnnouncement) throws(StateError) {
        let at = Self.seconds(now())
        let datasets = try? Self.json(announcement.datasets)
        try write("the connection of \(announcement.site)") { db in
            try db.execute(
                sql: """
                    INSERT INTO participants (site, fingerprint, first_seen, last_seen, software_version, cores,
                        memory_bytes, datasets_json, connected)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
                    ON CONFLICT (site) DO UPDATE SET
                        fingerprint = excluded.fingerprint, last_seen = excluded.last_seen,
                        software_version = excluded.software_version, cores = excluded.cores,
                        memory_bytes = excluded.memory_bytes, datasets_json = excluded.datasets_json, connected = 1
                    """,
                arguments: [
                    announcement.site, announcement.fingerprint, at, at, announcement.softwareVersion,
                    announcement.cores, announcement.memoryBytes, datasets ?? "[]",
                ])
        }
    }

    /// Records that a site's last session closed.
    public func siteDisconnected(_ site: String) throws(StateError) {
        let at = Self.seconds(now())
        try write("the disconnection of \(site)") { db in
            try db.execute(
                sql: "UPDATE participants SET connected = 0, last_seen = ? WHERE site = ?", arguments: [at, site])
        }
    }

    /// At start-up no session is open, whatever a crash left recorded.
    public func markAllDisconnected() throws(StateError) {
        try write("the sessions' reset") { db in try db.execute(sql: "UPDATE participants SET connected = 0") }
    }

    /// Marks the sites whose certificates are revoked.
    public func markRevoked(_ sites: Set<String>) throws(StateError) {
        guard !sites.isEmpty else { return }
        try write("the revocation of \(sites.count) sites") { db in
            for site in sites {
                try db.execute(
                    sql: "UPDATE participants SET revoked = 1, connected = 0 WHERE site = ?", arguments: [site])
            }
        }
    }

    /// Every site that ever connected, by name.
    public func sites() throws(StateError) -> [SiteRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM participants ORDER BY site").map { row in
                try Self.site(from: row, db)
            }
        }
    }

    public func site(_ name: String) throws(StateError) -> SiteRecord {
        let record = try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM participants WHERE site = ?", arguments: [name]).map {
                try Self.site(from: $0, db)
            }
        }
        guard let record else { throw StateError(.notFound, "no site \(name) has ever connected to this coordinator") }
        return record
    }

    /// A site's latest round outcomes with their experiment and round, newest first.
    public func roundHistory(
        of site: String, limit: Int = 20
    ) throws(StateError) -> [(
        experiment: Int64, round: Int, attempt: Int, outcome: SiteRoundOutcome, at: Date
    )] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM round_sites WHERE site = ? ORDER BY at DESC, round DESC LIMIT ?",
                arguments: [site, max(1, limit)]
            ).map { row in
                (
                    row["experiment_id"], row["round"], row["attempt"],
                    SiteRoundOutcome(rawValue: row["outcome"]) ?? .failed, Date(timeIntervalSince1970: row["at"])
                )
            }
        }
    }

    /// Every recorded breaker, `open(until:)` in seconds since 1970.
    public func breakers() throws(StateError) -> [String: CircuitBreaker] {
        try read { db in
            var breakers: [String: CircuitBreaker] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT site, breaker_json FROM participants WHERE breaker_json IS NOT NULL")
            {
                if let breaker = try Self.decode(CircuitBreaker.self, row["breaker_json"], what: "circuit breaker") {
                    breakers[row["site"]] = breaker
                }
            }
            return breakers
        }
    }

    static func site(from row: Row, _ db: Database) throws -> SiteRecord {
        let name: String = row["site"]
        let outcomes = try String.fetchAll(
            db, sql: "SELECT outcome FROM round_sites WHERE site = ? ORDER BY at DESC, round DESC LIMIT ?",
            arguments: [name, recentOutcomes])
        let breaker = try decode(CircuitBreaker.self, row["breaker_json"], what: "circuit breaker") ?? CircuitBreaker()
        return SiteRecord(
            site: name, fingerprint: row["fingerprint"], firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
            lastSeen: Date(timeIntervalSince1970: row["last_seen"]), softwareVersion: row["software_version"],
            cores: row["cores"], memoryBytes: row["memory_bytes"],
            datasets: try decode([DatasetOfferRecord].self, row["datasets_json"], what: "dataset offers") ?? [],
            connected: (row["connected"] as Int) != 0, revoked: (row["revoked"] as Int) != 0, breaker: breaker,
            recent: outcomes.reversed().compactMap(SiteRoundOutcome.init(rawValue:)))
    }
}
