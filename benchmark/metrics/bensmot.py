"""BenSMOT instance captioning (SMOTer, Li et al. 2024): one caption per predicted track, scored
against the ground-truth track it overlaps most, as MaskCaptioner Table 5 reports it.

Two published pipelines exist and differ; ``protocol`` picks one:

- ``"captionformer"`` (default): the official MaskCaptioner/CaptionFormer evaluation that
  produced Table 5 (``evaluate/smot_utils/results2smot_cap.py`` + ``eval_vu.py``). Every
  predicted track is paired with the ground-truth track of its video whose mean box IoU over
  the frames both have a box is highest (a track sharing no frame scores 0; ties go to the
  first ground-truth track; no minimum IoU, so a track overlapping nothing is paired with the
  video's first track). IoU on xywh boxes, 0 when the union is 0. Ground-truth tracks without
  a caption are kept with caption "".
- ``"smoter"``: SMOTer's own code (``byte_rcnn.py`` + ``eval_vu.py``). Ground-truth tracks
  without a caption are left out; tracks sharing no frame are skipped; the highest mean IoU
  wins with ties going to the *last* track; the pair is kept only when that mean is above 0.2;
  IoU with the +1 pixel convention (widths ``x2 - x1 + 1``).

In both, several predicted tracks may pair with one ground-truth track, unpaired tracks of
either side count nowhere, and all pairs of the split go into ONE pycocoevalcap ``Cider()``
call (one reference per pair, captions split on whitespace, no tokenizer, document
frequencies from the pooled pairs) whose mean over pairs is the reported CIDEr (the papers
print it x100). ROUGE-L is pycocoevalcap's ``Rouge`` on the same pairs (beta 1.2, tokens
split on single spaces). Not reproduced: ``eval_vu.py``'s BLEU (nltk ``corpus_bleu`` on raw
strings, i.e. character n-grams) and METEOR (nltk with WordNet data, which cannot be fetched
here). ``score_threshold`` keeps only tracks scoring above it (neither pipeline filters the
caption pairs by score; SMOTer's tracking metrics use 0.4).

Example:
    >>> gt = {"videos": [{"id": 1, "height": 9, "width": 9, "length": 2}],
    ...       "annotations": [{"id": 1, "video_id": 1, "category_id": 1,
    ...                        "bboxes": [[0, 0, 4, 4], [0, 0, 4, 4]], "caption": "a man walks"}]}
    >>> pred = [{"video_id": 1, "category_id": 1, "score": 0.9, "caption": "a man walks",
    ...          "bboxes": [[0, 0, 4, 4], None]}]
    >>> res = bensmot_captions(gt, pred)
    >>> res.summary["pairs"], res.per_pair["mean_iou"].tolist()
    (1.0, [1.0])
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.captions.cider import cider_d
from benchmark.errors import InputError
from benchmark.metrics.tracks import Track, TrackSet, load_tracks

PROTOCOLS = ("captionformer", "smoter")
SMOTER_MIN_IOU = 0.2
ROUGE_BETA = 1.2
PAIR_COLUMNS = ("video_id", "pred_track", "gt_track", "mean_iou", "shared_frames", "gt_caption",
                "pred_caption", "CIDEr", "ROUGE_L")


@dataclass
class BensmotResult:
    """``summary``: CIDEr and ROUGE_L (means over pairs, pycocoevalcap's scale: CIDEr x100 is
    the printed number), pairs, predicted tracks, paired ground-truth tracks; ``per_pair``: one
    row per (predicted track, ground-truth track) pair."""

    summary: dict[str, float]
    per_pair: pd.DataFrame


def track_iou(gt: Track, pred: Track, *, plus_one: bool) -> tuple[float, int]:
    """(mean IoU over the frames where both tracks have a box, number of such frames).

    Example:
        >>> a = Track(1, 1, 1, [], [[0, 0, 2, 2], [0, 0, 2, 2]], [])
        >>> b = Track(1, 2, 1, [], [[0, 0, 2, 2], [1, 0, 2, 2]], [])
        >>> track_iou(a, b, plus_one=False)   # frames: 1.0 and 2/6
        (0.6666666666666666, 2)
    """
    frames = [f for f, (g, p) in enumerate(zip(gt.boxes, pred.boxes)) if g is not None and p is not None]
    if not frames:
        return 0.0, 0
    g = np.array([gt.boxes[f] for f in frames], dtype=np.float64)
    p = np.array([pred.boxes[f] for f in frames], dtype=np.float64)
    one = 1.0 if plus_one else 0.0
    # xywh -> corners; with the +1 convention a box covers x .. x + w inclusive.
    gx2, gy2, px2, py2 = g[:, 0] + g[:, 2], g[:, 1] + g[:, 3], p[:, 0] + p[:, 2], p[:, 1] + p[:, 3]
    iw = np.maximum(0.0, np.minimum(gx2, px2) - np.maximum(g[:, 0], p[:, 0]) + one)
    ih = np.maximum(0.0, np.minimum(gy2, py2) - np.maximum(g[:, 1], p[:, 1]) + one)
    inter = iw * ih
    union = (g[:, 2] + one) * (g[:, 3] + one) + (p[:, 2] + one) * (p[:, 3] + one) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou.mean()), len(frames)


def pair_tracks(gts: Sequence[Track], pred: Track, *, protocol: str) -> tuple[Track, float, int] | None:
    """The ground-truth track (of ``pred``'s video, in annotation order) ``pred`` is scored
    against, with the mean IoU and shared frames, or None when the protocol pairs it with none."""
    if protocol == "captionformer":
        if not gts:
            return None
        scored = [(g, *track_iou(g, pred, plus_one=False)) for g in gts]
        return max(scored, key=lambda s: s[1])  # max keeps the first of equal scores: np.argmax
    best = None
    for g in gts:
        if not g.captions or not g.captions[0]:
            continue  # SMOTer scores only tracks with a caption
        mean, shared = track_iou(g, pred, plus_one=True)
        if shared and (best is None or mean >= best[1]):  # ">=": a tie goes to the later track
            best = (g, mean, shared)
    return best if best is not None and best[1] > SMOTER_MIN_IOU else None


def rouge_l(ref: str, cand: str, *, beta: float = ROUGE_BETA) -> float:
    """pycocoevalcap's ``Rouge`` of one candidate against one reference (tokens split on " ").

    Example:
        >>> round(rouge_l("a man rides a horse", "a man on a horse"), 4)   # LCS "a man a horse"
        0.8
    """
    r, c = ref.split(" "), cand.split(" ")
    lengths = [0] * (len(c) + 1)
    for token in r:  # longest common subsequence, one row at a time
        previous = 0
        for j, other in enumerate(c, start=1):
            current = lengths[j]
            lengths[j] = previous + 1 if token == other else max(lengths[j], lengths[j - 1])
            previous = current
    lcs = lengths[-1]
    precision, recall = lcs / len(c), lcs / len(r)
    if precision == 0 or recall == 0:
        return 0.0
    return ((1 + beta ** 2) * precision * recall) / (recall + beta ** 2 * precision)


def bensmot_captions(gt: Any, pred: Any, *, protocol: str = "captionformer",
                     score_threshold: float | None = None) -> BensmotResult:
    """BenSMOT's instance-caption CIDEr (and ROUGE-L) of ``pred`` against ``gt`` (paths or
    parsed JSON of either layout; see :mod:`benchmark.metrics.tracks`)."""
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}", field="protocol")
    gts = gt if isinstance(gt, TrackSet) else load_tracks(gt, role="gt")
    preds = pred if isinstance(pred, TrackSet) else load_tracks(pred, role="pred", gt=gts)
    by_video: dict[int, list[Track]] = {}
    for track in gts.tracks:
        if len(track.captions) > 1:
            raise InputError("a BenSMOT ground-truth track carries one caption", source=gts.source,
                             record=track.record, field="caption")
        by_video.setdefault(track.video_id, []).append(track)
    kept = [t for t in preds.tracks if score_threshold is None or t.score > score_threshold]
    pairs = []
    for track in kept:
        if len(set(track.captions)) > 1:
            raise InputError(f"a predicted track carries one caption; track {track.track_id} of "
                             f"video {track.video_id} has {len(set(track.captions))} different ones",
                             source=preds.source, record=track.record, field="caption")
        paired = pair_tracks(by_video.get(track.video_id, []), track, protocol=protocol)
        if paired is None:
            continue
        g, mean, shared = paired
        pairs.append({"video_id": track.video_id, "pred_track": track.track_id, "gt_track": g.track_id,
                      "mean_iou": mean, "shared_frames": shared,
                      "gt_caption": g.captions[0] if g.captions else "",
                      "pred_caption": track.captions[0] if track.captions else ""})
    if pairs:
        # One pooled Cider() call: distinct pairs with their multiplicities give its numbers.
        counts = Counter((p["gt_caption"], p["pred_caption"]) for p in pairs)
        distinct = list(counts)
        scores = cider_d([r for r, _ in distinct], [c for _, c in distinct], [counts[k] for k in distinct])
        score_of = dict(zip(distinct, scores.tolist()))
        for p in pairs:
            p["CIDEr"] = score_of[(p["gt_caption"], p["pred_caption"])]
            p["ROUGE_L"] = rouge_l(p["gt_caption"], p["pred_caption"])
    else:
        warnings.warn(f"{preds.source}: no predicted track was paired with a ground-truth track "
                      f"({len(kept)} tracks kept, protocol {protocol}): CIDEr is undefined", stacklevel=2)
    per_pair = pd.DataFrame(pairs, columns=list(PAIR_COLUMNS))
    summary = {
        "CIDEr": float(per_pair["CIDEr"].mean()) if pairs else math.nan,
        "ROUGE_L": float(per_pair["ROUGE_L"].mean()) if pairs else math.nan,
        "pairs": float(len(pairs)),
        "predicted_tracks": float(len(kept)),
        "gt_tracks_paired": float(per_pair[["video_id", "gt_track"]].drop_duplicates().shape[0]),
        "gt_tracks": float(len(gts.tracks)),
    }
    return BensmotResult(summary, per_pair)
