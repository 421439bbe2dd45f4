#!/usr/bin/env bash
# Set up everything and run the test suite (long runs are marked slow: `pytest -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
# System tools some tests drive for real: Java (METEOR), Chromium (leaderboard page),
# PostgreSQL (leaderboard store). Without them those tests skip with a reason.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    need=()
    command -v java >/dev/null || need+=(default-jre-headless)
    command -v chromium >/dev/null || need+=(chromium)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
    if [ ${#need[@]} -gt 0 ]; then
        echo "installing ${need[*]} ..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${need[@]}" >/dev/null) \
            || echo "warning: could not install ${need[*]}; their tests will be skipped"
    fi
fi
bash scripts/setup.sh all
.venv/bin/benchmark datacard lint data_cards/*.md
.venv/bin/benchmark datacard check data_cards/sample.md benchmark/sample_data/gt.json
exec .venv/bin/python -m pytest -n 2 -q "$@"
