public import Foundation
public import TesseraFederation

/// What `tessera models|sites|experiments` print, built from the registry and the state folder.
/// It lives here rather than in the CLI so tests check exactly what an operator reads; the
/// commands only parse arguments and print. Every failure throws a ``StateError`` or a
/// ``RegistryError`` whose message names the version, site or experiment.
public enum StateReport {
    // MARK: Models

    /// `tessera models list`: the matching versions, newest first, as a table or as JSON model
    /// cards (without their stage history).
    public static func listModels(
        in registry: any ModelRegistry, experiment: Int64? = nil, name: String? = nil, stage: String? = nil,
        where conditions: [String] = [], json: Bool = false
    ) throws -> String {
        let query = ModelQuery(
            name: name, experiment: experiment, stage: try stage.map { try ModelStage(parsing: $0) },
            conditions: try conditions.map { try MetricCondition(parsing: $0) })
        let models = try registry.models(matching: query)
        if json {
            return String(
                decoding: try ModelCard.encoder().encode(models.map { ModelCard($0, history: nil) }), as: UTF8.self)
        }
        return modelTable(models)
    }

    /// The table of `tessera models list`.
    public static func modelTable(_ models: [RegisteredModel]) -> String {
        guard !models.isEmpty else { return "no model versions match" }
        let rows = models.map { model in
            [
                model.reference.description, model.stage.rawValue, String(model.round),
                "\(model.contributors)/\(model.cohortSize)", number(model.metrics["accuracy"]),
                number(model.metrics["loss"]), number(model.metrics["train_loss"]), format(model.createdAt),
            ]
        }
        return table(
            ["MODEL", "STAGE", "ROUND", "CONTRIBUTORS/COHORT", "ACCURACY", "LOSS", "TRAIN LOSS", "CREATED"], rows,
            rightAligned: [2, 3, 4, 5, 6])
    }

    /// `tessera models show REF`: every field, the lineage and the stage history.
    public static func showModel(_ text: String, in registry: any ModelRegistry) throws -> String {
        let model = try registry.model(try ModelReference(parsing: text))
        var lines = modelFields(model)
        if let state = registry as? CoordinatorState {
            lines.append("  artifact      \(state.blobs.url(of: model.digest).path)")
        }
        lines.append("lineage (newest first)")
        for step in try registry.lineage(of: model) {
            let reference = ModelReference(name: model.name, version: step.version)
            if let found = step.model {
                lines.append("  \(reference)  round \(found.round), \(found.stage)")
            } else {
                lines.append("  \(reference)  (not in the registry: the experiment's starting model)")
            }
        }
        lines.append(contentsOf: history(of: model, try registry.transitions(of: model.reference)))
        return lines.joined(separator: "\n")
    }

    /// `tessera models show` for a version a running coordinator sent: its fields and stage
    /// history (the lineage and the artifact's path are the state folder's to tell).
    public static func showModel(_ model: RegisteredModel, transitions: [StageTransition]) -> String {
        (modelFields(model) + history(of: model, transitions)).joined(separator: "\n")
    }

    static func history(of model: RegisteredModel, _ transitions: [StageTransition]) -> [String] {
        var lines = ["stage history"]
        if transitions.isEmpty { lines.append("  none: a candidate since \(format(model.createdAt))") }
        for transition in transitions {
            lines.append("  " + transitionLine(transition))
        }
        return lines
    }

    static func modelFields(_ model: RegisteredModel) -> [String] {
        [
            "\(model.reference)  (\(model.stage))",
            "  digest        \(model.digest)",
            "  parent        \(model.parent.map { "\(model.name)@\($0)" } ?? "none (a seed model)")",
            "  experiment    \(model.experiment), run \(model.run), round \(model.round)",
            "  cohort        \(model.contributors) of \(model.cohortSize) selected sites contributed",
            "  metrics       \(metricList(model.metrics))",
            "  config hash   \(model.configHash)",
            "  architecture  \(model.architecture)",
            "  created       \(format(model.createdAt))",
        ]
    }

    /// `tessera models promote REF --to STAGE`: moves the version and says what moved, including
    /// the production version it archived.
    public static func promoteModel(
        _ text: String, to stage: String, reason: String?, actor: String, in registry: any ModelRegistry
    ) throws -> String {
        let target = try ModelStage(parsing: stage)
        let transitions = try registry.promote(try ModelReference(parsing: text), to: target, by: actor, reason: reason)
        return transitions.map { "\($0.model): \($0.from) → \($0.to) by \($0.actor)" + reasonSuffix($0.reason) }
            .joined(separator: "\n")
    }

    /// `tessera models export REF --out DIR`.
    public static func exportModel(_ text: String, to directory: URL, in registry: any ModelRegistry) throws -> String {
        let reference = try ModelReference(parsing: text)
        let written = try registry.export(reference, to: directory)
        let model = try registry.model(reference)
        return """
            exported \(model.reference) (\(model.stage), sha256 \(model.digest))
              \(written.model.path)
              \(written.card.path)
            """
    }

    /// `tessera models diff A B`: per-tensor L2 distance and the total.
    public static func diffModels(_ a: String, _ b: String, in registry: any ModelRegistry) throws -> String {
        let diff = try registry.diff(try ModelReference(parsing: a), try ModelReference(parsing: b))
        let rows = diff.entries.map { entry in
            [entry.name, entry.shape.map(String.init).joined(separator: "×"), String(format: "%.6g", entry.distance)]
        }
        return "L2 distance from \(diff.from) to \(diff.to)\n"
            + table(
                ["TENSOR", "SHAPE", "L2"], rows + [["total", "", String(format: "%.6g", diff.total)]], rightAligned: [2]
            )
    }

    // MARK: Sites

    /// `tessera sites list`: every site that ever connected, by name, with its health at `now`.
    public static func listSites(in state: CoordinatorState, now: Date, json: Bool = false) throws -> String {
        let sites = try state.sites()
        if json {
            return String(
                decoding: try ModelCard.encoder().encode(sites.map { SiteSummary($0, now: now) }), as: UTF8.self)
        }
        guard !sites.isEmpty else { return "no site has connected to this coordinator yet" }
        let rows = sites.map { site in
            [
                site.site, site.health(at: now).rawValue, site.connected ? "connected" : "-", format(site.lastSeen),
                breakerText(site.breaker, now: now), recentText(site.recent),
                site.datasets.map { "\($0.name) (\($0.rows) rows)" }.joined(separator: ", "),
            ]
        }
        return table(["SITE", "HEALTH", "SESSION", "LAST SEEN", "BREAKER", "RECENT ROUNDS", "DATASETS"], rows)
    }

    /// `tessera sites show SITE`.
    public static func showSite(_ name: String, in state: CoordinatorState, now: Date) throws(StateError) -> String {
        let site = try state.site(name)
        var lines = [
            "\(site.site)  (\(site.health(at: now)))",
            "  fingerprint   \(site.fingerprint.isEmpty ? "none (a transport without certificates)" : site.fingerprint)",
            "  first seen    \(format(site.firstSeen))",
            "  last seen     \(format(site.lastSeen))" + (site.connected ? "  (connected now)" : ""),
            "  software      \(site.softwareVersion)",
            "  cores         \(site.cores)",
            "  memory        \(site.memoryBytes.map(bytes) ?? "not reported")",
            "  revoked       \(site.revoked ? "yes: it can never take part again" : "no")",
            "  breaker       \(breakerText(site.breaker, now: now)), \(site.breaker.consecutiveFailures) failed in a row, "
                + "benched \(site.breaker.trips) times since it last closed",
            "  recent rounds \(recentText(site.recent))",
            "datasets",
        ]
        if site.datasets.isEmpty {
            lines.append("  none advertised")
        } else {
            let rows = site.datasets.map { dataset in
                [
                    dataset.name, String(dataset.rows), dataset.features.map(String.init) ?? "-",
                    dataset.schemaHash ?? "-",
                ]
            }
            lines.append(indent(table(["NAME", "ROWS", "FEATURES", "SCHEMA HASH"], rows, rightAligned: [1, 2])))
        }
        lines.append("round outcomes (newest first)")
        let history = try state.roundHistory(of: site.site)
        if history.isEmpty {
            lines.append("  none yet")
        } else {
            let rows = history.map { entry in
                [
                    String(entry.experiment), String(entry.round), String(entry.attempt), entry.outcome.rawValue,
                    format(entry.at),
                ]
            }
            lines.append(
                indent(table(["EXPERIMENT", "ROUND", "ATTEMPT", "OUTCOME", "AT"], rows, rightAligned: [0, 1, 2])))
        }
        return lines.joined(separator: "\n")
    }

    /// A site as `tessera sites list --json` prints it.
    public struct SiteSummary: Codable, Sendable, Hashable {
        public struct Breaker: Codable, Sendable, Hashable {
            /// `closed`, `open` or `probation` at the time of the listing.
            public var state: String
            public var benchedUntil: Date?
            public var consecutiveFailures: Int
            public var trips: Int
        }

        public var site: String
        public var fingerprint: String
        public var firstSeen: Date
        public var lastSeen: Date
        public var softwareVersion: String
        public var cores: Int
        public var memoryBytes: Int?
        public var datasets: [DatasetOfferRecord]
        public var connected: Bool
        public var revoked: Bool
        public var health: SiteHealth
        public var breaker: Breaker
        /// The latest round outcomes, newest last.
        public var recent: [SiteRoundOutcome]

        public init(_ record: SiteRecord, now: Date) {
            site = record.site
            fingerprint = record.fingerprint
            firstSeen = record.firstSeen
            lastSeen = record.lastSeen
            softwareVersion = record.softwareVersion
            cores = record.cores
            memoryBytes = record.memoryBytes
            datasets = record.datasets
            connected = record.connected
            revoked = record.revoked
            health = record.health(at: now)
            let state: String
            var until: Date?
            switch record.breaker.current(at: now.timeIntervalSince1970) {
            case .closed: state = "closed"
            case .probation: state = "probation"
            case .open(let seconds):
                state = "open"
                until = Date(timeIntervalSince1970: seconds)
            }
            breaker = Breaker(
                state: state, benchedUntil: until, consecutiveFailures: record.breaker.consecutiveFailures,
                trips: record.breaker.trips)
            recent = record.recent
        }
    }

    // MARK: Experiments

    /// `tessera experiments list [--status S]`, oldest first.
    public static func listExperiments(in state: CoordinatorState, status: String? = nil) throws(StateError) -> String {
        var filter: ExperimentStatus?
        if let status {
            guard let parsed = ExperimentStatus(rawValue: status.lowercased()) else {
                throw StateError(
                    .notFound,
                    "'\(status)' is not an experiment status: use one of "
                        + ExperimentStatus.allCases.map(\.rawValue).joined(separator: ", "))
            }
            filter = parsed
        }
        let experiments = try state.experiments(status: filter)
        guard !experiments.isEmpty else {
            return filter.map { "no \($0) experiments" } ?? "no experiments have been submitted"
        }
        var rows: [[String]] = []
        for experiment in experiments {
            let done = try state.roundsFinished(of: experiment.id)
            rows.append([
                String(experiment.id), experiment.name, experiment.status.rawValue,
                "\(done)/\(experiment.roundsPlanned)", "\(experiment.versionMajor).\(experiment.versionMinor).x",
                experiment.submittedBy, format(experiment.submittedAt),
            ])
        }
        return table(
            ["ID", "NAME", "STATUS", "ROUNDS", "VERSIONS", "SUBMITTED BY", "SUBMITTED"], rows, rightAligned: [0, 3])
    }

    /// `tessera experiments show ID`: the record, its rounds and the versions it published
    /// (and the submitted configuration when `configuration` is set).
    public static func showExperiment(
        _ id: Int64, in state: CoordinatorState, configuration: Bool = false
    ) throws
        -> String
    {
        let checkpoint = try state.checkpoint(of: id)
        let experiment = checkpoint.experiment
        let done = try state.roundsFinished(of: id)
        var lines = [
            "experiment \(experiment.id): \(experiment.name)  (\(experiment.status))",
            "  config hash   \(experiment.configHash)",
            "  source        \(experiment.source ?? "not recorded")",
            "  architecture  \(experiment.architecture)",
            "  versions      \(experiment.name)@\(experiment.versionMajor).\(experiment.versionMinor).x",
            "  rounds        \(done) of \(experiment.roundsPlanned) done, over \(checkpoint.runs) coordinator runs",
            "  submitted     by \(experiment.submittedBy) at \(format(experiment.submittedAt))",
            "  started       \(experiment.startedAt.map(format) ?? "not yet")",
            "  finished      \(experiment.finishedAt.map(format) ?? "not yet")",
        ]
        if let message = experiment.message { lines.append("  message       \(message)") }
        lines.append("published versions (newest first)")
        lines.append(indent(modelTable(try state.models(matching: ModelQuery(experiment: id)))))
        if configuration {
            lines.append("configuration as submitted")
            lines.append(indent(experiment.configYAML.trimmingCharacters(in: .newlines)))
        }
        return lines.joined(separator: "\n")
    }

    /// `tessera experiments logs ID [--tail N]`.
    public static func experimentLogs(_ id: Int64, in state: CoordinatorState, tail: Int) throws(StateError) -> String {
        _ = try state.experiment(id)
        return try state.logs(of: id, limit: tail).map { "\(format($0.at))  \($0.line)" }.joined(separator: "\n")
    }

    /// `tessera experiments cancel ID`.
    public static func cancelExperiment(
        _ id: Int64, in state: CoordinatorState, actor: String
    ) throws(StateError)
        -> String
    {
        let record = try state.cancel(id, by: actor)
        return
            "cancelled experiment \(record.id) (\(record.name)); a running coordinator stops it at its next round boundary"
    }

    // MARK: Formatting

    /// Columns padded to their widest cell, two spaces apart, no trailing spaces.
    public static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return rightAligned.contains(column) ? padding + cell : cell + padding
            }
            var text = padded.joined(separator: "  ")
            while text.last == " " { text.removeLast() }
            return text
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// UTC, to the second (ISO 8601).
    public static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    static func number(_ value: Double?) -> String {
        value.map { String(format: "%.4f", $0) } ?? "-"
    }

    static func metricList(_ metrics: [String: Double]) -> String {
        guard !metrics.isEmpty else { return "none recorded" }
        return metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
            .joined(separator: ", ")
    }

    static func transitionLine(_ transition: StageTransition) -> String {
        "\(format(transition.at))  \(transition.from) → \(transition.to)  by \(transition.actor)"
            + reasonSuffix(transition.reason)
    }

    static func reasonSuffix(_ reason: String?) -> String {
        reason.map { ": \($0)" } ?? ""
    }

    static func breakerText(_ breaker: CircuitBreaker, now: Date) -> String {
        switch breaker.current(at: now.timeIntervalSince1970) {
        case .closed: "closed"
        case .probation: "probation"
        case .open(let until): "benched until \(format(Date(timeIntervalSince1970: until)))"
        }
    }

    /// "7 of 9 contributed", not counting rounds that failed as a whole.
    static func recentText(_ recent: [SiteRoundOutcome]) -> String {
        let judged = recent.filter { $0 != .roundFailed }
        guard !judged.isEmpty else { return "-" }
        return "\(judged.filter { $0 == .contributed }.count) of \(judged.count) contributed"
    }

    static func bytes(_ count: Int) -> String {
        String(format: "%.1f GiB", Double(count) / Double(1 << 30))
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }
}
