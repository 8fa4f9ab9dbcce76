#!/usr/bin/env bash
# The dashboard in a real browser: a throwaway PKI, a coordinator with --http and three sites on
# loopback (the debug binaries `make test` built), then headless Chromium loads the dashboard
# twice and the DOM must show rounds advancing, the sites and a model version. It saves
# results/dashboard.png.
#
#   Scripts/dashboard-browser-test.sh            (run by `make test` after the Swift tests)
#
# Skipped, with exit status 0, when Chromium is not installed (Scripts/install-deps.sh installs
# Debian's `chromium` when it can). Everything it starts is stopped on exit; it fails after
# DASHBOARD_TEST_SECONDS (120) at most.
set -euo pipefail

say() { printf '[dashboard-browser-test] %s\n' "$*"; }
fail() {
    say "FAIL: $*"
    exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/debug"
limit=${DASHBOARD_TEST_SECONDS:-120}

browser=""
for candidate in chromium chromium-browser; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser=$(command -v "$candidate")
        break
    fi
done
if [[ -z "$browser" ]]; then
    say "SKIP: Chromium is not installed (apt-get install chromium, or Scripts/install-deps.sh as root)"
    exit 0
fi
for tool in tessera tessera-coordinator tessera-participant; do
    [[ -x "$bin/$tool" ]] || fail "$bin/$tool is missing: run 'swift build' first"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-dashboard.XXXXXX")
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((status != 0)); then
        for log in "$work"/*.log; do
            [[ -f "$log" ]] || continue
            say "--- last lines of $(basename "$log")"
            tail -n 15 "$log" || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

check_time() { ((SECONDS < limit)) || fail "gave up after $limit s: $*"; }

# 1. A throwaway federation: CA, coordinator, three sites, and the operator token.
"$bin/tessera" pki init --out "$work/fed" >"$work/pki.log" 2>&1
"$bin/tessera" pki issue --ca "$work/fed/ca-private" --coordinator --host 127.0.0.1 --out "$work/fed/coordinator" \
    >>"$work/pki.log" 2>&1
sites=(site-1 site-2 site-3)
for site in "${sites[@]}"; do
    "$bin/tessera" pki issue --ca "$work/fed/ca-private" --site "$site" --out "$work/fed/$site" >>"$work/pki.log" 2>&1
done
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
chmod 600 "$work/token"

data="$root/Datasets-sample/clinical-risk"
cat >"$work/experiment.yaml" <<YAML
name: dashboard-demo
seed: 7
rounds: 1000
participants: 3
model: {preset: logistic_regression, inputs: 11, classes: 2}
dataset:
  kind: clinical_risk
  paths: [$data/site-1.csv, $data/site-2.csv, $data/site-3.csv]
  test_fraction: 0.2
  standardise: true
partitioning: {scheme: natural}
cohort: {fraction: 1.0, minimum: 3}
strategy: {name: fedavg}
local_training: {epochs: 1, batch_size: 32, optimizer: sgd, learning_rate: 0.05}
secure_aggregation: {enabled: true, neighbourhood: complete}
evaluation: {every: 1}
on_round_failure: continue
YAML

# 2. The coordinator, with the HTTP port on a free port.
"$bin/tessera-coordinator" --experiment "$work/experiment.yaml" --listen 127.0.0.1:0 \
    --tls-dir "$work/fed/coordinator" --trust "$work/fed/trust" --state "$work/state" --results "$work/results" \
    --http 127.0.0.1:0 --dashboard-token-file "$work/token" >"$work/coordinator.out" 2>"$work/coordinator.log" &
pids+=($!)

port_after() {
    sed -n "s/^$1\([0-9][0-9]*\)\$/\1/p" "$work/coordinator.out" | head -n 1
}
grpc=""
http=""
while [[ -z "$grpc" || -z "$http" ]]; do
    check_time "the coordinator did not report its ports"
    kill -0 "${pids[0]}" 2>/dev/null || fail "the coordinator exited"
    grpc=$(port_after "listening on port ")
    http=$(port_after "HTTP listening on port ")
    sleep 0.2
done
url="http://127.0.0.1:$http"
say "coordinator: gRPC on $grpc, dashboard on $url"

# 3. Three sites.
for index in 1 2 3; do
    site="site-$index"
    cat >"$work/$site.yaml" <<YAML
coordinator: 127.0.0.1:$grpc
identity: fed/$site
datasets:
  dashboard-demo:
    path: $data/$site.csv
    label_column: readmitted_30d
    test_fraction: 0.2
    standardise: true
YAML
    # site-1 also opens its HTTP port, for its probes.
    http_flag=()
    [[ $index == 1 ]] && http_flag=(--http 127.0.0.1:0)
    "$bin/tessera-participant" --config "$work/$site.yaml" "${http_flag[@]}" >"$work/$site.out" 2>"$work/$site.log" &
    pids+=($!)
done

# The live status, as JSON: one field of /api/status.
status_field() {
    curl -fsS --max-time 5 "$url/api/status" 2>/dev/null |
        python3 -c "import json, sys; print(json.load(sys.stdin).get('$1') or 0)" 2>/dev/null || echo 0
}
wait_for_completed() {
    while (($(status_field completed_rounds) < $1)); do
        check_time "fewer than $1 rounds completed"
        sleep 0.3
    done
}

# Headless Chromium's DOM of the dashboard once its script has rendered the first status of the
# event stream. `?stream=once` makes the page close the stream after that status: virtual time
# (--virtual-time-budget) waits for every fetch to end, and an open stream never does.
dump() {
    timeout 60 "$browser" --headless=new --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage \
        --user-data-dir="$work/chromium" --virtual-time-budget=5000 --dump-dom "$url/?stream=once" \
        2>>"$work/chromium.log"
}
live_marker='<span id="connection" class="muted">live</span>'
# The text or attribute of the first element matching a pattern in a DOM dump.
extract() {
    python3 -c "import re, sys; m = re.search(sys.argv[1], sys.stdin.read()); print(m.group(1) if m else '')" "$1"
}

wait_for_completed 1
first=$(dump) || fail "Chromium could not load $url/"
first_round=$(extract 'id="live-round" data-round="([0-9]+)"' <<<"$first")
first_completed=$(extract 'id="live-completed">([0-9]+)<' <<<"$first")
say "first look: round ${first_round:-?}, ${first_completed:-?} completed"
[[ -n "$first_completed" ]] || fail "the first DOM has no completed-rounds count"

wait_for_completed $((first_completed + 2))
second=$(dump) || fail "Chromium could not load $url/ again"
second_round=$(extract 'id="live-round" data-round="([0-9]+)"' <<<"$second")
second_completed=$(extract 'id="live-completed">([0-9]+)<' <<<"$second")
say "second look: round ${second_round:-?}, ${second_completed:-?} completed"
mkdir -p "$root/results"
printf '%s' "$second" >"$root/results/dashboard-dom.html"

# 4. What the DOM must show.
((second_completed > first_completed)) || fail "rounds did not advance ($first_completed, then $second_completed)"
((second_round > first_round)) || fail "the round did not advance ($first_round, then $second_round)"
for site in "${sites[@]}"; do
    grep -q "<tr class=\"site\" data-site=\"$site\">" <<<"$second" || fail "$site is not listed"
done
grep -q '<tr class="model" data-model="dashboard-demo@1\.0\.[0-9]*">' <<<"$second" ||
    fail "no model version of dashboard-demo is listed"
# The script ran and the event stream delivered: it writes "live" into the header when the stream
# opens, and marks the live section when it renders a status from the stream.
grep -q "$live_marker" <<<"$second" ||
    fail "the event stream did not connect (the header does not say live)"
grep -q '<section id="live" data-source="events"' <<<"$second" ||
    fail "the live section was not rendered from the event stream"
grep -q 'data-action="promote"' <<<"$second" || fail "no promote button although a token file was given"

# The probes and /metrics of both programs.
[[ $(curl -fsS --max-time 5 "$url/healthz") == ok ]] || fail "the coordinator's /healthz is not ok"
curl -fsS --max-time 5 "$url/readyz" >/dev/null || fail "the coordinator is not ready while an experiment runs"
content_type=$(curl -fsS --max-time 5 -o /dev/null -w '%{content_type}' "$url/metrics")
[[ $content_type == "text/plain; version=0.0.4; charset=utf-8" ]] || fail "/metrics has content type $content_type"
site_http=$(sed -n 's/^HTTP listening on port \([0-9][0-9]*\)$/\1/p' "$work/site-1.out" | head -n 1)
[[ -n "$site_http" ]] || fail "site-1 did not report its HTTP port"
curl -fsS --max-time 5 "http://127.0.0.1:$site_http/readyz" >/dev/null ||
    fail "site-1 is not ready although its session is established"

# 5. A screenshot for the README.
timeout 60 "$browser" --headless=new --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1280,900 --virtual-time-budget=5000 \
    --screenshot="$root/results/dashboard.png" "$url/?stream=once" 2>>"$work/chromium.log" ||
    fail "Chromium could not take the screenshot"
[[ -s "$root/results/dashboard.png" ]] || fail "the screenshot is empty"
say "PASS: rounds advanced ($first_completed → $second_completed completed), ${#sites[@]} sites and model versions listed; screenshot results/dashboard.png (${SECONDS} s)"
