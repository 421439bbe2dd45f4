"""The public API: functional and stateful agree, both layouts agree, options do what they say."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import Chota, chota
from benchmark.cli import main
from benchmark.errors import InputError

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
MEDIUM = GOLDEN / "visible_medium"


def load(case="visible_medium"):
    return (json.loads((GOLDEN / case / "gt.json").read_text()),
            json.loads((GOLDEN / case / "pred.json").read_text()))


def to_per_track(gt, preds):
    """The same data in the per-track (YouTube-VIS) layout, built independently here."""
    frame_of = {im["id"]: (im["video_id"], im["frame_index"]) for im in gt["images"]}
    length = {v["id"]: sum(im["video_id"] == v["id"] for im in gt["images"]) for v in gt["videos"]}
    videos = [{"id": v["id"], "length": length[v["id"]], "height": v["height"],
               "width": v["width"]} for v in gt["videos"]]

    def tracks(records, with_score):
        out = {}
        for r in records:
            video, frame = frame_of[r["image_id"]]
            key = (video, r["track_id"])
            if key not in out:
                out[key] = {"id": len(out) + 1, "video_id": video, "caption": r["caption"],
                            "bboxes": [None] * length[video], "segmentations": [None] * length[video]}
                if with_score:
                    out[key]["score"] = r["score"]
            out[key]["bboxes"][frame] = r["bbox"]
            out[key]["segmentations"][frame] = r["segmentation"]
        return list(out.values())

    return {"videos": videos, "annotations": tracks(gt["annotations"], False)}, tracks(preds, True)


def per_track_compatible(gt, preds):
    """Keep data whose per-track form is exact: one caption and one score per track."""
    first = {}
    for r in gt["annotations"]:
        first.setdefault((r["image_id"] // 10_000, r["track_id"]), r["caption"])
    keep = []
    seen = {}
    for p in preds:
        seen.setdefault(p["track_id"], (p["score"], p["caption"]))
        p = dict(p, score=seen[p["track_id"]][0], caption=seen[p["track_id"]][1])
        keep.append(p)
    track_caption = {}
    for a in gt["annotations"]:
        track_caption.setdefault(a["track_id"], a["caption"])
        a["caption"] = track_caption[a["track_id"]]
    return gt, keep


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_per_track_layout_scores_like_per_frame(iou):
    gt, preds = per_track_compatible(*load())
    expected = chota(gt, preds, iou=iou, alphas="hota", caption_metrics=("cider",)).to_dict()
    gt_tracks, pred_tracks = to_per_track(gt, preds)
    got = chota(gt_tracks, pred_tracks, iou=iou, alphas="hota", caption_metrics=("cider",)).to_dict()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name


def test_stateful_updates_equal_the_functional_call():
    gt, preds = load()
    expected = chota(gt, preds, alphas="hota", caption_metrics=("cider",))
    metric = Chota(gt, alphas="hota", caption_metrics=("cider",))
    video_of = {im["id"]: im["video_id"] for im in gt["images"]}
    for video in sorted({video_of[p["image_id"]] for p in preds}, reverse=True):
        metric.update([p for p in preds if video_of[p["image_id"]] == video])
    got = metric.compute()
    assert got.to_dict() == pytest.approx(expected.to_dict(), rel=1e-12)
    pd.testing.assert_frame_equal(got.per_video, expected.per_video)
    with pytest.raises(InputError, match="already updated"):
        metric.update([p for p in preds if video_of[p["image_id"]] == 2])


def test_parallel_matching_equals_serial(monkeypatch):
    import benchmark.scoring as scoring

    gt, preds = load()
    serial = chota(gt, preds, alphas="hota", caption_metrics=("cider",), num_workers=1)
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_DETECTIONS", 0)
    parallel = chota(gt, preds, alphas="hota", caption_metrics=("cider",), num_workers=2)
    assert parallel.to_dict() == serial.to_dict()


def test_score_threshold_is_strict():
    gt, preds = load()
    at = [dict(p, score=0.5) for p in preds]
    assert chota(gt, at, caption_metrics=())["HOTA_TP"] == 0
    assert chota(gt, at, caption_metrics=(), score_threshold=0.4999)["HOTA_TP"] > 0


def test_videos_without_predictions_or_ground_truth():
    gt = {"videos": [{"id": 1}, {"id": 2}],
          "images": [{"id": 1, "video_id": 1}, {"id": 2, "video_id": 2}],
          "annotations": [{"image_id": 1, "track_id": 1, "bbox": [0, 0, 4, 4], "caption": "a"}]}
    preds = [{"image_id": 2, "track_id": 1, "bbox": [0, 0, 4, 4], "score": 1.0, "caption": "a"}]
    result = chota(gt, preds, caption_metrics=("cider",))
    assert (result["HOTA_TP"], result["HOTA_FN"], result["HOTA_FP"]) == (0, 1, 1)
    assert result["LocA"] == 1.0 and result["CapA-cider"] == 1.0  # the reference's conventions
    assert result.per_video["HOTA_FN"].tolist() == [1, 0]
    assert result.per_video["HOTA_FP"].tolist() == [0, 1]


def test_cider_document_frequency_rule_per_video():
    """One video, one captioned track repeated over frames: every reference is the same
    caption, so CIDEr is 0 (the reference's per-video rule); the dataset-wide variant is not."""
    images = [{"id": i, "video_id": v, "frame_index": i % 2} for v, i in
              [(1, 0), (1, 1), (2, 2), (2, 3)]]
    gt = {"images": images, "annotations": [
        {"image_id": i, "track_id": v, "bbox": [0, 0, 4, 4], "caption": c}
        for v, i, c in [(1, 0, "a big red ball"), (1, 1, "a big red ball"),
                        (2, 2, "the small blue cube"), (2, 3, "the small blue cube")]]}
    preds = [dict(a, score=1.0) for a in gt["annotations"]]
    reference = chota(gt, preds, caption_metrics=("cider",))
    # All four captioned TPs score 0: the floor gives 1e-10 / 4.
    assert reference["CapA-cider"] == pytest.approx(2.5e-11, rel=1e-9)
    dataset = chota(gt, preds, caption_metrics=("cider",), protocol="dataset-cider")
    # Over the dataset, df = 2 of N = 4 documents for every n-gram: idf = log(2), and a
    # candidate equal to its reference gets cosine 1 at each n = 1..4 (4-word captions)
    # and no length penalty: 10 x mean(1, 1, 1, 1) = 10.
    assert dataset["CapA-cider"] == pytest.approx(10.0)


def test_caption_metric_subsets_are_labelled():
    gt, preds = load()
    cider_only = chota(gt, preds, caption_metrics=("cider",))
    assert not cider_only.official
    assert cider_only["CapA"] == cider_only["CapA-cider"]
    none = chota(gt, preds, caption_metrics=())
    assert "CapA" not in none.to_dict() and "CHOTA" not in none.to_dict()
    assert none["DetA"] == cider_only["DetA"]


def test_cli_writes_table_json_csv_plot(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["score", "--gt", str(MEDIUM / "gt.json"), "--pred", str(MEDIUM / "pred.json"),
                 "--caption-metrics", "cider", "--alphas", "hota", "--quiet",
                 "--json", str(out / "s.json"), "--csv", str(out / "v.csv"),
                 "--plot", str(out / "p.png")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "DetA" in printed and "NOT the official CapA" in printed
    report = json.loads((out / "s.json").read_text())
    direct = chota(MEDIUM / "gt.json", MEDIUM / "pred.json", alphas="hota",
                   caption_metrics=("cider",))
    assert report["scores"] == pytest.approx(direct.to_dict(), rel=1e-12)
    assert len(report["per_alpha"]["HOTA"]) == 19 and report["settings"]["protocol"] == "reference"
    table = pd.read_csv(out / "v.csv")
    assert table["HOTA_TP"].sum() == pytest.approx(direct["HOTA_TP"], rel=1e-6)
    assert (out / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resample_recomputes_any_subset_exactly():
    """video_stats are sufficient: a subset of videos, weighted by 0/1, scores exactly like
    scoring that subset alone, at every alpha (what bootstrap intervals rely on)."""
    gt, preds = load()
    full = chota(gt, preds, alphas="hota", caption_metrics=("cider",))
    ones = full.resample(np.ones(len(full.per_video)))
    for name, value in full.to_dict().items():
        assert ones[name] == pytest.approx(value, rel=1e-12), name
    keep_ids = full.per_video["video_id"].tolist()[1::2]
    keep_images = {im["id"] for im in gt["images"] if im["video_id"] in keep_ids}
    sub_gt = {**gt, "videos": [v for v in gt["videos"] if v["id"] in keep_ids],
              "images": [im for im in gt["images"] if im["video_id"] in keep_ids],
              "annotations": [a for a in gt["annotations"] if a["image_id"] in keep_images]}
    sub = chota(sub_gt, [p for p in preds if p["image_id"] in keep_images], alphas="hota",
                caption_metrics=("cider",))
    mask = full.per_video["video_id"].isin(keep_ids).to_numpy(float)
    both = full.resample(np.stack([mask, np.ones_like(mask)]))
    for name, value in sub.to_dict().items():
        assert both[name][0] == pytest.approx(value, rel=1e-12), name
        assert both[name][1] == pytest.approx(full[name], rel=1e-12), name
