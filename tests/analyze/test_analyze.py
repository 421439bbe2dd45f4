"""`benchmark analyze`: each error type on a hand-made video, and the counts adding up to the
scorer's on every golden case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.analyze import analyze
from benchmark.cli import main

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
CAR, DOG = [10, 10, 40, 30], [100, 10, 40, 30]


def hand_made():
    """One 6-frame video: a car (track 1) on every frame, a dog (track 2) on frames 0-3."""
    images = [{"id": f, "video_id": 1, "frame_index": f} for f in range(6)]
    anns = [{"id": f, "image_id": f, "track_id": 1, "category_id": 1, "bbox": CAR, "caption": "a red car drives"}
            for f in range(6)]
    anns += [{"id": 10 + f, "image_id": f, "track_id": 2, "category_id": 1, "bbox": DOG, "caption": "a dog runs"}
             for f in range(4)]
    gt = {"videos": [{"id": 1, "height": 100, "width": 200}], "images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "thing"}]}

    def det(f, track, box, caption):
        return {"image_id": f, "track_id": track, "category_id": 1, "score": 0.9, "bbox": box, "caption": caption}

    pred = [det(f, 10, CAR, "a red car drives") for f in (0, 1, 2)]        # the car, then lost on frame 3
    pred += [det(f, 11, CAR, "a car") for f in (4, 5)]                       # ... found again by another track
    pred += [det(f, 12, DOG, "a dog runs") for f in (0, 1)]                   # the dog, half of its frames
    pred += [det(f, 13, [150, 60, 20, 20], "a bird flies") for f in (0, 1, 2)]  # nothing there
    return gt, pred


def test_each_error_type_on_a_hand_made_video():
    gt, pred = hand_made()
    a = analyze(gt, pred, caption_metrics=("cider",), cache=None)
    objects = a.per_object.set_index("gt_track")
    assert objects.loc[1, ["frames", "matched_frames", "missed_frames", "id_switches", "fragments"]].tolist() == \
        [6, 5, 1, 1, 1]
    assert objects.loc[1, "pred_tracks"] == [10, 11]
    assert objects.loc[2, ["frames", "matched_frames", "missed_frames", "id_switches", "fragments"]].tolist() == \
        [4, 2, 2, 0, 0]
    tracks = a.per_track.set_index("pred_track")
    assert tracks["true_positives"].to_dict() == {10: 3, 11: 2, 12: 2, 13: 0}
    assert tracks["false_positives"].to_dict() == {10: 0, 11: 0, 12: 0, 13: 3}
    assert tracks["false_positive_track"].to_dict() == {10: False, 11: False, 12: False, 13: True}
    assert tracks.loc[11, "gt_tracks"] == [1] and tracks.loc[13, "gt_tracks"] == []
    pairs = a.pairs.set_index("pred_track")
    assert pairs["frames"].to_dict() == {10: 3, 11: 2, 12: 2}
    assert pairs.loc[11, ["gt_caption", "pred_caption"]].tolist() == ["a red car drives", "a car"]
    assert a.overall["true_positives"] == 7 and a.overall["false_negatives"] == 3
    assert a.overall["false_positives"] == 3 and a.overall["false_positive_tracks"] == 1
    assert a.overall["id_switches"] == 1 and a.overall["fragments"] == 1
    # The what-ifs: DetA or AssA at 1 in the cube root; perfect captions score the references.
    det_a, ass_a, cap_a = (a.overall[k] for k in ("DetA", "AssA", "CapA"))
    assert a.overall["CHOTA if DetA perfect"] == pytest.approx(np.cbrt(ass_a * cap_a))
    assert a.overall["CHOTA if AssA perfect"] == pytest.approx(np.cbrt(det_a * cap_a))
    assert a.overall["CapA if captions perfect"] >= cap_a
    assert a.per_video["CHOTA"].tolist() == pytest.approx([a.result["CHOTA"]])


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
@pytest.mark.parametrize("iou", ["box", "mask"])
def test_the_counts_add_up_to_the_scorers_on_the_golden_cases(case, iou):
    a = analyze(GOLDEN / case / "gt.json", GOLDEN / case / "pred.json", iou=iou, caption_metrics=("cider",),
                cache=None)
    stats = {k: v.sum() for k, v in a.result.video_stats.items()}
    assert a.overall["true_positives"] == stats["HOTA_TP"]
    assert a.overall["false_negatives"] == stats["HOTA_FN"]
    assert a.overall["false_positives"] == stats["HOTA_FP"]
    assert a.pairs["frames"].sum() == stats["TP_with_caps"]
    assert (a.pairs["CIDER"] * a.pairs["frames"]).sum() == pytest.approx(stats["sum-cider"], rel=1e-12, abs=1e-12)
    # ... which are the reference scorer's.
    expected = json.loads((GOLDEN / case / "expected.json").read_text())[f"{iou}/alpha0.5"]
    assert [a.overall[k] for k in ("true_positives", "false_negatives", "false_positives")] == \
        [expected[k] for k in ("HOTA_TP", "HOTA_FN", "HOTA_FP")]
    assert a.pairs["frames"].sum() == expected["TP_with_caps"]


def test_the_command_writes_the_report(tmp_path, capsys):
    gt, pred = hand_made()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    out = tmp_path / "analysis"
    assert main(["analyze", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--out", str(out), "--caption-metrics", "cider", "--cache", "none"]) == 0
    assert {p.name for p in out.iterdir()} == {"analysis.html", "analysis.json", "per_object.csv", "per_track.csv",
                                              "pairs.csv", "per_video.csv", "worst_videos.png", "caption_scores.png"}
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["overall"]["fragments"] == 1 and len(doc["per_object"]) == 2
    page = (out / "analysis.html").read_text()
    assert "Worst captions" in page and "a car" in page and 'src="worst_videos.png"' in page
    assert "id_switches" in capsys.readouterr().out
    assert main(["analyze", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--out", str(out), "--alphas", "hota"]) == 2
