#!/usr/bin/env bash
# Create .venv and install the package. Usage: scripts/setup.sh [core|all]
#   core: the metrics, converters, CLI (numpy, scipy, pycocotools, pycocoevalcap, ...)
#   all:  plus the reference model (torch), VLM captioning, leaderboard and test tools
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-core}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$what" = "all" ]; then
    # Pinned first: an unpinned torch resolves to a CUDA build of several GB.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[all,test]"
else
    .venv/bin/python -m pip install -q -e .
fi
