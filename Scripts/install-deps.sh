#!/usr/bin/env bash
# Installs the system packages Tessera needs, and only those that are missing.
#
#   Scripts/install-deps.sh            build and test dependencies (with kubectl and python3-venv
#                                      for `make deploy-check`)
#   Scripts/install-deps.sh --bench    also numpy, for the benchmark's reference
#
# Runs apt-get directly as root, through sudo otherwise, and stops with a clear message
# when neither is possible. Safe to run again: it does nothing when everything is present.
set -euo pipefail

packages=(libopenblas-dev libsodium-dev libssl-dev libsqlite3-dev pkg-config python3 python3-venv)
want_numpy=0
[[ "${1:-}" == "--bench" ]] && want_numpy=1

say() { printf '[deps] %s\n' "$*"; }

if ! command -v swift >/dev/null 2>&1; then
    say "error: the Swift toolchain (swift 6.x) is not on PATH."
    say "       Install Swift from swift.org (or add /opt/swift/usr/bin to PATH) and retry."
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# `make deploy-check` renders the Kubernetes manifests with `kubectl kustomize`. Debian's
# kubectl is in kubernetes-client; a kubectl already on PATH (another package, a newer release)
# is used as it is rather than replaced.
if ! command -v kubectl >/dev/null 2>&1; then
    missing+=(kubernetes-client)
fi

if (( want_numpy )) && ! python3 -c 'import numpy' >/dev/null 2>&1; then
    if python3 -m pip --version >/dev/null 2>&1; then
        say "installing numpy with pip (benchmark reference)"
        python3 -m pip install --quiet numpy || missing+=(python3-numpy)
    else
        missing+=(python3-numpy)
    fi
fi

# Optional: Chromium runs the dashboard's browser test (Scripts/dashboard-browser-test.sh), which
# is skipped with a message when it is absent. A failure to install it fails nothing.
want_chromium=0
command -v chromium >/dev/null 2>&1 || want_chromium=1

if (( ${#missing[@]} == 0 && want_chromium == 0 )); then
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run=(sudo)
elif (( ${#missing[@]} == 0 )); then
    say "chromium is not installed and installing it needs root: the dashboard's browser test will be skipped"
    exit 0
else
    say "error: missing system packages: ${missing[*]}"
    say "       Installing them needs root. Run as root, set up sudo, or install them yourself:"
    say "       apt-get install ${missing[*]}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
if (( ${#missing[@]} > 0 )); then
    say "installing: ${missing[*]}"
    "${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if (( want_chromium )); then
    say "installing: chromium (for the dashboard's browser test)"
    "${run[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
        say "could not install chromium: the dashboard's browser test will be skipped"
fi
say "done"
