"""The reference scorer's cost profile, for timing comparisons only.

The published CHOTA scorer loops over frames in Python, runs TrackEval's per-frame HOTA
steps with an inner loop over alphas, and scores captions with one pycocoevalcap call per
video and alpha (CIDEr, METEOR through a JVM started once). This module restates that
structure on the same inputs so that ``speed.py`` can time it against ``benchmark.chota`` and
check that both give the same numbers. It is not part of the package.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from scipy.optimize import linear_sum_assignment

from benchmark.structures.boxes import box_iou

EPS = np.finfo("float").eps


def _group(gt: dict, predictions: list, score_threshold: float):
    frames = defaultdict(list)
    for image in gt["images"]:
        frames[image["video_id"]].append(image["id"])
    for ids in frames.values():
        ids.sort()
    gt_by_image, pred_by_image = defaultdict(list), defaultdict(list)
    for a in gt["annotations"]:
        gt_by_image[a["image_id"]].append(a)
    for p in predictions:
        if p["score"] > score_threshold:
            pred_by_image[p["image_id"]].append(p)
    return frames, gt_by_image, pred_by_image


def _sequence(image_ids, gt_by_image, pred_by_image):
    gt_ids = sorted({a["track_id"] for i in image_ids for a in gt_by_image[i]})
    pr_ids = sorted({p["track_id"] for i in image_ids for p in pred_by_image[i]})
    gmap = {t: k for k, t in enumerate(gt_ids)}
    pmap = {t: k for k, t in enumerate(pr_ids)}
    out = []
    for i in image_ids:
        g, p = gt_by_image[i], pred_by_image[i]
        out.append((np.array([gmap[a["track_id"]] for a in g], int),
                    np.array([pmap[b["track_id"]] for b in p], int),
                    box_iou(np.array([a["bbox"] for a in g], np.float32).reshape(-1, 4),
                            np.array([b["bbox"] for b in p], np.float32).reshape(-1, 4)),
                    [a["caption"] for a in g], [b["caption"] for b in p]))
    return len(gt_ids), len(pr_ids), out


def evaluate(gt: dict, predictions: list, alphas, *, score_threshold: float = 0.5,
             meteor: Meteor | None = None) -> dict[str, float]:
    """DetA, AssA, CapA-cider, CapA-meteor (means over alphas) the reference's way."""
    alphas = np.asarray(alphas, dtype=float)
    n_alpha = len(alphas)
    meteor = meteor or Meteor()
    cider = Cider()
    frames, gt_by_image, pred_by_image = _group(gt, predictions, score_threshold)
    total = defaultdict(lambda: np.zeros(n_alpha))
    for video in sorted(frames):
        n_gt, n_pr, seq = _sequence(frames[video], gt_by_image, pred_by_image)
        tp, fn, fp = np.zeros(n_alpha), np.zeros(n_alpha), np.zeros(n_alpha)
        pairs = [[] for _ in alphas]
        n_gt_dets = sum(len(s[0]) for s in seq)
        n_pr_dets = sum(len(s[1]) for s in seq)
        if n_gt_dets == 0 or n_pr_dets == 0:
            total["fn"] += n_gt_dets if n_pr_dets == 0 else 0
            total["fp"] += n_pr_dets if n_gt_dets == 0 else 0
            continue
        potential = np.zeros((n_gt, n_pr))
        gt_count, pr_count = np.zeros((n_gt, 1)), np.zeros((1, n_pr))
        for g, p, sim, _, _ in seq:
            denom = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim
            sim_iou = np.zeros_like(sim)
            mask = denom > 0 + EPS
            sim_iou[mask] = sim[mask] / denom[mask]
            potential[g[:, None], p[None, :]] += sim_iou
            gt_count[g] += 1
            pr_count[0, p] += 1
        alignment = potential / (gt_count + pr_count - potential)
        matches = [np.zeros_like(potential) for _ in alphas]
        for g, p, sim, gcap, pcap in seq:
            if len(g) == 0 or len(p) == 0:
                fn += len(g)
                fp += len(p)
                continue
            rows, cols = linear_sum_assignment(-(alignment[g[:, None], p[None, :]] * sim))
            for a, alpha in enumerate(alphas):
                ok = sim[rows, cols] >= alpha - EPS
                r, c = rows[ok], cols[ok]
                tp[a] += len(r)
                fn[a] += len(g) - len(r)
                fp[a] += len(p) - len(r)
                matches[a][g[r], p[c]] += 1
                pairs[a].extend((gcap[i], pcap[j]) for i, j in zip(r, c) if gcap[i])
        ass = np.array([(m * m / np.maximum(1, gt_count + pr_count - m)).sum() for m in matches])
        total["tp"] += tp
        total["fn"] += fn
        total["fp"] += fp
        total["ass"] += ass  # = AssA * TP, summed over videos
        for a in range(n_alpha):
            if not pairs[a]:
                continue
            gts = {k: [ref] for k, (ref, _) in enumerate(pairs[a])}
            res = {k: [cand] for k, (_, cand) in enumerate(pairs[a])}
            total["caps"][a] += len(pairs[a])
            total["cider"][a] += float(np.sum(cider.compute_score(gts, res)[1]))
            total["meteor"][a] += float(np.sum(meteor.compute_score(gts, res)[1]))
    tp = total["tp"]
    return {
        "DetA": float(np.mean(tp / np.maximum(1, tp + total["fn"] + total["fp"]))),
        "AssA": float(np.mean(total["ass"] / np.maximum(1, tp))),
        "CapA-cider": float(np.mean(np.maximum(1e-10, total["cider"]) / np.maximum(1e-10, total["caps"]))),
        "CapA-meteor": float(np.mean(np.maximum(1e-10, total["meteor"]) / np.maximum(1e-10, total["caps"]))),
    }


if __name__ == "__main__":  # python benchmarks/reference_profile.py GT PRED
    import sys

    print(json.dumps(evaluate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), [0.5])))
