"""`benchmark compare`: differences equal the scorer's, permutations equal re-scoring swapped
predictions, identical systems are never significant and clearly different ones are."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark import chota
from benchmark.cli import main
from benchmark.compare import compare_systems, permutation_fields
from benchmark.errors import InputError

CAPTIONS = ["a black dog runs on the grass", "a red car parks near a house", "a woman walks in the rain"]


def make_gt(num_videos: int) -> dict:
    videos, images, anns = [], [], []
    for v in range(1, num_videos + 1):
        videos.append({"id": v, "height": 100, "width": 200})
        for f in range(4):
            images.append({"id": v * 10 + f, "video_id": v, "frame_index": f})
            for t, caption in enumerate(CAPTIONS):
                anns.append({"id": len(anns) + 1, "image_id": v * 10 + f, "video_id": v, "track_id": v * 100 + t,
                             "category_id": 1, "bbox": [10 + 60 * t, 10, 40, 30], "caption": caption})
    return {"videos": videos, "images": images, "annotations": anns, "categories": [{"id": 1, "name": "x"}]}


def predictions(gt: dict, quality: dict[int, float]) -> list[dict]:
    """Per video of quality q: the boxes of the first round(4 (1 - q)) frames moved off their
    object (IoU 0.23: a miss and a false positive), the others exact; the caption exact from
    q 0.8, half of it from 0.5, else wrong."""
    out = []
    for ann in gt["annotations"]:
        q = quality[ann["video_id"]]
        x, y, w, h = ann["bbox"]
        off = ann["image_id"] % 10 < round(4 * (1 - q))
        words = ann["caption"].split()
        caption = ann["caption"] if q >= 0.8 else " ".join(words[:len(words) // 2]) if q >= 0.5 else "a thing"
        out.append({"image_id": ann["image_id"], "track_id": ann["track_id"], "category_id": 1, "score": 0.9,
                    "bbox": [x + 25 if off else x, y, w, h], "caption": caption})
    return out


OPTS = {"caption_metrics": ("cider",), "cache": None}


def test_differences_are_the_scorers_and_permutations_equal_rescoring_swapped_videos():
    gt = make_gt(4)
    qa = {1: 1.0, 2: 0.4, 3: 0.8, 4: 0.6}
    qb = {1: 0.7, 2: 0.9, 3: 1.0, 4: 0.3}
    a, b = predictions(gt, qa), predictions(gt, qb)
    results = {"A": chota(gt, a, **OPTS), "B": chota(gt, b, **OPTS)}
    assert abs(results["A"]["CHOTA"] - results["B"]["CHOTA"]) > 0.01
    cmp = compare_systems(results, num_bootstrap=200, num_permutations=50)
    chota_row = cmp.table[cmp.table["field"] == "CHOTA"].iloc[0]
    assert chota_row["diff"] == pytest.approx(results["B"]["CHOTA"] - results["A"]["CHOTA"], abs=1e-15)
    assert chota_row["ci_low"] <= chota_row["diff"] <= chota_row["ci_high"]
    # Exchanging A and B on videos 2 and 4 is the same as scoring the swapped predictions.
    swaps = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    ids = results["A"].per_video["video_id"].tolist()
    perm_a, perm_b = permutation_fields(results["A"].video_stats, results["B"].video_stats, swaps,
                                        results["A"].caption_metrics)
    for k, row in enumerate(swaps):
        swapped = {v for v, s in zip(ids, row) if s}
        a2 = [p for p in a if p["image_id"] // 10 not in swapped] + [p for p in b if p["image_id"] // 10 in swapped]
        b2 = [p for p in b if p["image_id"] // 10 not in swapped] + [p for p in a if p["image_id"] // 10 in swapped]
        for fields, preds in ((perm_a, a2), (perm_b, b2)):
            expected = chota(gt, preds, **OPTS)
            assert k == 0 or expected["CHOTA"] != pytest.approx(chota(gt, a if preds is a2 else b, **OPTS)["CHOTA"])
            for f in ("CHOTA", "CapA", "DetA", "AssA", "HOTA"):
                assert fields[f][k] == pytest.approx(expected[f], abs=1e-12), (k, f)


def test_identical_systems_are_not_significant_and_a_clear_gap_is():
    gt = make_gt(12)
    good, bad = {v: 1.0 for v in range(1, 13)}, {v: 0.3 for v in range(1, 13)}
    same = compare_systems({"A": chota(gt, predictions(gt, good), **OPTS),
                            "B": chota(gt, predictions(gt, good), **OPTS)}, num_bootstrap=200, num_permutations=200)
    assert (same.table["diff"] == 0).all() and (same.table["p_perm"] == 1.0).all()
    assert not same.table["significant"].any()
    gap = compare_systems({"A": chota(gt, predictions(gt, bad), **OPTS),
                           "B": chota(gt, predictions(gt, good), **OPTS)}, num_bootstrap=200, num_permutations=200)
    row = gap.table[gap.table["field"] == "CHOTA"].iloc[0]
    assert row["diff"] > 0 and row["ci_low"] > 0 and row["p_perm"] < 0.01 and row["significant"]


def test_bad_comparisons_are_refused():
    gt = make_gt(3)
    one = chota(gt, predictions(gt, {1: 1.0, 2: 1.0, 3: 1.0}), **OPTS)
    with pytest.raises(InputError, match="two systems"):
        compare_systems({"A": one})
    other = chota(make_gt(2), predictions(make_gt(2), {1: 1.0, 2: 1.0}), **OPTS)
    with pytest.raises(InputError, match="other videos") as caught:
        compare_systems({"A": one, "B": other})
    assert caught.value.field == "videos"
    no_captions = chota(gt, predictions(gt, {1: 1.0, 2: 1.0, 3: 1.0}), caption_metrics=(), cache=None)
    with pytest.raises(InputError, match="other caption metrics"):
        compare_systems({"A": one, "B": no_captions})


def test_the_command_writes_the_table(tmp_path):
    gt = make_gt(5)
    files = {"gt": gt, "a": predictions(gt, {v: 0.6 for v in range(1, 6)}),
             "b": predictions(gt, {v: 1.0 for v in range(1, 6)})}
    for name, obj in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    out = tmp_path / "cmp.json"
    assert main(["compare", "--gt", str(tmp_path / "gt.json"), "--pred", f"A={tmp_path / 'a.json'}",
                 "--pred", f"B={tmp_path / 'b.json'}", "--caption-metrics", "cider", "--cache", "none",
                 "--bootstrap", "100", "--permutations", "100", "--json", str(out),
                 "--csv", str(tmp_path / "cmp.csv"), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["baseline"] == "A" and doc["settings"]["videos"] == 5
    assert {r["field"] for r in doc["comparisons"]} >= {"CHOTA", "CapA", "DetA", "AssA"}
    assert (tmp_path / "cmp.csv").read_text().startswith("system_a,system_b,field,a,b,diff")
