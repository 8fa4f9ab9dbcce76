import Foundation
import TesseraFederation
import TesseraState

/// The dashboard's pages, rendered on the server. Every text that came from a site or a
/// researcher (names, datasets, reasons, log lines, metric names) goes through ``h(_:)``; the
/// page carries no inline script or style, so the Content-Security-Policy can forbid them.
enum DashboardHTML {
    /// Escapes `text` for element content and attribute values.
    static func h(_ text: some StringProtocol) -> String { escapeHTML(String(text)) }

    static func page(title: String, actionsEnabled: Bool, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(h(title)) · Tessera</title>
        <link rel="stylesheet" href="/assets/dashboard.css">
        <script src="/assets/dashboard.js" defer></script>
        </head>
        <body data-actions="\(actionsEnabled ? "on" : "off")">
        <header><a class="brand" href="/">Tessera coordinator</a>
        <nav><a href="/#live">Live round</a> <a href="/#experiments">Experiments</a> <a href="/#sites">Sites</a> <a href="/#models">Models</a></nav>
        <span id="connection" class="muted">static</span></header>
        <main>
        \(body)
        </main>
        </body>
        </html>

        """
    }

    // MARK: Overview

    static func overview(_ data: DashboardOverview) -> String {
        let body =
            live(data.live) + "<div id=\"tables\">\n"
            + experiments(data.experiments, actionsEnabled: data.actionsEnabled)
            + sites(data.sites, now: data.now) + models(data.models, actionsEnabled: data.actionsEnabled) + "</div>\n"
        return page(title: "Dashboard", actionsEnabled: data.actionsEnabled, body)
    }

    /// The live round, as rendered before the first event arrives; the script updates the
    /// elements by id from each `status` event.
    static func live(_ snapshot: LiveRoundBoard.Snapshot) -> String {
        let document = LiveStatusDocument(snapshot)
        let experiment =
            snapshot.experimentID.map { id in
                "<a href=\"/experiments/\(id)\">#\(id) \(h(snapshot.experimentName ?? ""))</a>"
            } ?? "none running"
        var round = "-"
        if let current = document.round, let planned = document.roundsPlanned {
            round = "\(current) of \(planned)"
        }
        var progress = "-"
        if let answered = document.answered, let asked = document.asked {
            progress = "\(answered) of \(asked) answered"
        }
        let stages = document.finishedStages.map { stage in
            "<li class=\"done\">\(h(stage.stage)) \(stage.answered)/\(stage.asked)</li>"
        }
        let current = document.stage.map { "<li class=\"current\">\(h($0))</li>" } ?? ""
        let barMaximum = max(1, document.asked ?? 1)
        return """
            <section id="live" data-source="page" data-sequence="\(document.sequence)">
            <h2>Live round</h2>
            <dl class="live">
            <dt>Experiment</dt><dd id="live-experiment">\(experiment)</dd>
            <dt>Phase</dt><dd id="live-phase">\(h(document.phase))</dd>
            <dt>Round</dt><dd id="live-round" data-round="\(document.round ?? 0)">\(round)</dd>
            <dt>Completed rounds</dt><dd id="live-completed">\(document.completedRounds.map(String.init) ?? "-")</dd>
            <dt>Stage</dt><dd id="live-stage">\(h(document.stage ?? "-"))</dd>
            <dt>Progress</dt><dd><progress id="live-bar" max="\(barMaximum)" value="\(document.answered ?? 0)"></progress> <span id="live-progress">\(progress)</span></dd>
            <dt>Cohort</dt><dd id="live-cohort">\(document.cohortSize.map(String.init) ?? "-")</dd>
            <dt>Dropouts</dt><dd id="live-dropouts">\(document.dropouts.map(String.init) ?? "-")</dd>
            <dt>Stage deadline</dt><dd id="live-deadline" data-deadline="\(document.stageDeadlineMs.map { String(Int64($0)) } ?? "")">\(document.stageDeadlineMs.map { timestamp(Date(timeIntervalSince1970: $0 / 1000)) } ?? "-")</dd>
            <dt>Connected sites</dt><dd id="live-sites">\(document.connectedSites.map(String.init) ?? "-")</dd>
            <dt>Model</dt><dd id="live-model">\(h(document.modelVersion ?? "-"))</dd>
            </dl>
            <ol id="live-stages" class="stages">\(stages.joined())\(current)</ol>
            </section>

            """
    }

    static func experiments(_ records: [ExperimentRecord], actionsEnabled: Bool) -> String {
        let rows = records.map { record in
            """
            <tr class="experiment" data-id="\(record.id)"><td><a href="/experiments/\(record.id)">#\(record.id)</a></td>\
            <td>\(h(record.name))</td><td class="status-\(record.status.rawValue)">\(record.status.rawValue)</td>\
            <td>\(record.roundsPlanned)</td><td>\(h(record.submittedBy))</td><td>\(timestamp(record.submittedAt))</td>\
            <td>\(record.finishedAt.map(timestamp) ?? "")</td><td>\(h(record.message ?? ""))</td></tr>
            """
        }
        return """
            <section id="experiments"><h2>Experiments</h2>
            \(table(["", "name", "status", "rounds", "submitted by", "submitted", "finished", "message"], rows, empty: "no experiment submitted yet"))
            </section>

            """
    }

    static func sites(_ sites: [SiteRecord], now: Date) -> String {
        let rows = sites.map { site in
            let health = site.health(at: now)
            let recent = site.recent.map { outcome in
                "<span class=\"outcome-\(outcome.rawValue)\" title=\"\(outcome.rawValue)\">\(symbol(outcome))</span>"
            }
            let datasets = site.datasets.map { "\(h($0.name)) (\($0.rows))" }.joined(separator: ", ")
            return """
                <tr class="site" data-site="\(h(site.site))"><td>\(h(site.site))</td>\
                <td class="health-\(health.rawValue)">\(health.rawValue)</td><td>\(breaker(site.breaker, now: now))</td>\
                <td>\(site.connected ? "yes" : "no")</td><td>\(timestamp(site.lastSeen))</td>\
                <td class="recent">\(recent.joined())</td><td>\(datasets)</td><td>\(h(site.softwareVersion))</td></tr>
                """
        }
        return """
            <section id="sites"><h2>Sites</h2>
            \(table(["site", "health", "breaker", "connected", "last seen", "recent rounds", "datasets", "software"], rows, empty: "no site has connected yet"))
            </section>

            """
    }

    static func models(_ models: [RegisteredModel], actionsEnabled: Bool) -> String {
        let rows = models.map { model in
            let reference = model.reference.description
            let parent = model.parent.map { h(ModelReference(name: model.name, version: $0).description) } ?? "initial"
            var actions = ""
            if actionsEnabled {
                actions = ModelStage.allCases.filter { model.stage.canMove(to: $0) }.map { stage in
                    """
                    <button type="button" data-action="promote" data-model="\(h(reference))" data-stage="\(stage.rawValue)">\(stage.rawValue)</button>
                    """
                }.joined(separator: " ")
            }
            return """
                <tr class="model" data-model="\(h(reference))"><td class="version nowrap">\(h(reference))</td>\
                <td class="stage-\(model.stage.rawValue)">\(model.stage.rawValue)</td><td class="nowrap">\(parent)</td>\
                <td class="nowrap"><a href="/experiments/\(model.experiment)">#\(model.experiment)</a> round \(model.round)</td>\
                <td>\(model.contributors)/\(model.cohortSize)</td><td>\(metrics(model.metrics))</td>\
                <td class="nowrap">\(timestamp(model.createdAt))</td>\(actionsEnabled ? "<td class=\"nowrap\">\(actions)</td>" : "")</tr>
                """
        }
        var headers = ["version", "stage", "parent", "from", "contributors", "metrics", "created"]
        if actionsEnabled { headers.append("promote to") }
        return """
            <section id="models"><h2>Model registry</h2>
            \(table(headers, rows, empty: "no model version registered yet"))
            </section>

            """
    }

    // MARK: Experiment

    static func experiment(_ data: DashboardExperiment) -> String {
        let record = data.checkpoint.experiment
        let records = data.checkpoint.records
        var cancel = ""
        if data.actionsEnabled && !record.status.isFinished {
            cancel =
                "<p><button type=\"button\" data-action=\"cancel\" data-experiment=\"\(record.id)\">Cancel experiment</button></p>"
        }
        let completed = records.filter { $0.status == .completed }.count
        let fields = """
            <dl class="fields">
            <dt>Status</dt><dd class="status-\(record.status.rawValue)">\(record.status.rawValue)</dd>
            <dt>Rounds</dt><dd>\(completed) completed of \(record.roundsPlanned)</dd>
            <dt>Runs</dt><dd>\(data.checkpoint.runs)</dd>
            <dt>Model</dt><dd>\(h(record.architecture)), versions \(record.versionMajor).\(record.versionMinor).x</dd>
            <dt>Submitted</dt><dd>\(timestamp(record.submittedAt)) by \(h(record.submittedBy))</dd>
            <dt>Started</dt><dd>\(record.startedAt.map(timestamp) ?? "-")</dd>
            <dt>Finished</dt><dd>\(record.finishedAt.map(timestamp) ?? "-")</dd>
            <dt>Message</dt><dd>\(h(record.message ?? "-"))</dd>
            </dl>
            """
        let rows = records.map { round in
            """
            <tr class="round"><td>\(round.round)</td><td>\(round.attempt ?? 0)</td><td>\(round.status.rawValue)</td>\
            <td>\(h(round.modelVersion ?? ""))</td><td>\(round.contributors)/\(round.cohortSize)</td><td>\(round.dropouts)</td>\
            <td>\(number(round.trainLoss))</td><td>\(number(round.evalAccuracy))</td><td>\(number(round.evalLoss))</td>\
            <td>\(number(round.seconds))</td><td>\(h(round.failureReason ?? ""))</td></tr>
            """
        }
        let log = data.log.map { entry in
            "<li><time>\(timestamp(entry.at))</time> \(h(entry.line))</li>"
        }
        let body = """
            <section id="experiment" data-id="\(record.id)"><h2>Experiment #\(record.id): \(h(record.name))</h2>
            \(fields)
            \(cancel)
            </section>
            <section id="charts"><h2>Metrics</h2>
            <div class="charts">\(charts(records).joined(separator: "\n"))</div>
            </section>
            <section id="rounds"><h2>Rounds</h2>
            \(table(["round", "attempt", "status", "model", "contributors", "dropouts", "train loss", "accuracy", "eval loss", "seconds", "failure"], Array(rows.reversed()), empty: "no round finished yet"))
            </section>
            \(models(data.models, actionsEnabled: data.actionsEnabled))
            <section id="log"><h2>Log (latest \(DashboardExperiment.logLines) lines)</h2>
            <ol class="log">\(log.joined(separator: "\n"))</ol>
            </section>

            """
        return page(title: "Experiment #\(record.id) \(record.name)", actionsEnabled: data.actionsEnabled, body)
    }

    /// The curves of the HTML report (``ResultsWriter/charts(_:)``), rendered as SVG.
    static func charts(_ records: [RoundRecord]) -> [String] {
        ResultsWriter.charts(records).map { $0.render() }
    }

    // MARK: Pieces

    static func table(_ headers: [String], _ rows: [String], empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(h(empty))</p>" }
        let head = headers.map { "<th>\(h($0))</th>" }.joined()
        return "<table><thead><tr>\(head)</tr></thead><tbody>\n\(rows.joined(separator: "\n"))\n</tbody></table>"
    }

    static func breaker(_ breaker: CircuitBreaker, now: Date) -> String {
        switch breaker.current(at: now.timeIntervalSince1970) {
        case .closed: "closed"
        case .probation: "probation"
        case .open(let until): "benched until \(timestamp(Date(timeIntervalSince1970: until)))"
        }
    }

    static func symbol(_ outcome: SiteRoundOutcome) -> String {
        switch outcome {
        case .contributed: "●"
        case .failed: "✕"
        case .roundFailed: "○"
        }
    }

    /// `name value` pairs, names escaped (a metric name comes from a site's evaluation).
    static func metrics(_ metrics: [String: Double]) -> String {
        metrics.sorted { $0.key < $1.key }.map { "\(h($0.key)) \(number($0.value))" }.joined(separator: ", ")
    }

    static func number(_ value: Double?) -> String {
        guard let value else { return "" }
        return String(format: "%.4g", value)
    }

    static func timestamp(_ date: Date) -> String {
        date.ISO8601Format()
    }
}
