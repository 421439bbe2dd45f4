"""J&F for masklets, as defined for DAVIS (Perazzi et al., CVPR 2016; DAVIS 2017 toolkit).

- Region similarity J = |pred & gt| / |pred | gt|, and 1 when both masks are empty.
- Boundary F: both masks are turned into 1-pixel boundary maps (a pixel is on the boundary
  when it differs from its right, lower or lower-right neighbour; last row / column compare
  along the edge only); each map is dilated by a disk of radius
  ``ceil(bound_th * image diagonal)`` pixels (``bound_th`` = 0.008; a value >= 1 is a radius in
  pixels); precision = predicted boundary pixels within the dilated GT boundary / predicted
  boundary pixels, recall likewise from the GT side; F = 2PR / (P + R). No predicted boundary
  gives P = 1 (R = 0 unless the GT has none either); no GT boundary gives R = 1.
- Per object: mean over frames (DAVIS and SA-V leave out the first and last frame of each
  video: ``skip_first_and_last=True``); J-Recall = share of frames with a value > 0.5.
  Reported J, F: means over all objects of all videos; J&F = (J + F) / 2.

A predicted masklet answers the GT object with the same ``(video_id, track_id)`` (the object
it was prompted with); a GT object without one scores with empty masks.

Example:
    >>> import numpy as np
    >>> gt = np.zeros((10, 10), bool); gt[2:6, 2:6] = True
    >>> pred = np.zeros((10, 10), bool); pred[2:6, 2:4] = True
    >>> region_similarity(gt, pred), boundary_f_measure(gt, gt)
    (0.5, 1.0)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils
from scipy import ndimage
from tqdm import tqdm

from benchmark.errors import InputError
from benchmark.metrics.tracks import TrackSet, load_tracks

BOUND_TH = 0.008


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """Jaccard index J of two binary masks; 1.0 when both are empty.

    Example:
        >>> region_similarity(np.zeros((2, 2)), np.zeros((2, 2)))
        1.0
    """
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    union = np.count_nonzero(gt | pred)
    return 1.0 if union == 0 else float(np.count_nonzero(gt & pred) / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary of a binary mask (DAVIS's ``seg2bmap`` at the mask's own size).

    Example:
        >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
        >>> boundary_map(m).astype(int).tolist()
        [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    """
    seg = np.asarray(mask, bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    southeast = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    southeast[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ southeast)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * diagonal).

    Example:
        >>> boundary_radius((480, 854))   # ceil(0.008 * 979.7)
        8
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def boundary_f_measure(gt: np.ndarray, pred: np.ndarray, *, bound_th: float = BOUND_TH) -> float:
    """DAVIS boundary F-measure of ``pred`` against ``gt`` (binary masks of one frame).

    Example:
        >>> boundary_f_measure(np.zeros((5, 5)), np.zeros((5, 5)))
        1.0
    """
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: {gt.shape} vs {pred.shape}")
    disk = _disk(boundary_radius(gt.shape, bound_th))
    gt_b, pred_b = boundary_map(gt), boundary_map(pred)
    n_gt, n_pred = np.count_nonzero(gt_b), np.count_nonzero(pred_b)
    if n_pred == 0 or n_gt == 0:
        precision = 1.0 if n_pred == 0 else 0.0
        recall = 1.0 if n_gt == 0 else 0.0
    else:
        precision = np.count_nonzero(pred_b & ndimage.binary_dilation(gt_b, disk)) / n_pred
        recall = np.count_nonzero(gt_b & ndimage.binary_dilation(pred_b, disk)) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


@dataclass
class JFResult:
    """``summary`` (J, F, J&F, J-Recall, F-Recall, objects), ``per_object`` rows and
    ``warnings`` (what was noticed about the input, e.g. masklets naming no GT object)."""

    summary: dict[str, float]
    per_object: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, float]:
        """The summary as a flat dict (JSON-ready)."""
        return dict(self.summary)


def j_and_f(gt: Any, pred: Any, *, bound_th: float = BOUND_TH, skip_first_and_last: bool = True,
            progress: bool = False) -> JFResult:
    """DAVIS J&F of predicted masklets against GT masklets (paths, dicts or ``TrackSet``).

    Example:
        >>> j_and_f("gt.json", "masklets.json").summary["J&F"]          # doctest: +SKIP
    """
    gts = gt if isinstance(gt, TrackSet) else load_tracks(gt, role="gt")
    preds = pred if isinstance(pred, TrackSet) else load_tracks(pred, role="pred", gt=gts)
    by_key = {}
    for track in preds.tracks:
        key = (track.video_id, track.track_id)
        if key in by_key:
            raise InputError(f"two predicted masklets for object {track.track_id} of video "
                             f"{track.video_id}", source=preds.source, record=track.record,
                             field="track_id")
        by_key[key] = track
    notes = []
    gt_keys = {(t.video_id, t.track_id) for t in gts.tracks}
    unmatched = sorted((k for k in by_key if k not in gt_keys), key=repr)
    if unmatched:
        shown = ", ".join(f"video {v} track {t!r}" for v, t in unmatched[:3])
        more = f", ... ({len(unmatched) - 3} more)" if len(unmatched) > 3 else ""
        notes.append(f"{len(unmatched)} of {len(by_key)} predicted masklets name no ground-truth "
                     f"object (video_id, track_id) and were ignored ({shown}{more}); a masklet "
                     f"answers the GT object with its video_id and track_id")
        warnings.warn(notes[-1], stacklevel=2)
    rows = []
    for track in tqdm(gts.tracks, desc="J&F", unit="object", disable=not progress):
        if track.iscrowd:
            continue
        if all(m is None for m in track.masks) and any(b is not None for b in track.boxes):
            raise InputError("J&F needs segmentations; this object has boxes only",
                             source=gts.source, record=track.record, field="segmentations")
        video = gts.videos[track.video_id]
        frames = range(1, video.length - 1) if skip_first_and_last else range(video.length)
        answer = by_key.get((track.video_id, track.track_id))
        empty = np.zeros((video.height, video.width), bool)
        js, fs = [], []
        for f in frames:
            g = empty if track.masks[f] is None else mask_utils.decode(track.masks[f]).astype(bool)
            p = empty if answer is None or answer.masks[f] is None else \
                mask_utils.decode(answer.masks[f]).astype(bool)
            js.append(region_similarity(g, p))
            fs.append(boundary_f_measure(g, p, bound_th=bound_th))
        rows.append({"video_id": track.video_id, "track_id": track.track_id,
                     "frames": len(js), "predicted": answer is not None,
                     "J": float(np.mean(js)) if js else math.nan,
                     "F": float(np.mean(fs)) if fs else math.nan,
                     "J-Recall": float(np.mean(np.array(js) > 0.5)) if js else math.nan,
                     "F-Recall": float(np.mean(np.array(fs) > 0.5)) if fs else math.nan})
    per_object = pd.DataFrame(rows, columns=["video_id", "track_id", "frames", "predicted", "J",
                                             "F", "J-Recall", "F-Recall"])
    scored = per_object.dropna(subset=["J"])
    summary = {name: float(scored[name].mean()) if len(scored) else math.nan
               for name in ("J", "F", "J-Recall", "F-Recall")}
    summary["J&F"] = (summary["J"] + summary["F"]) / 2
    summary["objects"] = float(len(scored))
    return JFResult(summary, per_object, notes)
