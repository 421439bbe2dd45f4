"""Peak memory of reading, validating and scoring one leaderboard submission, per MiB of JSON.

    python benchmarks/submission_memory.py [--out benchmarks/results] [--mib 64]

Each case runs in a fresh process (so that its peak resident memory is its own) and does what
``leaderboard score`` does to an upload: read and decompress it with the default limits,
parse it, validate it against the track's ground truth and score it (CIDEr only: no JVM).
Cases, each about ``--mib`` MiB of JSON, gzipped:

* box: VidSTG-like per-frame box records with captions;
* mask: LV-VIS-like per-frame records with 720x1280 compressed RLE masks;
* numbers: a worst case for parsing, within the limits: records whose extra field holds a
  long list of small floats (JSON values are what parsing costs memory for);
* record bomb: a 4 MiB .json.gz of 60 million empty records, stopped by the record limit
  while streaming (its peak is the interpreter's plus one read chunk).

Memory is traced with ``tracemalloc`` (Python objects and numpy arrays) from after the
ground truth is loaded: the peak is what one submission adds. Writes a Markdown table and a
JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

MiB = 1024 * 1024


def _write_case(kind: str, mib: float, folder: Path) -> tuple[Path, Path, str]:
    from datasets import lvvis_scale, vidstg_scale

    gt_path, pred_path = folder / f"{kind}_gt.json", folder / f"{kind}.json.gz"
    if kind == "bomb":
        gt, _ = vidstg_scale(n_videos=2, n_frames=5)
        with gzip.open(pred_path, "wb", compresslevel=9) as handle:
            handle.write(b"[")
            for _ in range(60):
                handle.write(b"{}," * 1_000_000)
            handle.write(b"{}]")
        gt_path.write_text(json.dumps(gt))
        return gt_path, pred_path, "box"
    if kind == "mask":
        gt, preds = lvvis_scale(n_videos=max(1, int(837 * mib / 77)))  # 77 MiB for all 837
        iou = "mask"
    else:
        gt, preds = vidstg_scale(n_videos=max(1, int(602 * mib / 61)))  # 61 MiB for all 602
        iou = "box"
    if kind == "numbers":
        size = len(json.dumps(preds).encode())
        filler = [0.5] * int(size / 5 / len(preds))  # "0.5, " is 5 bytes
        for record in preds:
            record["extra"] = filler
    gt_path.write_text(json.dumps(gt))
    with gzip.open(pred_path, "wt", compresslevel=1) as handle:
        json.dump(preds, handle)
    return gt_path, pred_path, iou


def _measure(gt_path: str, pred_path: str, iou: str) -> None:
    """Child process: print the traced memory before and at the peak (KiB), and the outcome."""
    import benchmark
    from benchmark.errors import InputError
    from benchmark.io import load_ground_truth
    from leaderboard.submission import read_submission
    from leaderboard.validation import load_valid_predictions

    gt = load_ground_truth(gt_path)
    tracemalloc.start()  # Python's and numpy's allocations, from here on
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        submission = read_submission(pred_path)
        json_bytes = len(submission.data)
        _, det = load_valid_predictions(submission.parse(), gt, iou=iou, source=submission.source)
        benchmark.chota(gt, det, iou=iou, caption_metrics=("cider",))
        outcome = f"scored {len(det)} detections"
    except InputError as exc:
        json_bytes, outcome = 0, f"refused: {exc.message}"
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"baseline_kib": baseline / 1024, "peak_kib": peak / 1024,
                      "json_bytes": json_bytes, "outcome": outcome}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--mib", type=float, default=64.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("box", "mask", "numbers", "bomb"):
            print(f"{kind}: writing ...", flush=True)
            gt_path, pred_path, iou = _write_case(kind, args.mib, Path(tmp))
            run = subprocess.run([sys.executable, __file__, "--child", str(gt_path),
                                  str(pred_path), iou], capture_output=True, text=True, check=True)
            got = json.loads(run.stdout.strip().splitlines()[-1])
            extra_mib = (got["peak_kib"] - got["baseline_kib"]) / 1024
            json_mib = got["json_bytes"] / MiB
            rows.append({"case": kind, "gz_mib": round(pred_path.stat().st_size / MiB, 2),
                         "json_mib": round(json_mib, 1), "peak_above_baseline_mib": round(extra_mib),
                         "per_json_mib": round(extra_mib / json_mib, 1) if json_mib else None,
                         "outcome": got["outcome"]})
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "submission_memory.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| case | .json.gz MiB | JSON MiB | peak MiB (one submission) | per JSON MiB | outcome |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['gz_mib']} | {r['json_mib']} | {r['peak_above_baseline_mib']} "
              f"| {r['per_json_mib'] if r['per_json_mib'] is not None else '-'} | {r['outcome']} |"
              for r in rows]
    (args.out / "submission_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _measure(*sys.argv[2:5])
    else:
        main()
