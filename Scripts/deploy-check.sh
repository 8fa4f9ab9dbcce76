#!/usr/bin/env bash
# Renders every kustomization under docs/deploy/kubernetes (each base and each overlay) with
# `kubectl kustomize` and validates the result offline with Scripts/deploy-validate.py (the
# Kubernetes schema, strict, plus Tessera's own checks), then checks that deliberately broken
# copies fail. `make deploy-check` runs it, and so does `make test`.
#
#   Scripts/deploy-check.sh
#   KUBECTL="kubectl /path/to/other/kubectl" Scripts/deploy-check.sh   # render with each
#
# `kubectl apply --dry-run=client` is not used: it asks a cluster's API server for discovery,
# and there is none here. The schema comes from the kubernetes-validate package (PyPI), which
# bundles Kubernetes' OpenAPI schemas, installed once in .build-deploy/venv.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifests=$root/docs/deploy/kubernetes
work=$root/.build-deploy
venv=$work/venv
validator=$root/Scripts/deploy-validate.py
validate_package="kubernetes-validate==1.37.0"
read -r -a kubectls <<<"${KUBECTL:-kubectl}"

say() { printf '[deploy-check] %s\n' "$*"; }
fail() {
    say "error: $*"
    exit 1
}

for k in "${kubectls[@]}"; do
    command -v "$k" >/dev/null 2>&1 \
        || fail "$k not found: run Scripts/install-deps.sh (Debian's kubernetes-client) or set KUBECTL"
done

if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
    say "installing $validate_package in $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" \
        || fail "python3 -m venv failed: install python3-venv (Scripts/install-deps.sh does)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$validate_package" \
        || fail "could not install $validate_package from PyPI"
fi
python=$venv/bin/python

# Every folder with a kustomization.yaml, but the negative tests' fixtures.
mapfile -t kustomizations < <(cd "$manifests" && find base overlays -name kustomization.yaml -printf '%h\n' | sort)
(( ${#kustomizations[@]} > 0 )) || fail "no kustomization.yaml under $manifests"

# Renders $2 (a folder under $1) with kubectl $3 into $4; deprecation warnings of newer
# kustomize (the manifests keep to what Debian 12's kubectl 1.20 renders) are dropped.
render() {
    local tree=$1 dir=$2 k=$3 out=$4 err
    err=$(mktemp)
    if ! "$k" kustomize "$tree/$dir" >"$out" 2>"$err"; then
        say "error: $k kustomize $tree/$dir failed:"
        sed 's/^/    /' "$err"
        rm -f "$err"
        return 1
    fi
    grep -v "^# Warning: '.*' is deprecated" "$err" | sed 's/^/    /' >&2 || true
    rm -f "$err"
}

rendered=()
for k in "${kubectls[@]}"; do
    version=$("$k" version --client 2>/dev/null | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -1 || true)
    say "rendering with $k ${version:-(version unknown)}"
    outdir=$work/rendered/$(basename "$k")-${version:-unknown}
    mkdir -p "$outdir"
    for dir in "${kustomizations[@]}"; do
        out=$outdir/${dir//\//_}.yaml
        render "$manifests" "$dir" "$k" "$out" || exit 1
        rendered+=("$out")
    done
done

say "validating ${#rendered[@]} renders"
(cd "$root" && "$python" "$validator" "${rendered[@]/#$root\//}") || fail "the manifests above do not validate"

# Negative tests: each breaks a copy of the tree, renders the overlay that uses it and must
# fail with the message that names the breakage.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
negatives=0

# expect_failure NAME OVERLAY FILE SED-SCRIPT EXPECTED-MESSAGE
expect_failure() {
    local name=$1 overlay=$2 file=$3 script=$4 expected=$5 tree=$scratch/$1
    cp -r "$manifests" "$tree"
    sed -i "$script" "$tree/$file"
    if cmp -s "$manifests/$file" "$tree/$file"; then
        fail "negative test $name: the edit did not change $file (update the test)"
    fi
    local k=${kubectls[0]} out=$scratch/$name.yaml log=$scratch/$name.log
    render "$tree" "$overlay" "$k" "$out" || fail "negative test $name: the broken copy does not render"
    if "$python" "$validator" "$out" >"$log" 2>&1; then
        cat "$log"
        fail "negative test $name: the validator accepted a broken copy ($file)"
    fi
    if ! grep -qF -- "$expected" "$log"; then
        cat "$log"
        fail "negative test $name: the validator failed, but not with \"$expected\""
    fi
    say "negative test $name: rejected as expected: $(grep -F -m1 -- "$expected" "$log" | sed "s|$scratch/||")"
    negatives=$((negatives + 1))
}

expect_failure probe-port overlays/coordinator-production base/coordinator/statefulset.yaml \
    '/readinessProbe:/,/port:/ s/port: http/port: metrics/' \
    "readinessProbe port 'metrics' is not a port the container declares"
expect_failure ca-key-mounted overlays/coordinator-production base/coordinator/statefulset.yaml \
    '/path: revoked.signed/a\              - key: ca-key.pem\n                path: ca-key.pem' \
    "the CA's private key never enters the cluster"
expect_failure service-selector overlays/coordinator-production base/coordinator/service-http.yaml \
    '/selector:/,/ports:/ s/component: coordinator/component: dashboard/' \
    "selects no pod template of this render"
expect_failure http-load-balancer overlays/coordinator-production overlays/coordinator-production/service-grpc-patch.yaml \
    's/name: tessera-coordinator$/name: tessera-coordinator-http/' \
    "the HTTP port (dashboard, metrics) is exposed through a LoadBalancer Service"
expect_failure schema-typo overlays/site-example base/participant/deployment.yaml \
    's/readinessProbe:/readinesProbe:/' \
    "Additional properties are not allowed ('readinesProbe' was unexpected)"
expect_failure podmonitor-port overlays/site-example base/participant/podmonitor.yaml \
    's/- port: http/- port: metrics/' \
    "podMetricsEndpoints port 'metrics' is not a port of the selected pods"
expect_failure data-writable overlays/site-example base/participant/deployment.yaml \
    '/claimName: tessera-site-data/{n;d}' \
    "volume 'data' (the site's private data) must be readOnly"

say "ok: ${#kustomizations[@]} kustomizations rendered with ${#kubectls[@]} kubectl, validated; $negatives broken copies rejected"
