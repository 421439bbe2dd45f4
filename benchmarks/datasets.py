"""Synthetic evaluation sets at the scale of the real benchmarks, for timing only.

* :func:`vidstg_scale`: 602 videos x 200 frames (VidSTG val after the DVOC conversion), about
  3 ground-truth tracks per video captioned inside a temporal window as VidSTG is, and about
  6 predicted tracks with one caption each (MaskCaptioner-style outputs).
* :func:`lvvis_scale`: 837 videos (LV-VIS val) of 720x1280 frames with compressed-RLE masks.

Sentences are built from a VidSTG-like grammar so that caption pairs are as varied as real
ones (their count drives the caption-metric cost).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

SUBJECTS = ["an adult", "a child", "a baby", "a dog", "a cat", "a man", "a woman", "a car",
            "a bicycle", "a horse", "a bird", "a toy"]
ATTRIBUTES = ["", "in black", "in red clothes", "with a hat", "in white", "with glasses",
              "in a blue shirt", "with long hair"]
VERBS = ["walks towards", "holds", "rides", "leans on", "chases", "watches", "pushes",
         "stands next to", "sits on", "touches", "plays with", "carries"]
OBJECTS = ["a chair", "a ball", "a sofa", "the table", "a red car", "another adult",
           "a dog", "the door", "a bottle", "a bicycle", "a child", "the window"]


def sentence(rng: np.random.Generator) -> str:
    words = [SUBJECTS[rng.integers(len(SUBJECTS))], ATTRIBUTES[rng.integers(len(ATTRIBUTES))],
             VERBS[rng.integers(len(VERBS))], OBJECTS[rng.integers(len(OBJECTS))]]
    return " ".join(w for w in words if w) + "."


def perturb(text: str, rng: np.random.Generator) -> str:
    """A plausible model caption for a ground-truth sentence: some words swapped."""
    words = text.rstrip(".").split()
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.integers(len(words)))
        words[k] = rng.choice(["person", "small", "near", "a", "object", "moving", "the"])
    return " ".join(words) + "."


def _tracks(rng, n_frames, width, height):
    """Random linear trajectories: start box, velocity, visible span."""
    n = max(1, int(rng.poisson(3)))
    boxes = np.column_stack([rng.uniform(0, width * 0.7, n), rng.uniform(0, height * 0.7, n),
                             rng.uniform(30, 200, n), rng.uniform(30, 200, n)])
    velocity = rng.normal(0, 1.5, (n, 2))
    start = rng.integers(0, n_frames // 2, n)
    end = np.minimum(n_frames, start + rng.integers(n_frames // 3, n_frames + 1, n))
    return boxes, velocity, start, end


def vidstg_scale(*, n_videos: int = 602, n_frames: int = 200, seed: int = 0):
    """VidSTG-val-scale COCO-video ground truth and per-frame predictions (boxes, captions)."""
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    videos, images, annotations, predictions = [], [], [], []
    for v in range(1, n_videos + 1):
        videos.append({"id": v, "name": f"video_{v:04d}", "width": width, "height": height})
        image_ids = [v * 6000 + f for f in range(n_frames)]
        images.extend({"id": i, "video_id": v, "frame_index": f, "width": width,
                       "height": height} for f, i in enumerate(image_ids))
        boxes, velocity, start, end = _tracks(rng, n_frames, width, height)
        n_gt = len(boxes)
        captions = [sentence(rng) for _ in range(n_gt)]
        captioned = rng.random(n_gt) < 0.9
        window = [(int(rng.integers(s, max(s + 1, e - 20))), 0) for s, e in zip(start, end)]
        window = [(a, min(int(e), a + int(rng.integers(20, 120)))) for (a, _), e in zip(window, end)]
        # Predicted tracks: a jittered copy of most GT tracks (some switching id halfway),
        # plus false positives; one caption and one score per track.
        n_pred = n_gt + int(rng.integers(1, 5))
        source = [g if g < n_gt and rng.random() < 0.85 else -1 for g in range(n_pred)]
        switch = rng.random(n_pred) < 0.2
        pred_caption = [perturb(captions[s], rng) if s >= 0 and rng.random() < 0.8
                        else sentence(rng) for s in source]
        pred_score = rng.uniform(0.3, 1.0, n_pred)
        fp_boxes, fp_velocity, fp_start, fp_end = _tracks(rng, n_frames, width, height)
        for f in range(n_frames):
            for g in range(n_gt):
                if start[g] <= f < end[g]:
                    box = boxes[g].copy()
                    box[:2] += velocity[g] * f
                    caption = captions[g] if captioned[g] and window[g][0] <= f < window[g][1] else ""
                    annotations.append({"id": len(annotations) + 1, "image_id": image_ids[f],
                                        "video_id": v, "track_id": v * 100 + g,
                                        "bbox": [round(float(x), 2) for x in box],
                                        "caption": caption, "category_id": 1})
            for p in range(n_pred):
                g = source[p]
                if g >= 0:
                    if not (start[g] <= f < end[g]) or rng.random() < 0.1:
                        continue
                    box = boxes[g] + rng.normal(0, 6, 4)
                    box[:2] += velocity[g] * f
                    track = v * 1000 + p + (500 if switch[p] and f > n_frames // 2 else 0)
                else:
                    k = p % len(fp_boxes)
                    if not (fp_start[k] <= f < fp_end[k]):
                        continue
                    box = fp_boxes[k].copy()
                    box[:2] += fp_velocity[k] * f
                    track = v * 1000 + p
                box[2:] = np.abs(box[2:])
                predictions.append({"image_id": image_ids[f], "video_id": v, "track_id": track,
                                    "bbox": [round(float(x), 2) for x in box],
                                    "score": round(float(pred_score[p]), 3),
                                    "caption": pred_caption[p], "category_id": 1})
    gt = {"videos": videos, "images": images, "annotations": annotations,
          "categories": [{"id": 1, "name": "object"}]}
    return gt, predictions


def ellipse_rle(cx: float, cy: float, ax: float, ay: float, height: int, width: int) -> dict:
    """Compressed RLE of a filled axis-aligned ellipse, built column by column (fast)."""
    # Clipped to the frame: an ellipse wholly outside it is an empty mask.
    x0 = min(width, max(0, int(np.ceil(cx - ax))))
    x1 = max(x0, min(width, int(np.floor(cx + ax)) + 1))
    xs = np.arange(x0, x1)
    half = ay * np.sqrt(np.clip(1 - ((xs - cx) / ax) ** 2, 0, None))
    top = np.clip(np.ceil(cy - half), 0, height).astype(np.int64)
    bottom = np.clip(np.floor(cy + half) + 1, 0, height).astype(np.int64)
    bottom = np.maximum(bottom, top)
    # Column-major runs: zeros before the first column, then per column (gap, ones).
    counts = []
    zeros = x0 * height
    for t, b in zip(top.tolist(), bottom.tolist()):
        counts += [zeros + t, b - t]
        zeros = height - b
    counts.append(zeros + (width - x1) * height)
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def lvvis_scale(*, n_videos: int = 837, n_frames: int = 24, seed: int = 0,
                height: int = 720, width: int = 1280):
    """LV-VIS-val-scale mask ground truth and predictions (720x1280 compressed RLE)."""
    rng = np.random.default_rng(seed)
    videos, images, annotations, predictions = [], [], [], []
    image_id = 0
    for v in range(1, n_videos + 1):
        videos.append({"id": v, "name": f"{v:05d}", "height": height, "width": width})
        n_gt = max(1, int(rng.poisson(4.4)))
        n_pred = n_gt + int(rng.integers(2, 6))
        centres = rng.uniform([100, 100], [width - 100, height - 100], (n_gt, 2))
        axes = rng.uniform(20, 160, (n_gt, 2))
        speed = rng.normal(0, 3, (n_gt, 2))
        captions = [sentence(rng) for _ in range(n_gt)]
        source = [g if g < n_gt and rng.random() < 0.8 else -1 for g in range(n_pred)]
        fp_centres = rng.uniform([100, 100], [width - 100, height - 100], (n_pred, 2))
        for f in range(n_frames):
            image_id += 1
            images.append({"id": image_id, "video_id": v, "frame_index": f,
                           "height": height, "width": width})
            for g in range(n_gt):
                cx, cy = centres[g] + speed[g] * f
                rle = ellipse_rle(cx, cy, *axes[g], height, width)
                annotations.append({"image_id": image_id, "video_id": v, "track_id": g,
                                    "segmentation": rle, "caption": captions[g],
                                    "bbox": mask_utils.toBbox(rle).tolist()})
            for p in range(n_pred):
                g = source[p]
                if g >= 0:
                    cx, cy = centres[g] + speed[g] * f + rng.normal(0, 4, 2)
                    ax, ay = axes[g] * rng.uniform(0.85, 1.15, 2)
                else:
                    cx, cy = fp_centres[p]
                    ax, ay = 60.0, 40.0
                rle = ellipse_rle(cx, cy, ax, ay, height, width)
                predictions.append({"image_id": image_id, "video_id": v, "track_id": p,
                                    "segmentation": rle, "score": 0.9,
                                    "caption": perturb(captions[g], rng) if g >= 0 else sentence(rng),
                                    "bbox": mask_utils.toBbox(rle).tolist()})
    gt = {"videos": videos, "images": images, "annotations": annotations}
    return gt, predictions
