import Foundation
import GRDB
public import TesseraFederation

extension CoordinatorState: ModelRegistry {
    public func models(matching query: ModelQuery) throws -> [RegisteredModel] {
        try modelRows(matching: query)
    }

    func modelRows(matching query: ModelQuery) throws(StateError) -> [RegisteredModel] {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let name = query.name {
            clauses.append("name = ?")
            _ = arguments.append(contentsOf: [name])
        }
        if let experiment = query.experiment {
            clauses.append("experiment_id = ?")
            _ = arguments.append(contentsOf: [experiment])
        }
        if let stage = query.stage {
            clauses.append("stage = ?")
            _ = arguments.append(contentsOf: [stage.rawValue])
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT * FROM model_versions \(filter) ORDER BY created_at DESC, id DESC"
        let bound = arguments
        let models = try read { db in try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.model(from:)) }
        let matching = models.filter { query.matches($0) }
        return query.limit.map { Array(matching.prefix(max(0, $0))) } ?? matching
    }

    public func model(_ reference: ModelReference) throws -> RegisteredModel {
        let candidates = try modelRows(matching: ModelQuery(name: reference.name)).filter {
            $0.version == reference.version
        }
        guard let first = candidates.first else {
            throw RegistryError(.notFound, "no model version \(reference) in \(directory.path)")
        }
        guard candidates.count == 1 else {
            throw RegistryError(
                .ambiguous,
                "\(reference) names \(candidates.count) models: "
                    + candidates.map(\.reference.description).sorted().joined(separator: ", ") + "; use NAME@VERSION")
        }
        return first
    }

    @discardableResult
    public func promote(
        _ reference: ModelReference, to stage: ModelStage, by actor: String, reason: String?
    ) throws
        -> [StageTransition]
    {
        let target = try model(reference)
        guard target.stage != stage else {
            throw RegistryError(.invalidTransition, "\(target.reference) is already in \(stage)")
        }
        guard target.stage.canMove(to: stage) else {
            let allowed = ModelStage.allCases.filter { target.stage.canMove(to: $0) }.map(\.rawValue)
            throw RegistryError(
                .invalidTransition,
                "\(target.reference) cannot move from \(target.stage) to \(stage): "
                    + (allowed.isEmpty
                        ? "\(target.stage) is final" : "allowed are " + allowed.joined(separator: ", ")))
        }
        let at = now()
        return try write("the promotion of \(target.reference)") { db in
            try Self.promote(db, target, to: stage, by: actor, reason: reason, at: at)
        }
    }

    static func promote(
        _ db: Database, _ target: RegisteredModel, to stage: ModelStage, by actor: String, reason: String?, at: Date
    ) throws -> [StageTransition] {
        // Checked again inside the transaction: a concurrent promotion may have moved it since.
        let current = try String.fetchOne(
            db, sql: "SELECT stage FROM model_versions WHERE id = ?", arguments: [try id(db, of: target)]
        ).flatMap(ModelStage.init(rawValue:))
        guard let current, current == target.stage else {
            throw RegistryError(
                .invalidTransition,
                "\(target.reference) moved to \(current?.rawValue ?? "nowhere") meanwhile; look again and retry")
        }
        var transitions: [StageTransition] = []
        if stage == .production {
            let holders = try Row.fetchAll(
                db, sql: "SELECT * FROM model_versions WHERE name = ? AND stage = 'production'",
                arguments: [target.name])
            for row in holders {
                let holder = model(from: row)
                let holderID: Int64 = row["id"]
                try move(db, id: holderID, to: .archived)
                let transition = StageTransition(
                    model: holder.reference, from: .production, to: .archived, actor: actor, at: at,
                    reason: "replaced in production by \(target.version)")
                try recordTransition(db, id: holderID, transition)
                transitions.append(transition)
            }
        }
        let targetID = try id(db, of: target)
        try move(db, id: targetID, to: stage)
        let transition = StageTransition(
            model: target.reference, from: target.stage, to: stage, actor: actor, at: at, reason: reason)
        try recordTransition(db, id: targetID, transition)
        transitions.append(transition)
        return transitions
    }

    public func transitions(of reference: ModelReference) throws -> [StageTransition] {
        let target = try model(reference)
        return try read { db in
            let id = try Self.id(db, of: target)
            return try Row.fetchAll(
                db, sql: "SELECT * FROM stage_transitions WHERE model_id = ? ORDER BY id", arguments: [id]
            ).map { row in
                StageTransition(
                    model: target.reference, from: ModelStage(rawValue: row["from_stage"]) ?? .candidate,
                    to: ModelStage(rawValue: row["to_stage"]) ?? .candidate, actor: row["actor"],
                    at: Date(timeIntervalSince1970: row["at"]), reason: row["reason"])
            }
        }
    }

    public func artifact(of model: RegisteredModel) throws -> [UInt8] {
        let read = Result { () throws(StateError) in try blobs.get(model.digest) }
        switch read {
        case .success(let bytes): return bytes
        case .failure(let error) where error.code == .corrupt:
            throw RegistryError(.corruptArtifact, "\(model.reference): \(error.message)")
        case .failure(let error): throw error
        }
    }

    // MARK: Rows

    static func id(_ db: Database, of model: RegisteredModel) throws -> Int64 {
        guard
            let id = try Int64.fetchOne(
                db, sql: "SELECT id FROM model_versions WHERE name = ? AND major = ? AND minor = ? AND patch = ?",
                arguments: [model.name, model.version.major, model.version.minor, model.version.patch])
        else { throw RegistryError(.notFound, "no model version \(model.reference)") }
        return id
    }

    static func move(_ db: Database, id: Int64, to stage: ModelStage) throws {
        try db.execute(sql: "UPDATE model_versions SET stage = ? WHERE id = ?", arguments: [stage.rawValue, id])
    }

    static func recordTransition(_ db: Database, id: Int64, _ transition: StageTransition) throws {
        try db.execute(
            sql:
                "INSERT INTO stage_transitions (model_id, from_stage, to_stage, actor, at, reason) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [
                id, transition.from.rawValue, transition.to.rawValue, transition.actor,
                seconds(transition.at), transition.reason,
            ])
    }

    static func model(from row: Row) -> RegisteredModel {
        let metrics = (try? decode([String: Double].self, row["metrics_json"], what: "model metrics")) ?? nil
        let parent: String? = row["parent"]
        return RegisteredModel(
            name: row["name"],
            version: ModelVersion(major: row["major"], minor: row["minor"], patch: row["patch"]),
            digest: row["digest"], parent: parent.flatMap(ModelVersion.init(parsing:)),
            experiment: row["experiment_id"],
            run: row["run_id"], round: row["round"], cohortSize: row["cohort_size"], contributors: row["contributors"],
            metrics: metrics ?? [:], configHash: row["config_hash"], architecture: row["architecture"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            stage: ModelStage(rawValue: row["stage"]) ?? .candidate)
    }
}
