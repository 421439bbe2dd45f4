"""Is system B better than system A, or is the gap noise? Paired tests over videos.

``compare_systems`` takes scorer results of two or more systems on the same ground truth (one
``benchmark.chota`` run each) and, for every field and every system against the first (the
baseline), reports the difference B - A with

- a paired bootstrap confidence interval: videos are resampled with replacement and the same
  resample is applied to both systems;
- a paired permutation p-value: under "no difference" the two systems' results on a video
  are exchangeable, so each permutation swaps A and B on a random half of the videos; the
  p-value is (1 + permutations at least as extreme) / (1 + permutations), two-sided.

Both work on the scorer's per-video sufficient statistics (counts and sums per video and
alpha, :attr:`ChotaResult.video_stats`): a resample or a permutation sums them over videos
and goes through the scorer's own field formulas, so every field (DetA, AssA, CapA, CHOTA,
HOTA, ...) is exact for it and nothing is scored again.

Example:
    >>> from benchmark import chota
    >>> results = {name: chota("gt.json", path) for name, path in
    ...            {"A": "a.json", "B": "b.json"}.items()}                 # doctest: +SKIP
    >>> compare_systems(results).table.query("field == 'CHOTA'")          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.bias import bootstrap_weights
from benchmark.errors import InputError
from benchmark.scoring import ChotaResult, resample_fields

DEFAULT_FIELDS = ("CHOTA", "CapA", "DetA", "AssA", "HOTA", "LocA")
TABLE_COLUMNS = ("system_a", "system_b", "field", "a", "b", "diff", "ci_low", "ci_high", "p_perm",
                 "significant")


@dataclass
class Comparison:
    """``table``: one row per (baseline, other system, field): both values, ``diff`` = b - a,
    its bootstrap interval and permutation p-value, and whether the interval excludes 0 (and
    p < 1 - confidence); ``settings`` how it was computed."""

    table: pd.DataFrame
    settings: dict[str, Any]


def _aligned_stats(result: ChotaResult, video_ids: Sequence[Any], name: str) -> dict[str, np.ndarray]:
    """A result's per-video statistics, rows in the order of ``video_ids``."""
    rows = pd.Index(result.per_video["video_id"].to_numpy())
    order = rows.get_indexer(pd.Index(video_ids))
    if len(rows) != len(video_ids) or (order < 0).any():
        raise InputError(f"{name}: scored on other videos than the baseline; compare systems on one "
                         "ground truth", field="videos")
    return {k: np.asarray(v)[order] for k, v in result.video_stats.items()}


def permutation_fields(stats_a: Mapping[str, np.ndarray], stats_b: Mapping[str, np.ndarray],
                       swaps: np.ndarray, metrics: Sequence[str]) -> tuple[dict, dict]:
    """Fields (averaged over alphas) of A and B when B's and A's results are exchanged on the
    videos where ``swaps`` (``(permutations, videos)`` of 0/1) is 1.

    Example:
        >>> s = {"HOTA_TP": np.array([[1.0]]), "HOTA_FN": np.array([[0.0]]), "HOTA_FP": np.array([[0.0]]),
        ...      "AssA*TP": np.array([[1.0]])}
        >>> t = {**s, "HOTA_FN": np.array([[1.0]])}
        >>> a, b = permutation_fields(s, t, np.array([[0.0], [1.0]]), [])
        >>> a["DetA"].tolist(), b["DetA"].tolist()
        ([1.0, 0.5], [0.5, 1.0])
    """
    # Both systems' videos side by side: a permutation weighs A's or B's copy of each video.
    both = {k: np.concatenate([stats_a[k], stats_b[k]]) for k in stats_a}
    keep = 1.0 - swaps
    return (resample_fields(both, metrics, np.concatenate([keep, swaps], axis=-1)),
            resample_fields(both, metrics, np.concatenate([swaps, keep], axis=-1)))


def compare_systems(results: Mapping[str, ChotaResult], *, fields: Sequence[str] = DEFAULT_FIELDS,
                    num_bootstrap: int = 1000, num_permutations: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> Comparison:
    """Every system against the first one (see the module docstring)."""
    if len(results) < 2:
        raise InputError("need at least two systems to compare", field="predictions")
    if not 0 < confidence < 1:
        raise InputError("confidence must be in (0, 1)", field="confidence")
    names = list(results)
    base = results[names[0]]
    for name in names[1:]:
        other = results[name]
        if tuple(other.caption_metrics) != tuple(base.caption_metrics) or \
                not np.array_equal(np.asarray(other.alphas), np.asarray(base.alphas)):
            raise InputError(f"{name}: scored with other caption metrics or alphas than {names[0]}",
                             field="settings")
    video_ids = base.per_video["video_id"].tolist()
    stats = {name: _aligned_stats(results[name], video_ids, name) for name in names}
    fields = [f for f in fields if f in base.to_dict()]
    weights = bootstrap_weights(len(video_ids), num_bootstrap, seed)
    boot = {name: resample_fields(stats[name], base.caption_metrics, weights) for name in names}
    swaps = np.random.default_rng(seed + 1).integers(0, 2, size=(num_permutations, len(video_ids))).astype(float)
    low_q, high_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    rows = []
    for name in names[1:]:
        perm_a, perm_b = permutation_fields(stats[names[0]], stats[name], swaps, base.caption_metrics)
        for f in fields:
            a, b = float(base[f]), float(results[name][f])
            diff = b - a
            low, high = np.quantile(boot[name][f] - boot[names[0]][f], [low_q, high_q])
            extreme = np.abs(perm_b[f] - perm_a[f]) >= abs(diff) - 1e-12
            p = (1 + int(extreme.sum())) / (1 + num_permutations)
            rows.append({"system_a": names[0], "system_b": name, "field": f, "a": a, "b": b, "diff": diff,
                         "ci_low": float(low), "ci_high": float(high), "p_perm": p,
                         "significant": bool((low > 0 or high < 0) and p < 1 - confidence)})
    settings = {"baseline": names[0], "systems": names, "videos": len(video_ids),
                "num_bootstrap": num_bootstrap, "num_permutations": num_permutations,
                "confidence": confidence, "seed": seed, "alphas": [float(a) for a in base.alphas]}
    return Comparison(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), settings)
