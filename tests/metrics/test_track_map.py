"""Track mAP: hand-computed cases and agreement with TrackEval's TrackMAP."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.errors import InputError
from benchmark.metrics.track_map import (lvvis_category_groups, track_iou_matrix,
                                         track_map)
from benchmark.metrics.tracks import load_tracks


def _box_gt(tracks, length=1, size=(100, 100), categories=(1,)):
    """Per-track GT with boxes; ``tracks`` = list of (category, [box or None per frame])."""
    return {
        "videos": [{"id": 1, "height": size[0], "width": size[1], "length": length}],
        "annotations": [{"id": i + 1, "video_id": 1, "category_id": c, "bboxes": b}
                        for i, (c, b) in enumerate(tracks)],
        "categories": [{"id": c, "name": f"c{c}"} for c in categories],
    }


def _hand_case():
    # GT A, B are 10x10. p1 (0.9) covers 9x9 of A: IoU 0.81; p2 (0.8) hits nothing;
    # p3 (0.7) covers 8x8 of B: IoU 0.64.
    gt = _box_gt([(1, [[0, 0, 10, 10]]), (1, [[50, 50, 10, 10]])])
    pred = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 9, 9]]},
        {"video_id": 1, "category_id": 1, "score": 0.8, "bboxes": [[80, 0, 10, 10]]},
        {"video_id": 1, "category_id": 1, "score": 0.7, "bboxes": [[51, 51, 8, 8]]},
    ]
    return gt, pred


def test_hand_computed_precision_curve():
    gt, pred = _hand_case()
    s = track_map(gt, pred, iou="box").summary
    # 0.50-0.60 (3 thresholds): TP FP TP -> precision 1 up to recall .5 (51 points), 2/3 after
    # 0.65-0.80 (4 thresholds): TP FP FP -> precision 1 up to recall .5, 0 after
    # 0.85-0.95 (3 thresholds): nothing matches
    low = (51 + 50 * 2 / 3) / 101
    mid = 51 / 101
    assert s["AP"] == pytest.approx((3 * low + 4 * mid) / 10, abs=1e-12)
    assert s["AP50"] == pytest.approx(low, abs=1e-12)
    assert s["AP75"] == pytest.approx(mid, abs=1e-12)
    assert s["AR100"] == pytest.approx((3 * 1.0 + 4 * 0.5) / 10)
    assert s["AR10"] == pytest.approx(s["AR100"])
    assert s["AR1"] == pytest.approx(7 * 0.5 / 10)  # only p1 kept
    assert s["AP_small"] == pytest.approx(s["AP"])  # every track is small
    assert s["AP_medium"] == -1 and s["AP_large"] == -1


def test_spatio_temporal_iou_sums_over_frames():
    # frame 0: both present, I = 50, U = 150; frame 1: only GT (100); frame 2: only pred (25)
    gt = _box_gt([(1, [[0, 0, 10, 10], [0, 0, 10, 10], None])], length=3)
    pred = [{"video_id": 1, "category_id": 1, "score": 1.0,
             "bboxes": [[5, 0, 10, 10], None, [0, 0, 5, 5]]}]
    g = load_tracks(gt, role="gt")
    p = load_tracks(pred, role="pred", gt=g)
    assert track_iou_matrix(p.tracks, g.tracks, iou="box")[0, 0] == pytest.approx(
        50 / (150 + 100 + 25))


def test_mask_iou_matches_pixel_count():
    rng = np.random.default_rng(0)
    h, w, n = 30, 40, 3
    masks_g = [(rng.random((h, w)) > 0.5).astype(np.uint8) for _ in range(n)]
    masks_d = [(rng.random((h, w)) > 0.4).astype(np.uint8) for _ in range(n)]
    enc = lambda m: {**mask_utils.encode(np.asfortranarray(m)), "counts": mask_utils.encode(
        np.asfortranarray(m))["counts"].decode()}
    gt = {"videos": [{"id": 1, "height": h, "width": w, "length": n}],
          "annotations": [{"id": 1, "video_id": 1, "category_id": 1,
                           "segmentations": [enc(m) for m in masks_g]}],
          "categories": [{"id": 1, "name": "x"}]}
    pred = [{"video_id": 1, "category_id": 1, "score": 1.0,
             "segmentations": [enc(m) for m in masks_d[:2]] + [None]}]
    g = load_tracks(gt, role="gt")
    p = load_tracks(pred, role="pred", gt=g)
    inter = sum(int((a & b).sum()) for a, b in zip(masks_g[:2], masks_d[:2]))
    union = sum(int((a | b).sum()) for a, b in zip(masks_g[:2], masks_d[:2])) + int(masks_g[2].sum())
    assert track_iou_matrix(p.tracks, g.tracks)[0, 0] == pytest.approx(inter / union, abs=1e-15)


def test_crowd_gt_absorbs_predictions_and_is_not_counted():
    gt = _box_gt([(1, [[0, 0, 10, 10]]), (1, [[50, 50, 20, 20]])])
    gt["annotations"][1]["iscrowd"] = 1
    pred = [{"video_id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 10, 10]]},
            {"video_id": 1, "category_id": 1, "score": 0.8, "bboxes": [[50, 50, 20, 20]]},
            {"video_id": 1, "category_id": 1, "score": 0.7, "bboxes": [[50, 50, 20, 20]]}]
    s = track_map(gt, pred, iou="box").summary
    # both crowd matches are ignored, so the only counted prediction is a perfect TP
    assert s["AP"] == pytest.approx(1.0)


def test_lvvis_base_novel_groups():
    cats = [{"id": 1, "name": "a", "partition": 0}, {"id": 2, "name": "b", "partition": 2}]
    gt = _box_gt([(1, [[0, 0, 10, 10]]), (2, [[50, 50, 10, 10]])], categories=(1, 2))
    gt["categories"] = cats
    pred = [{"video_id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 10, 10]]},
            {"video_id": 1, "category_id": 2, "score": 0.9, "bboxes": [[0, 0, 10, 10]]}]
    res = track_map(gt, pred, iou="box", category_groups=lvvis_category_groups(cats))
    assert res.summary["AP_base"] == pytest.approx(1.0)
    assert res.summary["AP_novel"] == 0.0
    assert res.summary["AP"] == pytest.approx(0.5)
    assert res.per_category["AP"].round(6).tolist() == [1.0, 0.0]


def test_frame_level_input_groups_tracks_and_averages_scores():
    gt = {"videos": [{"id": 1, "height": 20, "width": 20, "length": 2}],
          "images": [{"id": 10, "video_id": 1, "frame_index": 0},
                     {"id": 11, "video_id": 1, "frame_index": 1}],
          "annotations": [{"id": 1, "image_id": i, "video_id": 1, "track_id": 5,
                           "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100.0}
                          for i in (10, 11)],
          "categories": [{"id": 1, "name": "x"}]}
    pred = [{"image_id": 10, "track_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10],
             "score": 0.2},
            {"image_id": 11, "track_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10],
             "score": 0.6}]
    g = load_tracks(gt, role="gt")
    p = load_tracks(pred, role="pred", gt=g)
    assert len(p.tracks) == 1 and p.tracks[0].score == pytest.approx(0.4)
    assert track_map(g, p, iou="box").summary["AP"] == pytest.approx(1.0)


def test_bad_input_names_file_record_field(tmp_path):
    gt, pred = _hand_case()
    pred[1]["bboxes"] = [[0, 0, 10]]
    with pytest.raises(InputError, match=r"record 1, field 'bboxes\[0\]'"):
        track_map(gt, pred, iou="box")
    pred[1]["bboxes"] = [[0, 0, 1, 1], [0, 0, 1, 1]]
    with pytest.raises(InputError, match="one entry per frame"):
        track_map(gt, pred, iou="box")
    bad = tmp_path / "gt.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="gt.json: not valid JSON"):
        track_map(str(bad), [], iou="box")


# --- agreement with TrackEval -------------------------------------------------------------

def _random_dataset(seed: int, *, crowd_rate: float = 0.0, n_videos: int = 5, length: int = 4,
                    h: int = 400, w: int = 600):
    """Rectangle masks of many sizes (small to large), jittered predictions, maybe crowd GT."""
    rng = np.random.default_rng(seed)

    def rect(x, y, bw, bh):
        m = np.zeros((h, w), np.uint8, order="F")
        m[max(y, 0):min(y + bh, h), max(x, 0):min(x + bw, w)] = 1
        r = mask_utils.encode(m)
        return {"size": r["size"], "counts": r["counts"].decode()}

    videos, anns, preds = [], [], []
    for v in range(1, n_videos + 1):
        videos.append({"id": v, "height": h, "width": w, "length": length})
        for _ in range(rng.integers(1, 5)):
            cat = int(rng.integers(1, 4))
            side = int(rng.choice([40, 150, 330]))
            x, y = int(rng.integers(0, w - side - 12)), int(rng.integers(0, h - side))
            segs = []
            for t in range(length):
                segs.append(None if rng.random() < 0.15 else
                            rect(x + 3 * t, y, side, int(side * 0.8)))
            if all(s is None for s in segs):
                segs[0] = rect(x, y, side, side)
            anns.append({"id": len(anns) + 1, "video_id": v, "category_id": cat,
                         "segmentations": segs, "iscrowd": int(rng.random() < crowd_rate)})
            for _ in range(rng.integers(0, 4)):
                jx, jy = rng.integers(-side // 5, side // 5 + 1, size=2)
                psegs = [None if s is None or rng.random() < 0.1 else
                         rect(x + 3 * t + int(jx), y + int(jy), side, int(side * 0.8))
                         for t, s in enumerate(segs)]
                preds.append({"video_id": v, "category_id": cat if rng.random() < 0.8 else
                              int(rng.integers(1, 4)), "segmentations": psegs,
                              "score": float(rng.random())})
        for _ in range(rng.integers(0, 2)):  # pure false positives
            preds.append({"video_id": v, "category_id": int(rng.integers(1, 4)),
                          "segmentations": [rect(*map(int, rng.integers(0, 200, 2)), 60, 60)
                                            for _ in range(length)],
                          "score": float(rng.random())})
    gt = {"videos": videos, "annotations": anns,
          "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}
    return gt, preds


def _trackeval_ap(gt, pred):
    trackeval = pytest.importorskip("trackeval")
    metric = trackeval.metrics.TrackMAP({
        "USE_TIME_RANGES": False, "PRINT_CONFIG": False,
        "AREA_RANGES": [[0, 128 ** 2], [128 ** 2, 256 ** 2], [256 ** 2, 1e5 ** 2]],
        "AREA_RANGE_LABELS": ["area_s", "area_m", "area_l"]})

    def tube(segs):
        return {t: {"size": s["size"], "counts": s["counts"].encode()}
                for t, s in enumerate(segs) if s is not None}

    def mean_area(segs):
        areas = [float(mask_utils.area(tube(segs)[t])) for t in tube(segs)]
        areas = [a for a in areas if a]
        return float(np.mean(areas)) if areas else 0.0

    per_class = {}
    for cat in (1, 2, 3):
        seq_res = {}
        for v in gt["videos"]:
            g = [a for a in gt["annotations"] if a["video_id"] == v["id"] and a["category_id"] == cat]
            d = [p for p in pred if p["video_id"] == v["id"] and p["category_id"] == cat]
            d = sorted(d, key=lambda p: -p["score"])
            data = {
                "gt_track_ids": list(range(1, len(g) + 1)),
                "dt_track_ids": list(range(1, len(d) + 1)),  # ids from 1: id 0 reads as unmatched
                "gt_tracks": [tube(a["segmentations"]) for a in g],
                "dt_tracks": [tube(p["segmentations"]) for p in d],
                "gt_track_areas": [mean_area(a["segmentations"]) for a in g],
                "dt_track_areas": [mean_area(p["segmentations"]) for p in d],
                "gt_track_iscrowd": [a["iscrowd"] for a in g],
                "dt_track_scores": np.array([p["score"] for p in d]),
                "iou_type": "mask",
            }
            seq_res[v["id"]] = metric.eval_sequence(data)
        per_class[cat] = metric.combine_sequences(seq_res)
    return metric.combine_classes_class_averaged(per_class)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_agrees_with_trackeval_trackmap(seed):
    gt, pred = _random_dataset(seed)
    ours = track_map(gt, pred).summary
    ref = _trackeval_ap(gt, pred)
    assert ours["AP"] == pytest.approx(float(np.mean(ref["AP_all"])), abs=1e-12)
    assert ours["AP50"] == pytest.approx(float(ref["AP_all"][0]), abs=1e-12)
    assert ours["AP75"] == pytest.approx(float(ref["AP_all"][5]), abs=1e-12)
    assert ours["AR100"] == pytest.approx(float(np.mean(ref["AR_all"])), abs=1e-12)
    for ours_key, ref_key in (("small", "area_s"), ("medium", "area_m"), ("large", "area_l")):
        ref_ap = ref[f"AP_{ref_key}"]
        expected = -1.0 if np.all(ref_ap == -1) else float(np.mean(ref_ap))
        assert ours[f"AP_{ours_key}"] == pytest.approx(expected, abs=1e-12), ours_key
    assert 0 < ours["AP"] < 1  # the data are neither trivial nor hopeless


def test_crowd_is_where_trackeval_differs():
    # TrackEval lets a crowd GT absorb only one prediction (the next one becomes a false
    # positive); the YouTube-VIS API lets it absorb all of them. We follow YouTube-VIS.
    gt, pred = _random_dataset(2, crowd_rate=0.3)
    assert any(a["iscrowd"] for a in gt["annotations"])
    ours = track_map(gt, pred).summary["AP"]
    theirs = float(np.mean(_trackeval_ap(gt, pred)["AP_all"]))
    assert ours == pytest.approx(0.3702695269, abs=1e-9)
    assert theirs < ours


def test_missing_score_is_refused_naming_record_and_field(tmp_path):
    # track mAP ranks by score: a missing score must not silently become 1.0
    gt, pred = _hand_case()
    del pred[1]["score"]
    with pytest.raises(InputError, match=r"record 1, field 'score'.*missing field"):
        track_map(gt, pred, iou="box")
    frame_gt = {"videos": [{"id": 1, "height": 20, "width": 20, "length": 1}],
                "images": [{"id": 10, "video_id": 1, "frame_index": 0}],
                "annotations": [{"id": 1, "image_id": 10, "video_id": 1, "track_id": 5,
                                 "category_id": 1, "bbox": [0, 0, 10, 10]}],
                "categories": [{"id": 1, "name": "x"}]}
    frame_pred = [{"image_id": 10, "track_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10]}]
    with pytest.raises(InputError, match=r"record 0, field 'score'"):
        track_map(frame_gt, frame_pred, iou="box")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 300))
def test_agrees_with_trackeval_trackmap_extended(seed):
    # the long check (`pytest -m slow`, about a minute): 200 seeds, more videos, longer tracks
    gt, pred = _random_dataset(seed, n_videos=20, length=10)
    g = load_tracks(gt, role="gt")
    p = load_tracks(pred, role="pred", gt=g)
    thresholds = np.linspace(0.5, 0.95, 10)
    for vid in g.videos:
        for cat in (1, 2, 3):
            ious = track_iou_matrix([t for t in p.tracks if (t.video_id, t.category_id) == (vid, cat)],
                                    [t for t in g.tracks if (t.video_id, t.category_id) == (vid, cat)])
            if np.any(np.abs(ious.ravel()[:, None] - thresholds[None, :]) < 1e-9):
                pytest.skip("a track IoU sits at a threshold, where TrackEval differs (documented)")
    ours = track_map(gt, pred).summary
    ref = _trackeval_ap(gt, pred)
    assert ours["AP"] == pytest.approx(float(np.mean(ref["AP_all"])), abs=1e-12)
    assert ours["AR100"] == pytest.approx(float(np.mean(ref["AR_all"])), abs=1e-12)
    assert ours["AP50"] == pytest.approx(float(ref["AP_all"][0]), abs=1e-12)
    assert ours["AP75"] == pytest.approx(float(ref["AP_all"][5]), abs=1e-12)
