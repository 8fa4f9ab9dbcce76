/// The dashboard's stylesheet and script, compiled in: the dashboard works with no internet and
/// loads nothing from anywhere else. Served as files under `/assets/` so the pages need no
/// inline script or style.
enum DashboardAssets {
    static let stylesheet = """
        :root { --fg: #1b1f24; --muted: #667; --line: #d8dde3; --accent: #1f77b4; --bad: #c62828; --ok: #2e7d32; --warn: #b26a00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f6f8fa; }
        header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #24292f; color: #fff; }
        header a { color: #fff; text-decoration: none; margin-right: 1em; }
        header .brand { font-weight: 600; }
        header #connection { margin-left: auto; }
        main { padding: 1em 1.2em; max-width: 1400px; }
        section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .4em 1em 1em; margin-bottom: 1em; }
        h2 { font-size: 1.1em; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); }
        dl.live, dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1.2em; }
        dt { color: var(--muted); }
        dd { margin: 0; }
        progress { width: 16em; vertical-align: middle; }
        ol.stages { display: flex; gap: .5em; list-style: none; padding: 0; flex-wrap: wrap; }
        ol.stages li { padding: .2em .6em; border-radius: 999px; border: 1px solid var(--line); }
        ol.stages li.done { background: #e8f5e9; }
        ol.stages li.current { background: var(--accent); color: #fff; border-color: var(--accent); }
        ol.log { font-family: ui-monospace, monospace; font-size: 12px; padding-left: 1.5em; }
        .muted, .empty { color: var(--muted); }
        .health-healthy, .status-completed, .outcome-contributed { color: var(--ok); }
        .health-degraded, .status-running { color: var(--warn); }
        .health-unreachable, .health-revoked, .status-failed, .status-cancelled, .outcome-failed { color: var(--bad); }
        .recent span { margin-right: 2px; }
        td.nowrap { white-space: nowrap; }
        .charts { display: flex; flex-wrap: wrap; gap: 1em; }
        button { font: inherit; padding: .15em .6em; cursor: pointer; }
        #notice { position: fixed; bottom: 1em; right: 1em; background: #24292f; color: #fff; padding: .6em 1em; border-radius: 6px; }
        #notice[hidden] { display: none; }
        """

    /// Follows `/events` (the browser's EventSource reconnects by itself; `?stream=once` stops
    /// after the first status, for snapshots), writes each status into the live section with
    /// `textContent` (never as markup), and reloads the tables (or the experiment's curves,
    /// rounds and log) from the server-rendered page when a round completes. The operator's
    /// token is asked for on the first action and kept for the tab only.
    static let script = """
        "use strict";
        (function () {
          var completed = null;
          var deadline = null;
          function set(id, value) {
            var element = document.getElementById(id);
            if (element) { element.textContent = value; }
          }
          function show(value) { return value === null || value === undefined ? "-" : String(value); }
          function countdown() {
            if (deadline === null) { set("live-deadline", "-"); return; }
            var seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
            var when = new Date(Math.round(deadline / 1000) * 1000).toISOString().replace(".000Z", "Z");
            set("live-deadline", when + " (in " + seconds + " s)");
          }
          function render(status) {
            var live = document.getElementById("live");
            if (live) {
              live.setAttribute("data-source", "events");
              live.setAttribute("data-sequence", String(status.sequence));
            }
            var experiment = document.getElementById("live-experiment");
            if (experiment) {
              experiment.textContent = "";
              if (status.experiment_id === null || status.experiment_id === undefined) {
                experiment.textContent = "none running";
              } else {
                var link = document.createElement("a");
                link.href = "/experiments/" + encodeURIComponent(String(status.experiment_id));
                link.textContent = "#" + status.experiment_id + " " + (status.experiment_name || "");
                experiment.appendChild(link);
              }
            }
            set("live-phase", status.phase);
            var round = document.getElementById("live-round");
            if (round) {
              round.setAttribute("data-round", String(status.round || 0));
              round.textContent = status.round ? status.round + " of " + status.rounds_planned : "-";
            }
            set("live-completed", show(status.completed_rounds));
            set("live-stage", show(status.stage));
            var bar = document.getElementById("live-bar");
            if (bar) { bar.max = Math.max(1, status.asked || 1); bar.value = status.answered || 0; }
            set("live-progress", status.asked === undefined || status.asked === null ? "-" : status.answered + " of " + status.asked + " answered");
            set("live-cohort", show(status.cohort_size));
            set("live-dropouts", show(status.dropouts));
            set("live-sites", show(status.connected_sites));
            set("live-model", show(status.model_version));
            deadline = status.stage_deadline_ms === undefined || status.stage_deadline_ms === null ? null : status.stage_deadline_ms;
            countdown();
            var stages = document.getElementById("live-stages");
            if (stages) {
              stages.textContent = "";
              (status.finished_stages || []).forEach(function (stage) {
                var item = document.createElement("li");
                item.className = "done";
                item.textContent = stage.stage + " " + stage.answered + "/" + stage.asked;
                stages.appendChild(item);
              });
              if (status.stage) {
                var current = document.createElement("li");
                current.className = "current";
                current.textContent = status.stage;
                stages.appendChild(current);
              }
            }
            if (completed !== null && status.completed_rounds !== completed) { refreshSections(); }
            completed = status.completed_rounds;
          }
          // The server-rendered sections that change when a round completes, replaced by
          // those of a fresh copy of this page.
          function refreshSections() {
            var ids = document.getElementById("tables") ? ["tables"] : ["experiment", "charts", "rounds", "models", "log"];
            fetch(window.location.pathname, { credentials: "same-origin" })
              .then(function (response) { return response.text(); })
              .then(function (text) {
                var fresh = new DOMParser().parseFromString(text, "text/html");
                ids.forEach(function (id) {
                  var current = document.getElementById(id);
                  var next = fresh.getElementById(id);
                  if (current && next) { current.replaceWith(document.importNode(next, true)); }
                });
              })
              .catch(function () {});
          }
          function notice(text) {
            var box = document.getElementById("notice");
            if (!box) {
              box = document.createElement("div");
              box.id = "notice";
              document.body.appendChild(box);
            }
            box.hidden = false;
            box.textContent = text;
            window.setTimeout(function () { box.hidden = true; }, 6000);
          }
          function token() {
            var saved = window.sessionStorage.getItem("tessera-operator-token");
            if (saved) { return saved; }
            var entered = window.prompt("Operator token (the content of the coordinator's --dashboard-token-file):");
            if (entered) { window.sessionStorage.setItem("tessera-operator-token", entered.trim()); }
            return entered ? entered.trim() : null;
          }
          function act(button) {
            var path, body;
            if (button.dataset.action === "promote") {
              path = "/api/models/promote";
              body = JSON.stringify({ model: button.dataset.model, stage: button.dataset.stage });
              if (!window.confirm("Promote " + button.dataset.model + " to " + button.dataset.stage + "?")) { return; }
            } else if (button.dataset.action === "cancel") {
              path = "/api/experiments/" + encodeURIComponent(button.dataset.experiment) + "/cancel";
              body = "{}";
              if (!window.confirm("Cancel experiment #" + button.dataset.experiment + "?")) { return; }
            } else { return; }
            var secret = token();
            if (!secret) { return; }
            fetch(path, {
              method: "POST", credentials: "same-origin", body: body,
              headers: { "Content-Type": "application/json", "Authorization": "Bearer " + secret }
            }).then(function (response) {
              return response.text().then(function (text) {
                if (response.status === 401) { window.sessionStorage.removeItem("tessera-operator-token"); }
                notice(text);
                if (response.ok) { window.setTimeout(function () { window.location.reload(); }, 800); }
              });
            }).catch(function (error) { notice(String(error)); });
          }
          document.addEventListener("click", function (event) {
            var target = event.target;
            if (target instanceof HTMLElement && target.dataset.action) { act(target); }
          });
          if (window.EventSource && (document.getElementById("live") || document.getElementById("experiment"))) {
            var source = new EventSource("/events");
            source.addEventListener("open", function () { set("connection", "live"); });
            source.addEventListener("error", function () { set("connection", "reconnecting…"); });
            // `?stream=once`: render the first status and close the stream, so a page with
            // nothing left to load settles (headless snapshots wait for every fetch to end).
            var once = /[?&]stream=once(&|$)/.test(window.location.search);
            source.addEventListener("status", function (event) {
              try { render(JSON.parse(event.data)); } catch (error) { set("connection", "bad event"); }
              if (once) { source.close(); }
            });
            window.setInterval(countdown, 1000);
          }
        })();

        """
}
