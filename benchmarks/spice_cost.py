"""What SPICE costs a CHOTA run, measured with the fake ``spice-1.0.jar`` the tests use.

    python benchmarks/spice_cost.py [--videos 602] [--out benchmarks/results]

SPICE itself needs Stanford CoreNLP (tens of seconds to start, then its parser per caption),
which cannot be fetched here. The fake jar (tests/data/captions/FakeSpice.java: the real
jar's entry points, a word-overlap score) stands in for it, so this measures what is ours:
how many JVMs one run starts, how many pairs it sends, and the wall time of the SPICE
plumbing (writing the batch, the JVM start, reading the scores, the cache) on the
VidSTG-val-scale box set, against the same run without SPICE. Needs a JDK (javac, jar).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from datasets import vidstg_scale  # noqa: E402

from benchmark import captions, chota  # noqa: E402
from tests.captions.fake_spice import build_fake_spice_jar, stand_in_corenlp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=602, help="videos of the VidSTG-scale set")
    parser.add_argument("--out", default="benchmarks/results", help="folder for table + JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dvoc-spice-"))
    os.environ["BENCHMARK_CACHE_DIR"] = str(work / "user-cache")
    jar = build_fake_spice_jar(work / "fake-spice")
    corenlp = stand_in_corenlp(work / "corenlp")

    runs: list[dict] = []  # one entry per SPICE JVM: pairs sent, seconds

    class CountingSpice(captions.SpiceScorer):
        """The fake jar, each score() call (one JVM) counted and timed."""

        def __init__(self, **kwargs):
            super().__init__(spice_jar=jar, use_launcher=False, **kwargs)

        def score(self, refs, cands):
            start = time.perf_counter()
            values = super().score(refs, cands)
            runs.append({"pairs": len(cands), "seconds": time.perf_counter() - start})
            return values

    captions.SpiceScorer = CountingSpice

    print(f"generating the VidSTG-scale set ({args.videos} videos) ...", flush=True)
    gt, predictions = vidstg_scale()
    keep = {v["id"] for v in gt["videos"][:args.videos]}
    gt = {**gt, "videos": gt["videos"][:args.videos],
          "images": [i for i in gt["images"] if i["video_id"] in keep],
          "annotations": [a for a in gt["annotations"] if a["video_id"] in keep]}
    predictions = [p for p in predictions if p["video_id"] in keep]
    gt_path, pred_path = work / "gt.json", work / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(predictions))

    def run(metrics: tuple[str, ...], cache: Path) -> tuple[float, dict]:
        start = time.perf_counter()
        result = chota(gt_path, pred_path, caption_metrics=metrics, cache=cache, corenlp_dir=corenlp)
        return time.perf_counter() - start, result.to_dict()

    t_without, _ = run(("cider",), work / "without.sqlite")
    t_with, values = run(("cider", "spice"), work / "with.sqlite")
    cold_runs = list(runs)
    t_cached, cached_values = run(("cider", "spice"), work / "with.sqlite")
    if cached_values["CapA-spice"] != values["CapA-spice"]:
        raise SystemExit("the cached run gives another CapA-spice")
    cached_runs = runs[len(cold_runs):]

    sent = sum(r["pairs"] for r in cold_runs)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    rows = [
        ("box CHOTA, CIDEr only", f"{t_without:.1f}", ""),
        ("box CHOTA, CIDEr + SPICE (fake jar), empty cache", f"{t_with:.1f}",
         f"{t_with - t_without:+.1f} s"),
        ("of which: the SPICE JVM runs (fake jar)", f"{sum(r['seconds'] for r in cold_runs):.1f}",
         f"{len(cold_runs)} JVM, {sent:,} pairs"),
        ("box CHOTA, CIDEr + SPICE (fake jar), cached pairs", f"{t_cached:.1f}",
         f"{len(cached_runs)} JVM"),
    ]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine}, {args.videos} videos "
             f"(python benchmarks/spice_cost.py):", "",
             "| run | seconds | SPICE |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds} | {note} |" for name, seconds, note in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spice_cost.md").write_text("\n".join(lines) + "\n")
    (out / "spice_cost.json").write_text(json.dumps(
        {"machine": machine, "videos": args.videos, "seconds_cider_only": t_without,
         "seconds_with_spice": t_with, "seconds_with_spice_cached": t_cached,
         "spice_runs_cold": cold_runs, "spice_runs_cached": cached_runs,
         "CapA-spice": values["CapA-spice"]}, indent=2))
    print("\n".join(lines))
    if len(cold_runs) != 1 or cached_runs:
        raise SystemExit(f"expected one SPICE JVM for the cold run and none cached, got "
                         f"{len(cold_runs)} and {len(cached_runs)}")


if __name__ == "__main__":
    main()
