#!/usr/bin/env bash
# Regenerate the README's pictures from the bundled sample (its frames are regenerated first:
# `benchmark sample generate` with the bundle's settings gives the bundled gt.json, bit for bit).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/benchmark sample generate --out "$work/sample" --num-videos 12 --num-frames 16 --height 96 \
    --width 128 --max-objects 4 --seed 2024 --submissions fair > /dev/null
cmp "$work/sample/gt.json" benchmark/sample_data/gt.json
.venv/bin/benchmark show --gt "$work/sample/gt.json" --pred benchmark/sample_data/submissions/fair.json \
    --video video_00001 --out "$work/frames" --contact-sheet docs/images/sample_contact_sheet.png
.venv/bin/benchmark analyze --gt benchmark/sample_data/gt.json --pred benchmark/sample_data/submissions/fair.json \
    --out "$work/analysis" --caption-metrics cider meteor --cache none > /dev/null
cp "$work/analysis/worst_videos.png" docs/images/sample_analysis_worst_videos.png
