"""Speed of ``benchmark compare``'s statistics at VidSTG-val scale.

    python benchmarks/compare_speed.py [--out benchmarks/results]

Scores two systems on the VidSTG-val-scale box set of datasets.py (602 videos x 200 frames):
the set's predictions, and the same with every other track's caption replaced and its boxes
moved off on a third of the frames. Then times ``compare_systems`` with 1,000 paired bootstrap
resamples and 1,000 permutations over the 602 videos, against one scorer run (what re-scoring
per resample would cost each time). Writes a Markdown table and a JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from datasets import vidstg_scale  # noqa: E402

from benchmark import chota  # noqa: E402
from benchmark.compare import compare_systems  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    gt, predictions = vidstg_scale()
    worse = []
    for p in predictions:
        q = dict(p)
        if p["track_id"] % 2:
            q["caption"] = "an object moves."
            if p["image_id"] % 3 == 0:
                q["bbox"] = [p["bbox"][0] + 200, *p["bbox"][1:]]
        worse.append(q)
    start = time.perf_counter()
    results = {"A": chota(gt, predictions, caption_metrics=("cider",), cache=None)}
    t_score = time.perf_counter() - start
    results["B"] = chota(gt, worse, caption_metrics=("cider",), cache=None)
    start = time.perf_counter()
    comparison = compare_systems(results, num_bootstrap=args.resamples, num_permutations=args.resamples)
    t_compare = time.perf_counter() - start
    row = comparison.table[comparison.table["field"] == "CHOTA"].iloc[0]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine} (python benchmarks/compare_speed.py), "
             f"{len(gt['videos'])} videos:", "",
             "| run | seconds |", "|---|---:|",
             f"| compare_systems: {args.resamples:,} paired bootstrap resamples + {args.resamples:,} permutations, "
             f"{len(comparison.table)} fields | {t_compare:.2f} |",
             f"| one scorer run (box CHOTA, CIDEr), what each resample would cost if re-scored | {t_score:.2f} |",
             "", f"CHOTA B - A = {row['diff']:+.4f}, interval [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}], "
                 f"permutation p = {row['p_perm']:.4f}."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_speed.md").write_text("\n".join(lines) + "\n")
    (out / "compare_speed.json").write_text(json.dumps(
        {"machine": machine, "videos": len(gt["videos"]), "resamples": args.resamples,
         "seconds_compare": t_compare, "seconds_one_scorer_run": t_score,
         "chota": {k: float(row[k]) for k in ("diff", "ci_low", "ci_high", "p_perm")}}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
