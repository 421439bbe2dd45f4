"""Bounded fuzzing of both tracks' submissions (box and mask): a few hundred seeded
mutations of a real submission, each validated as the leaderboard does and scored as
``benchmark.chota`` does. Nothing may raise but the package's own errors, nothing may run
longer than a few seconds, and what the leaderboard validates the scorer must score."""

from __future__ import annotations

import copy
import json
import random
import reprlib
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import benchmark
from benchmark.errors import BenchmarkError
from benchmark.io import load_ground_truth
from leaderboard.validation import load_valid_predictions

DATA = Path(__file__).resolve().parents[1] / "data" / "leaderboard"
SLOW = 5.0  # seconds; the unmutated submission scores in a few hundredths

VALUES = [
    None, True, False, 0, -1, 1, 0.5, -0.0, 2**63, -(2**63) - 1, 10**400, 1e300, -1e300,
    float("nan"), float("inf"), "", "x", "\ud800", "12", "a" * 5000, [], {}, [1, 2, 3],
    [1, 2, 3, 4], [0, 0, 1e9, 1e9], [float("nan")] * 4, [[0, 0, 5, 0, 5, 5]], {"size": [96, 128]},
    {"size": [96, 128], "counts": "0TS<"}, {"size": [96, 128], "counts": "!!!!~~~~"},
    {"size": [96, 128], "counts": [12288]}, {"size": [96, 128], "counts": [1, 2]},
    {"size": [2**40, 2], "counts": "1"}, {"size": [-1, 5], "counts": "1"},
    {"size": [96, 128], "counts": 7}, {"size": ["96", 128], "counts": "1"},
]
FIELDS = ["image_id", "video_id", "track_id", "category_id", "caption", "score", "bbox",
          "segmentation", "extra"]


def _deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _mutate_counts(counts: str, rng: random.Random) -> str:
    chars = list(counts)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(chars) + 1)
        op = rng.randrange(3)
        if op == 0 and chars:
            chars[min(pos, len(chars) - 1)] = chr(rng.randrange(32, 127))
        elif op == 1:
            chars.insert(pos, chr(rng.randrange(48, 112)))
        elif chars:
            del chars[min(pos, len(chars) - 1)]
    return "".join(chars)


def _mutate(preds: list, rng: random.Random):
    preds = copy.deepcopy(preds)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(preds))
        record = preds[i]
        op = rng.randrange(9)
        if op == 0 and isinstance(record, dict):
            record[rng.choice(FIELDS)] = copy.deepcopy(rng.choice(VALUES))
        elif op == 1 and isinstance(record, dict):
            record.pop(rng.choice(FIELDS), None)
        elif op == 2:
            preds.append(copy.deepcopy(record))  # a duplicate
        elif op == 3:
            preds[i] = copy.deepcopy(rng.choice(VALUES))
        elif op == 4 and isinstance(record, dict) and isinstance(record.get("segmentation"), dict) \
                and isinstance(record["segmentation"].get("counts"), str):
            record["segmentation"]["counts"] = _mutate_counts(record["segmentation"]["counts"], rng)
        elif op == 5 and isinstance(record, dict) and isinstance(record.get("bbox"), list) \
                and record["bbox"]:
            record["bbox"][rng.randrange(len(record["bbox"]))] = copy.deepcopy(rng.choice(VALUES))
        elif op == 6 and isinstance(record, dict):
            record[rng.choice(FIELDS)] = _deep(rng.choice([50, 200]))
        elif op == 7 and isinstance(record, dict):
            record["image_id"] = rng.choice([18, 19, 20, 99999, 2**62])  # other or unknown frames
        elif op == 8 and isinstance(record, dict):
            record["score"] = rng.choice([0.5, 0.50001, 0.0, 1.0, 0.2])  # around the threshold
    if rng.random() < 0.1:
        return {"annotations": preds}
    if rng.random() < 0.02:
        return rng.choice([[], {}, "x", None, 3, {"images": []}])
    return preds


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_mutated_submissions_fail_cleanly_and_quickly(iou):
    gt_json = json.loads((DATA / "gt.json").read_text())
    gt = load_ground_truth(gt_json)
    original = json.loads((DATA / "pred.json").read_text())
    rng = random.Random(f"fuzz-{iou}")
    outcomes = {"valid": 0, "refused": 0}
    for trial in range(400):
        preds = _mutate(original, rng)
        label = f"trial {trial}: {reprlib.repr(preds)}"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, det = load_valid_predictions(preds, gt, iou=iou, source="sub.json")
                valid = True
            except BenchmarkError:
                valid = False
            try:
                result = benchmark.chota(gt, preds, iou=iou, caption_metrics=("cider",))
                scored = True
            except BenchmarkError:
                scored = False
        elapsed = time.perf_counter() - start
        assert elapsed < SLOW, f"{label} took {elapsed:.1f}s"
        # What the leaderboard validates, the scorer scores (it is the laxer of the two).
        assert scored or not valid, label
        if scored:
            assert np.isfinite(result.to_dict()["CHOTA"]), label
        outcomes["valid" if valid else "refused"] += 1
    assert outcomes["valid"] > 40 and outcomes["refused"] > 150, outcomes
