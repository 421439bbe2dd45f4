"""The zero-shot CLIP class head trained as the official code trains it, next to the linear
head, on the same data: does it train, and what does it cost?

    python benchmarks/zero_shot_tiny.py [--out benchmarks/results] [--steps 3000]

Both runs are ``tiny`` on ``synthetic:num_videos=1024,seed=0`` (the README's single-size
run), trained side by side (one CPU thread each). The zero-shot run reads CLIP image features
and class-name embeddings from a tiny random CLIP (``reference_model.tiny_clip``; the real
openai/clip-vit-base-patch32 cannot be downloaded here), made with the package's own commands
(``extract-clip-features``, ``train --zero-shot --clip-model``). Each model then predicts the
32 validation videos of seed 1, scored with CHOTA (CIDEr + METEOR, box and mask IoU), plus the
label accuracy of the detections: the share of predicted boxes matched to a ground-truth box
of their frame (IoU >= 0.5, greedily by score) whose category is the ground truth's. CHOTA
does not read categories; label accuracy shows whether the class head learned.

Writes a Markdown table and a JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

TRAIN = "synthetic:num_videos=1024,seed=0"
VALIDATION = dict(num_videos=32, seed=1)


def label_accuracy(gt: dict, predictions: list[dict], *, threshold: float = 0.5) -> tuple[float, int]:
    """(share of matched predictions with the right category, matched predictions).

    Example:
        >>> gt = {"annotations": [{"image_id": 1, "bbox": [0, 0, 10, 10], "category_id": 3}]}
        >>> label_accuracy(gt, [{"image_id": 1, "bbox": [0, 0, 10, 9], "category_id": 3, "score": 0.9},
        ...                     {"image_id": 1, "bbox": [1, 0, 10, 10], "category_id": 4, "score": 0.8}])
        (1.0, 1)
    """
    truth = defaultdict(list)
    for ann in gt["annotations"]:
        truth[ann["image_id"]].append(ann)
    by_image = defaultdict(list)
    for pred in predictions:
        by_image[pred["image_id"]].append(pred)
    right = matched = 0
    for image, preds in by_image.items():
        free = list(truth.get(image, []))
        for pred in sorted(preds, key=lambda p: -p["score"]):
            ious = [_iou(pred["bbox"], ann["bbox"]) for ann in free]
            if ious and max(ious) >= threshold:
                ann = free.pop(int(np.argmax(ious)))
                matched += 1
                right += ann["category_id"] == pred["category_id"]
    return (right / matched if matched else float("nan")), matched


def _iou(a: list[float], b: list[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax1, bx1) - max(a[0], b[0])) * max(0.0, min(ay1, by1) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reference_model", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    from benchmark import chota
    from benchmark.synthetic import generate
    from reference_model.tiny_clip import save_tiny_clip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = save_tiny_clip(tmp / "clip")
        generate(**VALIDATION).save(tmp / "val")
        for split, data in (("train", TRAIN), ("val", str(tmp / "val"))):
            subprocess.run(_command("extract-clip-features", "--data", data, "--clip-model", str(clip),
                                    "--out", str(tmp / f"{split}_features.pt")), check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs = {
            "linear": ["--config", "tiny"],
            "zero-shot": ["--config", "tiny", "--zero-shot", "--clip-features", str(tmp / "train_features.pt"),
                          "--clip-model", str(clip)],
        }
        started = time.perf_counter()
        # Each run's progress goes to a file: a pipe nobody reads would stall a run once full.
        logs = {name: open(tmp / f"{name}.log", "w") for name in runs}
        jobs = {name: subprocess.Popen(_command("train", *flags, "--data", TRAIN, "--steps", str(args.steps),
                                                "--out", str(tmp / name)),
                                       env=env, stdout=logs[name], stderr=subprocess.STDOUT)
                for name, flags in runs.items()}
        minutes = {}
        while len(minutes) < len(jobs):
            for name, job in jobs.items():
                if name not in minutes and job.poll() is not None:
                    minutes[name] = (time.perf_counter() - started) / 60
                    logs[name].close()
                    if job.returncode:
                        tail = (tmp / f"{name}.log").read_text()[-2000:]
                        raise SystemExit(f"{name} training failed:\n{tail}")
            time.sleep(1)
        gt = json.loads((tmp / "val" / "gt.json").read_text())
        rows = []
        for name in runs:
            preds = tmp / f"{name}.json"
            extra = ["--clip-features", str(tmp / "val_features.pt")] if name == "zero-shot" else []
            subprocess.run(_command("predict", "--checkpoint", str(tmp / name / "checkpoint.pt"), "--data",
                                    str(tmp / "val"), "--out", str(preds), *extra), check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            records = json.loads(preds.read_text())
            accuracy, matched = label_accuracy(gt, records)
            row = {"head": name, "train_minutes": round(minutes[name], 1), "label_accuracy": round(accuracy, 3),
                   "matched": matched}
            for iou in ("box", "mask"):
                result = chota(tmp / "val" / "gt.json", preds, iou=iou, caption_metrics=("cider", "meteor"))
                row[f"CHOTA_{iou}"] = round(result.to_dict()["CHOTA"], 3)
                row[f"DetA_{iou}"] = round(result.to_dict()["DetA"], 3)
            rows.append(row)
    lines = ["| head | CHOTA box | CHOTA mask | DetA box | DetA mask | label accuracy (matched) | training |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['head']} | {r['CHOTA_box']:.3f} | {r['CHOTA_mask']:.3f} | {r['DetA_box']:.3f} | "
              f"{r['DetA_mask']:.3f} | {r['label_accuracy']:.3f} ({r['matched']}) | {r['train_minutes']} min |"
              for r in rows]
    table = "\n".join(lines)
    print(table)
    report = {"steps": args.steps, "train": TRAIN, "validation": VALIDATION, "machine": platform.processor()
              or platform.machine(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "rows": rows}
    (out / "zero_shot_tiny.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "zero_shot_tiny.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
