"""Track mAP as scored by YouTube-VIS and LV-VIS (the ``youtubevos/cocoapi`` protocol).

Protocol, in our words:

- Track IoU between a predicted and a GT track = (sum over frames of the intersections) /
  (sum over frames of the unions); a frame where only one of them is present adds its area to
  the union. Mask IoU by default, box IoU with ``iou="box"``.
- Per (video, category): predictions sorted by score (stable), at most ``max_dets[-1]`` (100);
  COCO's greedy matching at each IoU threshold 0.50:0.05:0.95 (each prediction, by score,
  takes the unmatched GT of highest IoU >= threshold, preferring non-ignored GT; crowd GT is
  ignored and may absorb several predictions).
- Area ranges apply to a track's mean area over the frames where it is present (zero areas
  are dropped, as YouTube-VIS does); YouTube-VIS's ranges are all / small < 128^2 <= medium <
  256^2 <= large. A GT outside the range is ignored; an unmatched prediction outside it too.
- Precision at the 101 recall points 0:0.01:1 (interpolated, COCO style), AP = mean over
  thresholds, recall points and categories with GT; AR = mean over thresholds and categories
  of the final recall with 1, 10 or 100 predictions per (video, category).
- LV-VIS reports AP over the base categories (``partition`` 0 and 1) and the novel ones
  (2 and 3) besides all: pass ``category_groups`` (:func:`lvvis_category_groups`).

Differences from TrackEval's ``TrackMAP`` (which the tests compare against, with its area
ranges set to YouTube-VIS's and its time ranges off): TrackEval has no maxDets (it keeps
every prediction), lets a crowd GT absorb only one prediction (later ones become false
positives), accepts IoUs within float epsilon below a threshold, treats a match to the
prediction with id 0 as no match, and reports AP per threshold. This module matches the
YouTube-VIS API; on inputs with at most 100 predictions per (video, category) and no IoU
exactly at a threshold and no crowd GT the two agree (see tests/metrics/test_track_map.py).

One quirk of the YouTube-VIS API is *not* reproduced: a match to a GT or prediction whose
annotation id is 0 counts as no match there (matches are stored as ids and tested for
truth); here a match is a match.

Example:
    >>> gt = {"videos": [{"id": 1, "height": 10, "width": 10, "length": 2}],
    ...       "annotations": [{"id": 1, "video_id": 1, "category_id": 1,
    ...                        "bboxes": [[0, 0, 4, 4], [0, 0, 4, 4]]}],
    ...       "categories": [{"id": 1, "name": "cat"}]}
    >>> pred = [{"video_id": 1, "category_id": 1, "score": 0.9,
    ...          "bboxes": [[0, 0, 4, 4], [0, 0, 4, 2]]}]
    >>> res = track_map(gt, pred, iou="box")
    >>> round(res.summary["AP"], 6), round(res.summary["AP50"], 6)   # track IoU 24/32 = 0.75
    (0.6, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils
from tqdm import tqdm

from benchmark.errors import InputError
from benchmark.metrics.tracks import Track, TrackSet, load_tracks

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1)
# YouTube-VIS's area ranges (on the mean frame area); COCO's would be 32^2 / 96^2.
YTVIS_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5 ** 2),
    "small": (0.0, 128.0 ** 2),
    "medium": (128.0 ** 2, 256.0 ** 2),
    "large": (256.0 ** 2, 1e5 ** 2),
}
MAX_DETS: tuple[int, ...] = (1, 10, 100)


@dataclass
class TrackMapResult:
    """Track mAP numbers: ``summary`` (flat, in [0, 1]; -1 where undefined), per-category AP,
    and the raw ``precision`` [T, R, K, A, M] / ``recall`` [T, K, A, M] arrays."""

    summary: dict[str, float]
    per_category: pd.DataFrame
    precision: np.ndarray
    recall: np.ndarray

    def to_dict(self) -> dict[str, float]:
        """The summary as a flat ``{name: value}`` dict (JSON-ready)."""
        return dict(self.summary)


def lvvis_category_groups(categories: Sequence[Mapping[str, Any]]) -> dict[str, set[int]]:
    """LV-VIS's base / novel split from the categories' ``partition`` (0-1 base, 2-3 novel).

    Example:
        >>> lvvis_category_groups([{"id": 1, "partition": 0}, {"id": 2, "partition": 3}])
        {'base': {1}, 'novel': {2}}
    """
    groups: dict[str, set[int]] = {"base": set(), "novel": set()}
    for i, cat in enumerate(categories):
        part = cat.get("partition")
        if part not in (0, 1, 2, 3):
            raise InputError(f"LV-VIS partition must be 0..3, got {part!r}",
                             record=f"categories[{i}]", field="partition")
        groups["base" if part in (0, 1) else "novel"].add(cat["id"])
    return groups


def _frame_areas(track: Track, iou: str) -> np.ndarray:
    """Pixel areas actually used in the union (not the GT file's ``area`` field)."""
    if iou == "mask":
        return np.array([mask_utils.area(m) if m is not None else 0.0 for m in track.masks],
                        dtype=np.float64)
    return np.array([b[2] * b[3] if b is not None else 0.0 for b in track.boxes])


def track_iou_matrix(dts: Sequence[Track], gts: Sequence[Track], *,
                     iou: Literal["mask", "box"] = "mask") -> np.ndarray:
    """Spatio-temporal IoU between every predicted and every GT track of one video.

    Example:
        >>> a = Track(1, 1, 1, [None, None], [[0, 0, 2, 2], None], [4.0, None])
        >>> b = Track(1, 2, 1, [None, None], [[0, 0, 2, 1], [0, 0, 2, 2]], [2.0, 4.0])
        >>> track_iou_matrix([a], [b], iou="box").tolist()   # 2 / (4 + 6 - 2)
        [[0.25]]
    """
    nd, ng = len(dts), len(gts)
    if nd == 0 or ng == 0:
        return np.zeros((nd, ng))
    attr = "masks" if iou == "mask" else "boxes"
    length = len(getattr(gts[0], attr))
    for track in (*dts, *gts):
        if not any(v is not None for v in getattr(track, attr)) and any(
                v is not None for v in (track.boxes if iou == "mask" else track.masks)):
            raise InputError(f"{iou} IoU needs {'segmentations' if iou == 'mask' else 'boxes'}, "
                             f"track {track.track_id} of video {track.video_id} has none",
                             record=track.record, field=attr)
    areas_d = np.stack([_frame_areas(t, iou) for t in dts])
    areas_g = np.stack([_frame_areas(t, iou) for t in gts])
    inter = np.zeros((nd, ng))
    for f in range(length):
        di = [k for k, t in enumerate(dts) if getattr(t, attr)[f] is not None]
        gi = [k for k, t in enumerate(gts) if getattr(t, attr)[f] is not None]
        if not di or not gi:
            continue
        if iou == "mask":
            ious = mask_utils.iou([dts[k].masks[f] for k in di], [gts[k].masks[f] for k in gi],
                                  [0] * len(gi))
            ious = np.asarray(ious, dtype=np.float64).reshape(len(di), len(gi))
            total = areas_d[di, f][:, None] + areas_g[gi, f][None, :]
            # pixel counts are integers: recover the exact intersection from the IoU
            inter[np.ix_(di, gi)] += np.rint(ious * total / (1.0 + ious))
        else:
            bd = np.array([dts[k].boxes[f] for k in di], dtype=np.float64)
            bg = np.array([gts[k].boxes[f] for k in gi], dtype=np.float64)
            w = np.minimum(bd[:, None, 0] + bd[:, None, 2], bg[None, :, 0] + bg[None, :, 2]) \
                - np.maximum(bd[:, None, 0], bg[None, :, 0])
            h = np.minimum(bd[:, None, 1] + bd[:, None, 3], bg[None, :, 1] + bg[None, :, 3]) \
                - np.maximum(bd[:, None, 1], bg[None, :, 1])
            inter[np.ix_(di, gi)] += np.maximum(w, 0) * np.maximum(h, 0)
    union = areas_d.sum(1)[:, None] + areas_g.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray,
           thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching; ``ious`` rows are score-sorted predictions, columns GT sorted with
    ignored GT last. Returns (matched [T, D] bool, ignored-by-match [T, D] bool)."""
    nd, ng = ious.shape
    matched = np.zeros((len(thresholds), nd), dtype=bool)
    dt_ignore = np.zeros((len(thresholds), nd), dtype=bool)
    for ti, thr in enumerate(thresholds):
        gt_taken = np.zeros(ng, dtype=bool)
        for d in range(nd):
            best_iou = min(thr, 1 - 1e-10)
            m = -1
            for g in range(ng):
                if gt_taken[g] and not gt_crowd[g]:
                    continue
                # already matched a regular GT and only ignored GT remain: stop
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                if ious[d, g] < best_iou:
                    continue
                best_iou = ious[d, g]
                m = g
            if m == -1:
                continue
            matched[ti, d] = True
            dt_ignore[ti, d] = gt_ignore[m]
            gt_taken[m] = True
    return matched, dt_ignore


def _in_range(area: float, rng: tuple[float, float]) -> bool:
    return rng[0] <= area <= rng[1]


def _precision_recall(entries: list[dict[str, np.ndarray]], max_det: int,
                      n_thr: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Interpolated precision at the 101 recall points and final recall, per threshold."""
    scores = np.concatenate([e["scores"][:max_det] for e in entries])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["matched"][:, :max_det] for e in entries], axis=1)[:, order]
    ignored = np.concatenate([e["dt_ignore"][:, :max_det] for e in entries], axis=1)[:, order]
    n_gt = int(sum(np.count_nonzero(~e["gt_ignore"]) for e in entries))
    if n_gt == 0:
        return None
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    precision = np.zeros((n_thr, len(RECALL_THRESHOLDS)))
    recall = np.zeros(n_thr)
    for t in range(n_thr):
        nd = tp.shape[1]
        if nd == 0:
            continue
        rc = tp[t] / n_gt
        pr = tp[t] / (tp[t] + fp[t] + np.spacing(1))
        recall[t] = rc[-1]
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope, right to left
        idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        ok = idx < nd
        precision[t, ok] = pr[idx[ok]]
    return precision, recall


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def track_map(
    gt: Any,
    pred: Any,
    *,
    iou: Literal["mask", "box"] = "mask",
    area_ranges: Mapping[str, tuple[float, float]] = YTVIS_AREA_RANGES,
    max_dets: Sequence[int] = MAX_DETS,
    category_groups: Mapping[str, set[int]] | None = None,
    progress: bool = False,
) -> TrackMapResult:
    """YouTube-VIS / LV-VIS track mAP of ``pred`` against ``gt`` (paths, dicts or ``TrackSet``).

    ``area_ranges`` must contain ``"all"``; ``category_groups`` adds ``AP_<group>`` (mean over
    that group's categories, e.g. LV-VIS base / novel). Predictions of a category absent from
    the GT categories are ignored, as in the YouTube-VIS API.

    Example:
        >>> res = track_map("gt.json", "results.json")                    # doctest: +SKIP
        >>> res.summary["AP"], res.per_category.head()                    # doctest: +SKIP
    """
    if "all" not in area_ranges:
        raise ValueError("area_ranges must include 'all'")
    if iou not in ("mask", "box"):
        raise ValueError(f"iou must be 'mask' or 'box', got {iou!r}")
    max_dets = sorted(int(m) for m in max_dets)
    gts = gt if isinstance(gt, TrackSet) else load_tracks(gt, role="gt")
    preds = pred if isinstance(pred, TrackSet) else load_tracks(pred, role="pred", gt=gts,
                                                                require_score=True)
    cat_ids = sorted(gts.categories) if gts.categories else sorted(
        {t.category_id for t in gts.tracks})
    cat_index = {c: k for k, c in enumerate(cat_ids)}
    area_names = list(area_ranges)
    n_thr, n_rec, n_cat = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(cat_ids)
    # per (category, area range): the per-video match records
    entries: list[list[list[dict[str, np.ndarray]]]] = [
        [[] for _ in area_names] for _ in cat_ids]
    gt_by_video, pred_by_video = gts.by_video(), preds.by_video()
    for vid in tqdm(sorted(gts.videos), desc="track mAP", unit="video", disable=not progress):
        video_gt = [t for t in gt_by_video.get(vid, []) if t.category_id in cat_index]
        video_pred = [t for t in pred_by_video.get(vid, []) if t.category_id in cat_index]
        for cat in {t.category_id for t in video_gt} | {t.category_id for t in video_pred}:
            g = [t for t in video_gt if t.category_id == cat]
            order = np.argsort([-t.score for t in video_pred if t.category_id == cat],
                               kind="mergesort")[: max_dets[-1]]
            d_all = [t for t in video_pred if t.category_id == cat]
            d = [d_all[i] for i in order]
            ious = track_iou_matrix(d, g, iou=iou)
            crowd = np.array([t.iscrowd for t in g], dtype=bool)
            for a, name in enumerate(area_names):
                rng = area_ranges[name]
                gt_ignore = crowd | np.array([not _in_range(t.mean_area, rng) for t in g],
                                             dtype=bool)
                gorder = np.argsort(gt_ignore, kind="mergesort")
                matched, dt_ignore = _match(ious[:, gorder], gt_ignore[gorder], crowd[gorder],
                                            IOU_THRESHOLDS)
                out_of_range = np.array([not _in_range(t.mean_area, rng) for t in d], dtype=bool)
                dt_ignore |= ~matched & out_of_range[None, :]
                entries[cat_index[cat]][a].append({
                    "scores": np.array([t.score for t in d], dtype=np.float64),
                    "matched": matched, "dt_ignore": dt_ignore, "gt_ignore": gt_ignore})
    precision = -np.ones((n_thr, n_rec, n_cat, len(area_names), len(max_dets)))
    recall = -np.ones((n_thr, n_cat, len(area_names), len(max_dets)))
    for k in range(n_cat):
        for a in range(len(area_names)):
            if not entries[k][a]:
                continue
            for m, max_det in enumerate(max_dets):
                out = _precision_recall(entries[k][a], max_det, n_thr)
                if out is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = out
    return _summarise(precision, recall, cat_ids, area_names, max_dets, gts, category_groups)


def _summarise(precision: np.ndarray, recall: np.ndarray, cat_ids: list[int],
               area_names: list[str], max_dets: list[int], gts: TrackSet,
               category_groups: Mapping[str, set[int]] | None) -> TrackMapResult:
    a_all, m_top = area_names.index("all"), len(max_dets) - 1
    t50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    t75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))
    summary = {
        "AP": _mean_valid(precision[:, :, :, a_all, m_top]),
        "AP50": _mean_valid(precision[t50, :, :, a_all, m_top]),
        "AP75": _mean_valid(precision[t75, :, :, a_all, m_top]),
    }
    for a, name in enumerate(area_names):
        if name != "all":
            summary[f"AP_{name}"] = _mean_valid(precision[:, :, :, a, m_top])
    for m, max_det in enumerate(max_dets):
        summary[f"AR{max_det}"] = _mean_valid(recall[:, :, a_all, m])
    for a, name in enumerate(area_names):
        if name != "all":
            summary[f"AR_{name}"] = _mean_valid(recall[:, :, a, m_top])
    for group, members in (category_groups or {}).items():
        cols = [k for k, c in enumerate(cat_ids) if c in members]
        summary[f"AP_{group}"] = _mean_valid(precision[:, :, cols, a_all, m_top])
    n_gt = {c: 0 for c in cat_ids}
    for t in gts.tracks:
        if t.category_id in n_gt and not t.iscrowd:
            n_gt[t.category_id] += 1
    per_category = pd.DataFrame({
        "category_id": cat_ids,
        "name": [gts.categories.get(c, {}).get("name", str(c)) for c in cat_ids],
        "num_gt": [n_gt[c] for c in cat_ids],
        "AP": [_mean_valid(precision[:, :, k, a_all, m_top]) for k in range(len(cat_ids))],
        "AP50": [_mean_valid(precision[t50, :, k, a_all, m_top]) for k in range(len(cat_ids))],
    })
    return TrackMapResult(summary, per_category, precision, recall)
