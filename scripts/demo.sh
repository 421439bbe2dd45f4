#!/usr/bin/env bash
# Set up, then score the bundled sample submissions: console tables, out/demo/report.md,
# per-submission JSON / per-video CSV / alpha plots.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
.venv/bin/benchmark demo --out out/demo "$@"
