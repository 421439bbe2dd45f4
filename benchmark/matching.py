"""HOTA matching of one video, the core of CHOTA (a pure function of per-sequence arrays).

This is TrackEval's HOTA (Luiten et al., IJCV 2021) as the reference CHOTA scorer runs it,
restated on flat arrays: every (ground-truth, prediction) pair that shares a frame is one
entry, so the similarities, the global alignment and all alphas are computed for a whole
video at once; only the per-frame Hungarian assignment is a loop (it must be: each frame is
its own assignment problem). The steps and their floating-point types follow the reference
(box IoU in float32, alignment accumulated in float64) so that threshold decisions agree bit
for bit.

Example:
    >>> seq = SequenceInput(num_frames=1, gt_frame=np.array([0]), gt_track=np.array([0]),
    ...     gt_caption=np.array([0]), pred_frame=np.array([0]), pred_track=np.array([0]),
    ...     pred_caption=np.array([1]), similarity=pair_similarity_boxes(
    ...         np.array([0]), np.array([0]), 1, np.array([[0, 0, 2, 2]], np.float32),
    ...         np.array([[0, 0, 2, 1]], np.float32))[1])
    >>> counts = match_sequence(seq, np.array([0.5]))
    >>> counts.tp.tolist(), counts.loc_a.tolist(), counts.caption_pairs.tolist()
    ([1.0], [0.5], [[0, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from benchmark.structures.boxes import paired_box_iou
from benchmark.structures.masks import mask_iou

EPS = np.finfo("float").eps

# The 19 alphas of TrackEval's HOTA, generated exactly as TrackEval does (np.arange, so
# e.g. 0.15000000000000002): the threshold test compares against these very values.
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)


@dataclass
class SequenceInput:
    """One video's detections, as the matcher needs them.

    ``*_frame`` are frame positions sorted ascending, ``*_track`` contiguous track indices
    (0..n_tracks-1), ``*_caption`` caption ids (-1 for an uncaptioned ground-truth box) and
    ``similarity`` the IoU of every same-frame pair, in the order of :func:`frame_pairs`.
    """

    num_frames: int
    gt_frame: np.ndarray
    gt_track: np.ndarray
    gt_caption: np.ndarray
    pred_frame: np.ndarray
    pred_track: np.ndarray
    pred_caption: np.ndarray
    similarity: np.ndarray


@dataclass
class SequenceCounts:
    """Per-alpha results of one video (arrays of length ``len(alphas)``).

    ``loc_a``, ``ass_a``, ``ass_re`` and ``ass_pr`` are the video's own ratios, as TrackEval
    returns them; the counts are sums. ``caption_pairs`` lists the distinct (gt caption id,
    predicted caption id) pairs of true positives with a captioned ground truth, and
    ``caption_counts[a, k]`` how many true positives at alpha ``a`` have pair ``k``.
    """

    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    loc_a: np.ndarray
    ass_a: np.ndarray
    ass_re: np.ndarray
    ass_pr: np.ndarray
    caption_pairs: np.ndarray
    caption_counts: np.ndarray


def frame_pairs(gt_frame: np.ndarray, pred_frame: np.ndarray,
                num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(gt, pred)`` of every same-frame pair, frame by frame, row-major in each frame.

    Both inputs must be sorted by frame. Within a frame, pair ``k`` is ground truth
    ``k // n_pred`` and prediction ``k % n_pred``, i.e. the flattened similarity matrix.

    Example:
        >>> frame_pairs(np.array([0, 0]), np.array([0, 1]), 2)
        (array([0, 1]), array([0, 0]))
    """
    n_gt = np.bincount(gt_frame, minlength=num_frames)
    n_pred = np.bincount(pred_frame, minlength=num_frames)
    gt_start = np.cumsum(n_gt) - n_gt
    pred_start = np.cumsum(n_pred) - n_pred
    n_pairs = n_gt * n_pred
    pair_frame = np.repeat(np.arange(num_frames), n_pairs)
    k = np.arange(int(n_pairs.sum())) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    width = n_pred[pair_frame]
    return gt_start[pair_frame] + k // width, pred_start[pair_frame] + k % width


def pair_similarity_boxes(gt_frame: np.ndarray, pred_frame: np.ndarray, num_frames: int,
                          gt_boxes: np.ndarray, pred_boxes: np.ndarray
                          ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Same-frame pairs and their float32 box IoU."""
    pairs = frame_pairs(gt_frame, pred_frame, num_frames)
    return pairs, paired_box_iou(gt_boxes[pairs[0]], pred_boxes[pairs[1]])


def pair_similarity_masks(gt_frame: np.ndarray, pred_frame: np.ndarray, num_frames: int,
                          gt_masks: list, pred_masks: list
                          ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Same-frame pairs and their float64 mask IoU (one pycocotools call per frame)."""
    pairs = frame_pairs(gt_frame, pred_frame, num_frames)
    gt_bounds = np.searchsorted(gt_frame, np.arange(num_frames + 1))
    pred_bounds = np.searchsorted(pred_frame, np.arange(num_frames + 1))
    blocks = []
    for f in np.flatnonzero((np.diff(gt_bounds) > 0) & (np.diff(pred_bounds) > 0)):
        blocks.append(mask_iou(gt_masks[gt_bounds[f]:gt_bounds[f + 1]],
                               pred_masks[pred_bounds[f]:pred_bounds[f + 1]]).ravel())
    similarity = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float64)
    return pairs, similarity


def _row_and_column_sums(sim: np.ndarray, pair_gt: np.ndarray, pair_pred: np.ndarray,
                         n_gt: int, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair row sum and column sum of each frame's similarity matrix, bit-identical to
    the reference's ``similarity.sum(1)`` and ``similarity.sum(0)`` per frame.

    The order of floating-point additions matters (a different last bit can flip a
    near-tied assignment): numpy sums a contiguous row pairwise, which stacking the rows of
    equal width and summing along axis 1 reproduces, and sums down a column one row at a
    time, which ``np.add.at`` in pair order (row-major) reproduces.
    """
    if len(sim) == 0:  # ground truth and predictions never share a frame
        return sim, sim
    row = np.zeros(n_gt, dtype=sim.dtype)
    starts = np.flatnonzero(np.r_[True, pair_gt[1:] != pair_gt[:-1]])  # one run per gt box
    widths = np.diff(np.r_[starts, len(sim)])
    for width in np.unique(widths).tolist():
        runs = starts[widths == width]
        row[pair_gt[runs]] = sim[runs[:, None] + np.arange(width)].sum(axis=1)
    column = np.zeros(n_pred, dtype=sim.dtype)
    np.add.at(column, pair_pred, sim)
    return row[pair_gt], column[pair_pred]


def _assign(score: np.ndarray, gt_frame: np.ndarray, pred_frame: np.ndarray,
            num_frames: int) -> np.ndarray:
    """Per-frame Hungarian assignment maximising ``score``; returns the matched pair indices."""
    n_gt = np.bincount(gt_frame, minlength=num_frames)
    n_pred = np.bincount(pred_frame, minlength=num_frames)
    n_pairs = n_gt * n_pred
    start = np.cumsum(n_pairs) - n_pairs
    single = np.flatnonzero(n_pairs == 1)  # a 1x1 problem is its own assignment
    several = np.flatnonzero(n_pairs > 1)
    cost = -score  # once for the video, not per frame
    # Per frame only the solve: Python ints in, rows and columns out; the pair indices are
    # computed for all frames at once (per-frame numpy calls cost more than the solves).
    starts, heights, widths = start[several], n_gt[several], n_pred[several]
    solved_rows, solved_cols = [], []
    for s, rows, cols in zip(starts.tolist(), heights.tolist(), widths.tolist()):
        r, c = linear_sum_assignment(cost[s:s + rows * cols].reshape(rows, cols))
        solved_rows.append(r)
        solved_cols.append(c)
    per_frame = np.minimum(heights, widths)  # a solve matches min(rows, cols) pairs
    out = np.concatenate([start[single]] + ([
        np.repeat(starts, per_frame) + np.concatenate(solved_rows) * np.repeat(widths, per_frame)
        + np.concatenate(solved_cols)] if len(several) else []))
    out.sort()
    return out


@dataclass
class Assignment:
    """The matching of one video, the same at every alpha: the ground-truth and predicted
    detection of each matched pair (one per frame at most per detection) and their similarity.
    A matched pair is a true positive at alpha where ``similarity >= alpha - EPS``."""

    gt: np.ndarray
    pred: np.ndarray
    similarity: np.ndarray


def assign_sequence(seq: SequenceInput) -> Assignment:
    """TrackEval's global alignment and per-frame Hungarian assignment of one video (both
    sides non-empty).

    Example:
        >>> seq = SequenceInput(num_frames=1, gt_frame=np.array([0, 0]), gt_track=np.array([0, 1]),
        ...     gt_caption=np.array([0, 0]), pred_frame=np.array([0]), pred_track=np.array([0]),
        ...     pred_caption=np.array([0]), similarity=np.array([0.2, 0.9]))
        >>> a = assign_sequence(seq)
        >>> a.gt.tolist(), a.pred.tolist(), a.similarity.tolist()
        ([1], [0], [0.9])
    """
    n_gt, n_pred = len(seq.gt_frame), len(seq.pred_frame)
    n_gt_ids = int(seq.gt_track.max()) + 1
    n_pred_ids = int(seq.pred_track.max()) + 1
    pair_gt, pair_pred = frame_pairs(seq.gt_frame, seq.pred_frame, seq.num_frames)
    sim = seq.similarity

    # Global alignment: per frame, sim / (row sum + column sum - sim), accumulated per id pair.
    row_sum, col_sum = _row_and_column_sums(sim, pair_gt, pair_pred, n_gt, n_pred)
    denom = col_sum + row_sum - sim
    ok = denom > 0 + EPS
    sim_iou = np.zeros_like(sim)
    sim_iou[ok] = sim[ok] / denom[ok]
    id_pair = seq.gt_track[pair_gt] * n_pred_ids + seq.pred_track[pair_pred]
    potential = np.bincount(id_pair, weights=sim_iou.astype(np.float64),
                            minlength=n_gt_ids * n_pred_ids).reshape(n_gt_ids, n_pred_ids)
    gt_count = np.bincount(seq.gt_track, minlength=n_gt_ids).astype(np.float64)
    pred_count = np.bincount(seq.pred_track, minlength=n_pred_ids).astype(np.float64)
    alignment = potential / (gt_count[:, None] + pred_count[None, :] - potential)

    score = alignment.ravel()[id_pair] * sim
    matched = _assign(score, seq.gt_frame, seq.pred_frame, seq.num_frames)
    return Assignment(gt=pair_gt[matched], pred=pair_pred[matched], similarity=sim[matched])


def match_sequence(seq: SequenceInput, alphas: np.ndarray) -> SequenceCounts:
    """HOTA counts and caption pairs of one video at each alpha (TrackEval's eval_sequence).

    Example: see the module docstring.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    n_alpha = len(alphas)
    n_gt, n_pred = len(seq.gt_frame), len(seq.pred_frame)
    zeros = np.zeros(n_alpha)
    if n_pred == 0 or n_gt == 0:
        # TrackEval's early exits: all misses (or all false positives), LocA 1.
        return SequenceCounts(tp=zeros.copy(), fn=np.full(n_alpha, float(n_gt)),
                              fp=np.full(n_alpha, float(n_pred) if n_gt == 0 and n_pred else 0.0),
                              loc_a=np.ones(n_alpha), ass_a=zeros.copy(), ass_re=zeros.copy(),
                              ass_pr=zeros.copy(), caption_pairs=np.zeros((0, 2), np.int64),
                              caption_counts=np.zeros((n_alpha, 0), np.int64))
    n_gt_ids = int(seq.gt_track.max()) + 1
    n_pred_ids = int(seq.pred_track.max()) + 1
    matching = assign_sequence(seq)
    gt_count = np.bincount(seq.gt_track, minlength=n_gt_ids).astype(np.float64)
    pred_count = np.bincount(seq.pred_track, minlength=n_pred_ids).astype(np.float64)
    id_pair_matched = seq.gt_track[matching.gt] * n_pred_ids + seq.pred_track[matching.pred]

    # Every alpha at once: a matched pair is a true positive where sim >= alpha - eps.
    matched_sim = matching.similarity
    is_tp = matched_sim[:, None] >= (alphas - EPS)[None, :]
    tp = is_tp.sum(axis=0).astype(np.float64)
    loc_sum = (np.where(is_tp, matched_sim[:, None].astype(np.float64), 0.0)).sum(axis=0)
    n_cells = n_gt_ids * n_pred_ids
    tp_rows, tp_alpha = np.nonzero(is_tp)
    match_counts = np.bincount(tp_alpha * n_cells + id_pair_matched[tp_rows],
                               minlength=n_alpha * n_cells).reshape(n_alpha, n_gt_ids,
                                                                    n_pred_ids).astype(np.float64)
    safe_tp = np.maximum(1.0, tp)
    ass_a = (match_counts * match_counts / np.maximum(
        1.0, gt_count[:, None] + pred_count[None, :] - match_counts)).sum(axis=(1, 2)) / safe_tp
    ass_re = (match_counts * match_counts / np.maximum(1.0, gt_count)[:, None]
              ).sum(axis=(1, 2)) / safe_tp
    ass_pr = (match_counts * match_counts / np.maximum(1.0, pred_count)[None, :]
              ).sum(axis=(1, 2)) / safe_tp

    # Caption pairs of true positives whose ground truth has a caption.
    captioned = seq.gt_caption[matching.gt] >= 0
    pair_ids = np.stack([seq.gt_caption[matching.gt], seq.pred_caption[matching.pred]],
                        axis=1)[captioned]
    caption_pairs, inverse = np.unique(pair_ids, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    cap_rows, cap_alpha = np.nonzero(is_tp[captioned])
    caption_counts = np.bincount(cap_alpha * len(caption_pairs) + inverse[cap_rows],
                                 minlength=n_alpha * len(caption_pairs)
                                 ).reshape(n_alpha, len(caption_pairs))
    return SequenceCounts(
        tp=tp, fn=n_gt - tp, fp=n_pred - tp,
        loc_a=np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp),
        ass_a=ass_a, ass_re=ass_re, ass_pr=ass_pr,
        caption_pairs=caption_pairs.astype(np.int64), caption_counts=caption_counts)
