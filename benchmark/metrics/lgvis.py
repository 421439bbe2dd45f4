"""ViCaS LG-VIS mAP (language-guided video instance segmentation), the published protocol.

Inputs are ViCaS's per-video files: GT ``{video_id, image_size [H, W], object_referrals:
[{prompt, track_ids}], segmentations: [{filename, is_gt, track_ids, mask_rles}]}`` and
predictions ``{video_id, pred_lgvis_masks: [per referral: [{filename, mask_rles: [one RLE per
predicted object]}]]}``. The protocol, in our words:

- Only the human-annotated frames (``is_gt``) count, in file-name order; a prediction must
  cover every one of them and give the same number of objects on each. A GT object missing
  from a frame has an empty mask there.
- Each referral is scored like a video: its GT objects are the referral's ``track_ids``; its
  predictions (no scores in the format: all 1.0, kept in file order) are cut to the first 10.
- Track IoU = sum of intersections / sum of unions over those frames, stored in float32.
- Matching per IoU threshold (``np.arange(0.5, 0.95 + 1e-4, 0.05)``): each prediction in turn
  takes, among the GT objects no earlier prediction holds, the *last* one whose IoU >= the
  threshold (the published loop does not stop at the first hit nor look for the best IoU).
- All referrals are pooled: predictions sorted by score (stable), cumulative TP / FP,
  precision = TP / (TP + FP + 1e-8), recall = TP / (number of GT objects); AP = area under the
  monotone precision envelope (every recall step, PASCAL-VOC style, not 101 points).
  mAP = mean over thresholds; AP50 / AP75 / AP90 as published. No prediction at all: 0; no
  GT object at all: 1.

Defects of the published script that are *not* copied: with more than 10 predictions on a
referral its match and score arrays lose alignment (we keep the first 10 consistently); its
unstable score sort can reorder equal scores on large inputs (we sort stably).
Values are in [0, 1] (the paper prints them x100).

Example:
    >>> gt = {"video_id": 1, "image_size": [4, 4],
    ...       "object_referrals": [{"prompt": "where is the cup?", "track_ids": [1]}],
    ...       "segmentations": [{"filename": "00000.jpg", "is_gt": True, "track_ids": [1],
    ...                          "mask_rles": [{"size": [4, 4], "counts": "52203"}]}]}
    >>> pred = {"video_id": 1, "pred_lgvis_masks": [[{"filename": "00000.jpg",
    ...         "mask_rles": [{"size": [4, 4], "counts": "52203"}]}]]}
    >>> lgvis_map([gt], [pred]).summary["mAP"]
    1.0
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmark.errors import InputError
from benchmark.io import read_json
from benchmark.metrics.track_map import track_iou_matrix
from benchmark.metrics.tracks import Track
from benchmark.structures.masks import to_rle

THRESHOLDS = np.arange(0.5, 0.95 + 1e-4, 0.05)
REPORTED = {"AP50": 0.5, "AP75": 0.75, "AP90": 0.9}
MAX_PREDICTIONS = 10


@dataclass
class LgvisResult:
    """``summary`` (mAP, AP50, AP75, AP90, counts) and ``per_threshold`` AP."""

    summary: dict[str, float]
    per_threshold: pd.DataFrame

    def to_dict(self) -> dict[str, float]:
        """The summary as a flat dict (JSON-ready)."""
        return dict(self.summary)


def read_vicas_files(src: str | os.PathLike[str] | Sequence[Any]) -> dict[int, tuple[str, dict]]:
    """ViCaS per-video files by video id, as ``{video_id: (source name, content)}``.

    ``src`` is a folder of ``*.json`` files, one JSON file holding a list, or a list of dicts.

    Example:
        >>> read_vicas_files([{"video_id": 3}])[3][1]
        {'video_id': 3}
    """
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.is_dir():
            items = [(str(p), read_json(p, what="ViCaS")[0]) for p in sorted(path.glob("*.json"))]
            if not items:
                raise InputError("no *.json files in this folder", source=str(path))
        else:
            content = read_json(path, what="ViCaS")[0]
            content = content if isinstance(content, list) else [content]
            items = [(f"{path}[{i}]", c) for i, c in enumerate(content)]
    else:
        items = [(f"<item {i}>", c) for i, c in enumerate(src)]
    out: dict[int, tuple[str, dict]] = {}
    for name, content in items:
        vid = content.get("video_id") if isinstance(content, dict) else None
        if isinstance(vid, bool) or not isinstance(vid, int):
            raise InputError("needs an integer 'video_id'", source=name, field="video_id")
        if vid in out:
            raise InputError(f"video {vid} appears twice (also in {out[vid][0]})", source=name,
                             field="video_id")
        out[vid] = (name, content)
    return out


def _rle(value: Any, size: list[int], *, source: str, record: str, field: str) -> dict:
    try:
        rle = to_rle(value, *size)
    except ValueError as exc:
        raise InputError(str(exc), source=source, record=record, field=field) from None
    if list(rle["size"]) != list(size):
        raise InputError(f"mask size {rle['size']} differs from image_size {size}",
                         source=source, record=record, field=field)
    return rle


def _referral_tracks(gt_name: str, gt: dict, pred_name: str, pred: dict
                     ) -> Iterable[tuple[list[Track], list[Track]]]:
    """(predicted tracks, GT tracks) per referral, over the human-annotated frames."""
    size = gt.get("image_size")
    if not (isinstance(size, list) and len(size) == 2):
        raise InputError("needs 'image_size' [H, W]", source=gt_name, field="image_size")
    human = {s["filename"]: s for s in gt.get("segmentations", []) if s.get("is_gt")}
    frames = sorted(human)
    referrals = gt.get("object_referrals", [])
    pred_refs = pred.get("pred_lgvis_masks")
    if not isinstance(pred_refs, list) or len(pred_refs) != len(referrals):
        raise InputError(f"needs one entry per referral ({len(referrals)})", source=pred_name,
                         field="pred_lgvis_masks")
    vid = gt["video_id"]
    for r, (referral, pred_ref) in enumerate(zip(referrals, pred_refs)):
        gt_tracks = []
        for tid in referral.get("track_ids", []):
            masks = []
            for f in frames:
                ids = human[f].get("track_ids", [])
                masks.append(_rle(human[f]["mask_rles"][ids.index(tid)], size, source=gt_name,
                                  record=f"segmentations[{f}]", field="mask_rles")
                             if tid in ids else None)
            gt_tracks.append(Track(vid, tid, 0, masks, [None] * len(frames), [None] * len(frames)))
        by_frame = {e.get("filename"): e.get("mask_rles") for e in pred_ref if isinstance(e, dict)}
        missing = [f for f in frames if f not in by_frame]
        if missing:
            raise InputError(f"referral {r} lacks annotated frames {missing[:3]}",
                             source=pred_name, record=f"referral {r}", field="pred_lgvis_masks")
        counts = {len(by_frame[f] or []) for f in frames}
        if len(counts) > 1:
            raise InputError(f"referral {r} gives {sorted(counts)} objects on different frames",
                             source=pred_name, record=f"referral {r}", field="mask_rles")
        n_pred = counts.pop() if counts else 0
        pred_tracks = [
            Track(vid, k, 0, [_rle(by_frame[f][k], size, source=pred_name,
                                   record=f"referral {r}, frame {f}", field="mask_rles")
                              for f in frames], [None] * len(frames), [None] * len(frames))
            for k in range(min(n_pred, MAX_PREDICTIONS))]
        yield pred_tracks, gt_tracks


def _match_last(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Published ViCaS matching: GT index per prediction (-1 = false positive)."""
    nd, ng = ious.shape
    match = np.full(nd, -1)
    taken: set[int] = set()
    for i in range(nd):
        for j in range(ng):
            if j not in taken and ious[i, j] >= threshold:
                match[i] = j
        if match[i] >= 0:
            taken.add(int(match[i]))
    return match


def _voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    p = np.concatenate(([0.0], precision, [0.0]))
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def lgvis_map(gt: Any, pred: Any, *, progress: bool = False) -> LgvisResult:
    """ViCaS LG-VIS mAP of ``pred`` against ``gt`` (folders, JSON files or lists of dicts).

    Every GT video needs a prediction file; predictions for videos not in the GT are ignored.

    Example:
        >>> lgvis_map("vicas/annotations/v0.1", "my_preds/").summary   # doctest: +SKIP
    """
    gts, preds = read_vicas_files(gt), read_vicas_files(pred)
    matches, n_gt = [], 0
    for vid in tqdm(sorted(gts), desc="LG-VIS", unit="video", disable=not progress):
        if vid not in preds:
            raise InputError(f"no prediction for video {vid}", source=gts[vid][0],
                             field="video_id")
        for pred_tracks, gt_tracks in _referral_tracks(*gts[vid], *preds[vid]):
            n_gt += len(gt_tracks)
            ious = track_iou_matrix(pred_tracks, gt_tracks, iou="mask").astype(np.float32)
            if not gt_tracks:
                ious = np.zeros((len(pred_tracks), 0), np.float32)
            matches.append(np.stack([_match_last(ious, t) for t in THRESHOLDS])
                           if pred_tracks else np.zeros((len(THRESHOLDS), 0), int))
    matched = np.concatenate(matches, axis=1) if matches else np.zeros((len(THRESHOLDS), 0))
    # every score is 1.0, so the stable score order is the file order
    if matched.shape[1] == 0:
        aps = np.zeros(len(THRESHOLDS))
    elif n_gt == 0:
        aps = np.ones(len(THRESHOLDS))
    else:
        tp = np.cumsum((matched >= 0).astype(np.float32), axis=1)
        fp = np.cumsum((matched < 0).astype(np.float32), axis=1)
        aps = np.array([_voc_ap(tp[t] / (tp[t] + fp[t] + 1e-8), tp[t] / n_gt)
                        for t in range(len(THRESHOLDS))], dtype=np.float32)
    summary = {"mAP": float(np.mean(aps))}
    for name, thr in REPORTED.items():
        summary[name] = float(aps[int(np.argmin(np.abs(THRESHOLDS - thr)))])
    summary["gt_objects"] = float(n_gt)
    summary["predicted_objects"] = float(matched.shape[1])
    return LgvisResult(summary, pd.DataFrame({"threshold": THRESHOLDS, "AP": aps}))
