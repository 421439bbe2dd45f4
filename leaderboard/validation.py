"""Full validation of a parsed submission against a track's ground truth, before scoring.

The schema, id and duplicate checks are those of the scorer's own loader
(:func:`benchmark.io.load_predictions`: types, unknown image / video ids, ``video_id`` that
disagrees with its image, NaN or negative boxes, non-finite scores, one detection per track
per frame, per-track list lengths). A leaderboard is stricter than a scorer, so this module
adds: a non-empty list under the record limit, scores in [0, 1], caption length, the
box on every detection of a box track, and the scorer's own geometry checks (every mask
decoded and checked at the frame's size).
The first problem raises an ``InputError`` naming the submission file, the record and the
field.

Example:
    >>> gt = load_ground_truth("gt.json")                                       # doctest: +SKIP
    >>> validate_predictions(preds, gt, iou="box", source="pred.json").n_records  # doctest: +SKIP
    29
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from benchmark.errors import InputError
from benchmark.io import Detections, GroundTruth, load_predictions
from benchmark.scoring import detection_geometry
from leaderboard.submission import Limits


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """What a valid submission holds, for the participant's receipt."""

    n_records: int
    n_detections: int
    n_videos: int
    n_gt_videos: int
    n_above_threshold: int

    def warnings(self, score_threshold: float) -> list[str]:
        """Legal but probably unintended properties of the submission.

        Example:
            >>> ValidationReport(3, 3, 1, 2, 0).warnings(0.5)[0][:36]
            'no prediction has a score above 0.5:'
        """
        out = []
        if self.n_above_threshold == 0:
            out.append(f"no prediction has a score above {score_threshold:g}: the protocol "
                       "drops them all and every metric will be 0")
        if self.n_videos < self.n_gt_videos:
            out.append(f"predictions cover {self.n_videos} of the {self.n_gt_videos} videos; "
                       "the missing videos count as all misses")
        return out


def _records(preds: Any, source: str, limits: Limits) -> list[Any]:
    records = preds.get("annotations") if isinstance(preds, dict) else preds
    if not isinstance(records, list):
        raise InputError("expected a JSON list of predictions (or an object with an "
                         f"'annotations' list), got {type(preds).__name__}", source=source)
    if not records:
        raise InputError("holds no predictions (an empty list would score 0)", source=source)
    if len(records) > limits.max_records:
        raise InputError(f"holds {len(records)} predictions, above the {limits.max_records} "
                         "limit", source=source)
    return records


def _check_records(records: list[Any], source: str, limits: Limits) -> None:
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            continue  # the loader names non-object records
        score = rec.get("score")
        # Non-finite and non-numeric scores are the loader's to report.
        if (isinstance(score, (int, float)) and not isinstance(score, bool)
                and math.isfinite(score) and not 0 <= score <= 1):
            raise InputError(f"must be in [0, 1], got {score}", source=source,
                             record=f"predictions[{i}]", field="score")
        caption = rec.get("caption")
        if isinstance(caption, str) and len(caption) > limits.max_caption_chars:
            raise InputError(f"has {len(caption)} characters, above the "
                             f"{limits.max_caption_chars} limit", source=source,
                             record=f"predictions[{i}]", field="caption")


def _check_geometry(det: Detections, gt: GroundTruth, *, iou: str) -> None:
    if iou == "box":
        # Stricter than the scorer, which boxes a lone mask: a box track scores boxes.
        missing = np.flatnonzero(np.isnan(det.boxes).any(axis=1))
        if len(missing):
            raise InputError("a box track needs a box [x, y, w, h] on every detection",
                             source=det.source, record=det.describe(int(missing[0])),
                             field="bbox")
    # What the scorer computes its IoUs from, with the scorer's own checks: a submission
    # that passes here cannot fail there.
    detection_geometry(det, gt, iou=iou)


def load_valid_predictions(
    preds: Any,
    gt: GroundTruth,
    *,
    iou: str,
    source: str,
    limits: Limits = Limits(),
    score_threshold: float = 0.5,
) -> tuple[ValidationReport, Detections]:
    """:func:`validate_predictions`, also returning the loaded detections (named after
    ``source``), which the scorer takes as they are instead of loading them again.

    Example:
        >>> from benchmark.io import load_ground_truth
        >>> gt = load_ground_truth({"images": [{"id": 7, "video_id": 1}], "annotations": []})
        >>> p = [{"image_id": 7, "track_id": 1, "bbox": [0, 0, 2, 2], "score": 0.9, "caption": "a"}]
        >>> report, det = load_valid_predictions(p, gt, iou="box", source="p.json")
        >>> det.source, det.boxes.tolist()
        ('p.json', [[0.0, 0.0, 2.0, 2.0]])
    """
    records = _records(preds, source, limits)
    _check_records(records, source, limits)
    try:
        det = load_predictions(records, gt, score_threshold=score_threshold)
    except InputError as exc:
        # The loader saw a parsed list: put the participant's file name back in the message.
        raise InputError(exc.message, source=source, record=exc.record, field=exc.field) from None
    det = dataclasses.replace(det, source=source)
    _check_geometry(det, gt, iou=iou)
    report = ValidationReport(
        n_records=len(records), n_detections=len(det),
        n_videos=len(np.unique(det.video)), n_gt_videos=gt.num_videos,
        n_above_threshold=int((det.scores > score_threshold).sum()))
    return report, det


def validate_predictions(
    preds: Any,
    gt: GroundTruth,
    *,
    iou: str,
    source: str,
    limits: Limits = Limits(),
    score_threshold: float = 0.5,
) -> ValidationReport:
    """Validate a parsed submission against the ground truth; raise ``InputError`` if wrong.

    Example:
        >>> from benchmark.io import load_ground_truth
        >>> gt = load_ground_truth({"images": [{"id": 7, "video_id": 1}], "annotations": []})
        >>> p = [{"image_id": 7, "track_id": 1, "bbox": [0, 0, 2, 2], "score": 0.9, "caption": "a"}]
        >>> validate_predictions(p, gt, iou="box", source="p.json").n_records
        1
    """
    return load_valid_predictions(preds, gt, iou=iou, source=source, limits=limits,
                                  score_threshold=score_threshold)[0]
