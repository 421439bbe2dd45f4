"""DetA, AssA, HOTA, LocA, Re/Pr equal trackeval.metrics.HOTA at every alpha on random data."""

import numpy as np
import pytest
import trackeval

from benchmark import chota
from benchmark.matching import HOTA_ALPHAS
from benchmark.structures.boxes import box_iou

FIELDS = ["HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA",
          "HOTA_TP", "HOTA_FN", "HOTA_FP"]


def random_dataset(rng, n_videos, max_gt=5, max_pred=7):
    """COCO-video GT and per-frame predictions with jittered copies, id switches, noise."""
    videos, images, annotations, predictions = [], [], [], []
    image_id = 0
    for v in range(1, n_videos + 1):
        n_frames = int(rng.integers(1, 12))
        videos.append({"id": v, "name": f"v{v}", "height": 100, "width": 100})
        n_gt, n_pred = int(rng.integers(0, max_gt)), int(rng.integers(0, max_pred))
        base = rng.uniform(0, 60, (max(n_gt, 1), 4))
        base[:, 2:] = rng.uniform(5, 40, (max(n_gt, 1), 2))
        for f in range(n_frames):
            image_id += 1
            images.append({"id": image_id, "video_id": v, "frame_index": f})
            for g in range(n_gt):
                if rng.random() < 0.75:
                    box = base[g] + rng.normal(0, 1.5, 4)
                    annotations.append({"image_id": image_id, "track_id": g,
                                        "bbox": np.abs(box).tolist(), "caption": ""})
            for p in range(n_pred):
                if rng.random() < 0.65:
                    src = base[(p + (f > n_frames // 2)) % max(n_gt, 1)]  # id switches
                    box = src + rng.normal(0, 4, 4) if rng.random() < 0.85 else rng.uniform(0, 80, 4)
                    predictions.append({"image_id": image_id, "track_id": 100 + p,
                                        "bbox": np.abs(box).tolist(), "score": 0.9,
                                        "caption": ""})
    return {"videos": videos, "images": images, "annotations": annotations}, predictions


def trackeval_hota(gt, predictions):
    """Run trackeval's HOTA per video on the same data, then its combine_sequences."""
    metric = trackeval.metrics.HOTA()
    per_video = {}
    for video in gt["videos"]:
        frames = [im["id"] for im in gt["images"] if im["video_id"] == video["id"]]
        g = [[a for a in gt["annotations"] if a["image_id"] == i] for i in frames]
        p = [[a for a in predictions if a["image_id"] == i] for i in frames]
        gt_ids = sorted({a["track_id"] for fr in g for a in fr})
        pr_ids = sorted({a["track_id"] for fr in p for a in fr})
        data = {
            "num_gt_dets": sum(map(len, g)), "num_tracker_dets": sum(map(len, p)),
            "num_gt_ids": len(gt_ids), "num_tracker_ids": len(pr_ids),
            "gt_ids": [np.array([gt_ids.index(a["track_id"]) for a in fr], int) for fr in g],
            "tracker_ids": [np.array([pr_ids.index(a["track_id"]) for a in fr], int) for fr in p],
            "similarity_scores": [box_iou(np.array([a["bbox"] for a in gf], np.float32).reshape(-1, 4),
                                          np.array([a["bbox"] for a in pf], np.float32).reshape(-1, 4))
                                  for gf, pf in zip(g, p)],
        }
        per_video[video["id"]] = metric.eval_sequence(data)
    return per_video, metric.combine_sequences(per_video)


@pytest.mark.parametrize("seed", range(8))
def test_equal_to_trackeval_at_every_alpha(seed):
    rng = np.random.default_rng(seed)
    # 8 x 40 = 320 random sequences; half of the seeds have crowded frames (up to 14 boxes a
    # side), where the order of float32 additions in the alignment differs between numpy's
    # row and column sums and must be reproduced.
    crowded = seed % 2 == 1
    gt, predictions = random_dataset(rng, n_videos=40, max_gt=12 if crowded else 5,
                                     max_pred=15 if crowded else 7)
    per_video, combined = trackeval_hota(gt, predictions)
    ours = chota(gt, predictions, alphas="hota", caption_metrics=(), num_workers=1)
    for name in FIELDS:
        # float32 sums in trackeval's LocA differ from ours in the 8th digit only
        np.testing.assert_allclose(ours.per_alpha[name], combined[name], rtol=1e-6, atol=1e-12,
                                   err_msg=name)
    for row in ours.per_video.itertuples():
        ref = per_video[row.video_id]
        for name in ("HOTA_TP", "HOTA_FN", "HOTA_FP", "AssA", "DetA"):
            assert getattr(row, name) == pytest.approx(float(np.mean(ref[name])), rel=1e-6,
                                                       abs=1e-12), (row.video_id, name)
    np.testing.assert_array_equal(ours.alphas, HOTA_ALPHAS)


def test_alignment_sums_are_bit_identical_to_per_frame_numpy_sums():
    from benchmark.matching import _row_and_column_sums, frame_pairs

    rng = np.random.default_rng(3)
    n_frames = 30
    gt_frame = np.sort(rng.integers(0, n_frames, 200))
    pred_frame = np.sort(rng.integers(0, n_frames, 260))
    pair_gt, pair_pred = frame_pairs(gt_frame, pred_frame, n_frames)
    for dtype in (np.float32, np.float64):
        sim = rng.random(len(pair_gt)).astype(dtype)
        rows, cols = _row_and_column_sums(sim, pair_gt, pair_pred, len(gt_frame), len(pred_frame))
        start = 0
        for f in range(n_frames):
            g, p = int((gt_frame == f).sum()), int((pred_frame == f).sum())
            block = sim[start:start + g * p].reshape(g, p)
            np.testing.assert_array_equal(rows[start:start + g * p].reshape(g, p)[:, 0] if p else [],
                                          block.sum(1) if p else [])
            np.testing.assert_array_equal(cols[start:start + g * p].reshape(g, p)[0] if g else [],
                                          block.sum(0) if g else [])
            start += g * p
