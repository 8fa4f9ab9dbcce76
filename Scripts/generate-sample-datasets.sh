#!/usr/bin/env bash
# Regenerates the committed sample data under Datasets-sample/ from the generators in
# TesseraData (SampleDatasets.writeQuickstartSites), with the seed the committed files use.
#
# The test SampleDatasetsTests.committedQuickstartFilesAreCurrent fails whenever the files
# and the generator disagree; run this script and commit the result.
#
# Usage: Scripts/generate-sample-datasets.sh [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."

seed=2017
if [[ "${1:-}" == "--seed" && -n "${2:-}" ]]; then
    seed="$2"
fi

if ! swift run tessera datasets generate-samples --help >/dev/null 2>&1; then
    echo "error: this build of 'tessera' has no 'datasets generate-samples' subcommand yet;" >&2
    echo "       it should call SampleDatasets.writeQuickstartSites(to:seed:) from TesseraData." >&2
    exit 1
fi

swift run tessera datasets generate-samples --out Datasets-sample --seed "$seed"
git status --short Datasets-sample
