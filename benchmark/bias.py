"""Does evaluating on synthetic captions change the verdict? (MaskCaptioner Table 6, generalised)

Given the same videos captioned twice, automatically (a VLM) and manually, and two or more
systems' predictions, ``compare_ground_truths`` scores every system under both ground truths
with ``benchmark.chota`` and reports:

- CapA / CHOTA (and DetA, AssA, each CapA-metric) of every system under both GTs, and the
  change manual - automatic per system, with a bootstrap confidence interval;
- agreement of the two rankings (Kendall tau, scipy);
- paired bootstrap confidence intervals over videos for the difference between every two
  systems under each GT. Resampling reuses the per-video sufficient statistics of the
  scorer (TP, FN, FP, TP-weighted AssA, TP_with_caps, per-metric caption score sums): the
  scorer runs once per (system, GT), never per resample. One alpha only (default 0.5, as
  published), because per-video fields averaged over several alphas are not sufficient;
- caption statistics of both GTs (length, vocabulary, how often the category is named).

Example:
    >>> result = compare_ground_truths("auto_gt.json", "manual_gt.json",
    ...     {"A": "a.json", "B": "b.json"}, caption_metrics=("cider",))   # doctest: +SKIP
    >>> write_report(result, "bias_report/")                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmark.errors import InputError
from benchmark.io import read_json

OFFICIAL_METRICS = ("cider", "meteor", "spice")
GTS = ("automatic", "manual")
HEADLINE = ("CapA", "CHOTA")


@dataclass
class BiasResult:
    """Everything ``compare_ground_truths`` measured; ``to_dict`` is what the JSON holds.

    ``scores``: one row per (system, gt). ``changes``: one row per system and field with the
    automatic and manual values, ``delta`` = manual - automatic and its bootstrap CI.
    ``pairwise``: one row per (gt, field, system_a, system_b) with ``diff`` = a - b, its CI and
    a two-sided bootstrap p-value. ``rank_agreement``: Kendall tau per field.
    """

    systems: list[str]
    caption_metrics: tuple[str, ...]
    scores: pd.DataFrame
    changes: pd.DataFrame
    pairwise: pd.DataFrame
    rank_agreement: dict[str, dict[str, float]]
    caption_stats: dict[str, dict[str, float]]
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes null)."""
        def records(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records"))

        return {
            "settings": self.settings, "systems": self.systems, "scores": records(self.scores),
            "changes": records(self.changes), "pairwise": records(self.pairwise),
            "rank_agreement": _nan_to_none(self.rank_agreement),
            "caption_stats": _nan_to_none(self.caption_stats), "warnings": self.warnings,
        }


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ------------------------------------------------------------------ sufficient statistics

def video_statistics(per_video: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per-video sums that add up across videos: TP, FN, FP, AssA*TP, TP_with_caps and, per
    caption metric, the sum of pair scores (``CapA-m * TP_with_caps``), indexed by video_id.

    Example:
        >>> pv = pd.DataFrame({"video_id": [1], "HOTA_TP": [4.0], "HOTA_FN": [1.0],
        ...     "HOTA_FP": [0.0], "AssA": [0.5], "TP_with_caps": [2.0], "CapA-cider": [0.3]})
        >>> video_statistics(pv, ["cider"]).loc[1].tolist()
        [4.0, 1.0, 0.0, 2.0, 2.0, 0.6]
    """
    needed = ["video_id", "HOTA_TP", "HOTA_FN", "HOTA_FP", "AssA", "TP_with_caps"] + [f"CapA-{m}" for m in metrics]
    missing = [c for c in needed if c not in per_video.columns]
    if missing:
        raise InputError(f"the scorer's per-video table lacks {missing}", field="per_video")
    tp = per_video["HOTA_TP"].to_numpy(float)
    caps = per_video["TP_with_caps"].to_numpy(float)
    out = pd.DataFrame({
        "TP": tp, "FN": per_video["HOTA_FN"].to_numpy(float), "FP": per_video["HOTA_FP"].to_numpy(float),
        "AssA_x_TP": np.nan_to_num(per_video["AssA"].to_numpy(float)) * tp, "TP_with_caps": caps,
    }, index=per_video["video_id"].to_numpy())
    for m in metrics:
        # A video without captioned TPs has CapA-m = 1 by convention but contributes nothing.
        # A zero sum is stored as 1e-10 / TP_with_caps by the scorer's floor: undo it.
        sums = np.where(caps > 0, np.nan_to_num(per_video[f"CapA-{m}"].to_numpy(float)) * caps, 0.0)
        out[f"sum-{m}"] = np.where(sums > 1e-9, sums, 0.0)
    return out


def fields_from_sums(sums: np.ndarray, metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """DetA, AssA, CapA-m, CapA, CHOTA from summed statistics (columns as in
    ``video_statistics``; leading axes are kept, e.g. bootstrap replicates).

    Example:
        >>> out = fields_from_sums(np.array([4.0, 1.0, 0.0, 2.0, 2.0, 0.6]), ["cider"])
        >>> round(float(out["DetA"]), 3), round(float(out["CHOTA"]), 4)
        (0.8, 0.4932)
    """
    tp, fn, fp, ass, caps = (sums[..., i] for i in range(5))
    out = {"DetA": tp / np.maximum(1.0, tp + fn + fp), "AssA": ass / np.maximum(1.0, tp)}
    for i, m in enumerate(metrics):
        # No captioned TP at all: 1e-10 / 1e-10 = 1, the reference's convention.
        out[f"CapA-{m}"] = np.maximum(1e-10, sums[..., 5 + i]) / np.maximum(1e-10, caps)
    out["CapA"] = np.mean([out[f"CapA-{m}"] for m in metrics], axis=0)
    out["CHOTA"] = np.cbrt(out["DetA"] * out["AssA"] * out["CapA"])
    return out


def bootstrap_weights(num_videos: int, num_samples: int, seed: int) -> np.ndarray:
    """``(num_samples, num_videos)`` counts of each video in each resample (with replacement)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_videos, np.full(num_videos, 1.0 / num_videos), size=num_samples).astype(float)


# ------------------------------------------------------------------ caption statistics

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _category_pattern(name: str) -> re.Pattern:
    # LVIS names: "baseball_bat", "bow_(weapon)" -> "baseball bat", "bow"; plural allowed.
    name = re.sub(r"\(.*?\)", " ", name).replace("_", " ").strip().lower()
    return re.compile(r"\b" + r"\s+".join(map(re.escape, name.split())) + r"(s|es)?\b")


def caption_statistics(gt: Any) -> dict[str, float]:
    """Statistics of the captions of one ground truth (COCO-video or per-track layout): one
    caption per captioned track (its distinct non-empty captions each count once).

    Example:
        >>> gt = {"videos": [{"id": 1}], "categories": [{"id": 1, "name": "dog"}],
        ...       "annotations": [{"video_id": 1, "track_id": 1, "category_id": 1,
        ...                        "caption": "Two dogs run."}]}
        >>> caption_statistics(gt)["category_named"]
        1.0
    """
    data, source = read_json(gt, what="ground truth") if not isinstance(gt, dict) else (gt, "<dict>")
    names = {c.get("id"): str(c.get("name", "")) for c in data.get("categories", [])}
    seen: set[tuple] = set()
    lengths, named, vocabulary = [], [], set()
    for i, ann in enumerate(data.get("annotations", [])):
        caption = ann.get("caption") or ""
        if not isinstance(caption, str):
            raise InputError("caption must be a string", source=source, record=i, field="caption")
        if not caption.strip():
            continue
        track = (ann.get("video_id"), ann.get("track_id", ann.get("id", i)), caption)
        if track in seen:
            continue
        seen.add(track)
        words = _WORD.findall(caption.lower())
        lengths.append(len(words))
        vocabulary.update(words)
        name = names.get(ann.get("category_id"))
        if name:
            named.append(bool(_category_pattern(name).search(caption.lower())))
    lengths_arr = np.asarray(lengths, float)
    return {
        "captions": len(lengths),
        "mean_words": float(lengths_arr.mean()) if lengths else float("nan"),
        "median_words": float(np.median(lengths_arr)) if lengths else float("nan"),
        "std_words": float(lengths_arr.std()) if lengths else float("nan"),
        "vocabulary": len(vocabulary),
        "type_token_ratio": len(vocabulary) / lengths_arr.sum() if lengths_arr.sum() else float("nan"),
        "category_named": float(np.mean(named)) if named else float("nan"),
        "lengths": [int(v) for v in lengths],
    }


# ------------------------------------------------------------------ the comparison

def compare_ground_truths(
    automatic: Any,
    manual: Any,
    predictions: Mapping[str, Any],
    *,
    caption_metrics: Sequence[str] = OFFICIAL_METRICS,
    iou: str = "box",
    alpha: float = 0.5,
    score_threshold: float = 0.5,
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    scorer_options: Mapping[str, Any] | None = None,
) -> BiasResult:
    """Score every system under both GTs and compare; see the module docstring.

    ``automatic``/``manual``: GT paths or dicts over the same videos. ``predictions``: system
    name -> prediction path/list. ``scorer_options``: extra keyword arguments for
    ``benchmark.chota`` (e.g. ``cache``, ``num_workers``).
    """
    from benchmark import chota
    from tqdm import tqdm

    if len(predictions) < 2:
        raise InputError("need at least two systems to compare", field="predictions")
    if not caption_metrics:
        raise InputError("need at least one caption metric", field="caption_metrics")
    if not 0 < confidence < 1:
        raise InputError("confidence must be in (0, 1)", field="confidence")
    metrics = tuple(caption_metrics)
    systems = list(predictions)
    gts = {"automatic": automatic, "manual": manual}
    stats: dict[tuple[str, str], pd.DataFrame] = {}
    rows, warnings = [], []
    jobs = [(g, s) for g in GTS for s in systems]
    for g, s in tqdm(jobs, desc="scoring", disable=not progress):
        res = chota(gts[g], predictions[s], iou=iou, alphas=(alpha,), caption_metrics=metrics,
                    score_threshold=score_threshold, **dict(scorer_options or {}))
        stats[g, s] = video_statistics(res.per_video, metrics)
        rows.append({"system": s, "gt": g, **{k: v for k, v in res.to_dict().items()
                                              if k in ("DetA", "AssA", "CapA", "CHOTA") or k.startswith("CapA-")}})
        warnings += [f"{s} / {g}: {w}" for w in res.warnings]
    scores = pd.DataFrame(rows)

    videos = stats["automatic", systems[0]].index
    if set(stats["manual", systems[0]].index) != set(videos):
        raise InputError("the automatic and manual ground truths do not cover the same videos", field="videos")
    stacked = {key: df.loc[videos].to_numpy(float) for key, df in stats.items()}
    fields = ["DetA", "AssA", *[f"CapA-{m}" for m in metrics], "CapA", "CHOTA"]

    # The sums must reproduce the scorer's own totals, otherwise the bootstrap is meaningless.
    for (g, s), array in stacked.items():
        mine = fields_from_sums(array.sum(axis=0), metrics)
        theirs = scores[(scores["system"] == s) & (scores["gt"] == g)].iloc[0]
        for name in fields:
            if not np.isclose(mine[name], theirs[name], rtol=1e-4, atol=1e-6):
                warnings.append(f"{s} / {g}: {name} from per-video sums {float(mine[name]):.6f} "
                                f"!= scorer {theirs[name]:.6f}; confidence intervals may be off")

    weights = bootstrap_weights(len(videos), num_bootstrap, seed)
    boot = {key: fields_from_sums(weights @ array, metrics) for key, array in stacked.items()}
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2

    def interval(samples: np.ndarray) -> dict[str, float]:
        lo, hi = np.quantile(samples, [lo_q, hi_q])
        p = min(1.0, 2 * min(np.mean(samples <= 0), np.mean(samples >= 0)))
        return {"ci_low": float(lo), "ci_high": float(hi), "p_boot": float(p)}

    def value(s: str, g: str, name: str) -> float:
        return float(scores[(scores["system"] == s) & (scores["gt"] == g)].iloc[0][name])

    changes = pd.DataFrame([
        {"system": s, "field": name, "automatic": value(s, "automatic", name), "manual": value(s, "manual", name),
         "delta": value(s, "manual", name) - value(s, "automatic", name),
         **interval(boot["manual", s][name] - boot["automatic", s][name])}
        for s in systems for name in fields
    ])
    pairwise = pd.DataFrame([
        {"gt": g, "field": name, "system_a": a, "system_b": b, "diff": value(a, g, name) - value(b, g, name),
         **interval(boot[g, a][name] - boot[g, b][name])}
        for g in GTS for name in HEADLINE for i, a in enumerate(systems) for b in systems[i + 1:]
    ])
    rank_agreement = {}
    for name in fields:
        auto = [value(s, "automatic", name) for s in systems]
        man = [value(s, "manual", name) for s in systems]
        tau, p = kendalltau(auto, man)
        rank_agreement[name] = {"kendall_tau": float(tau), "p_value": float(p)}
    settings = {"caption_metrics": list(metrics), "iou": iou, "alpha": alpha, "score_threshold": score_threshold,
                "num_bootstrap": num_bootstrap, "confidence": confidence, "seed": seed, "videos": len(videos)}
    return BiasResult(
        systems=systems, caption_metrics=metrics, scores=scores, changes=changes, pairwise=pairwise,
        rank_agreement=rank_agreement,
        caption_stats={g: caption_statistics(gts[g]) for g in GTS}, settings=settings, warnings=warnings,
    )


# ------------------------------------------------------------------ report

def _table(df: pd.DataFrame, floats: str = "{:.4f}") -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    body = "\n".join(
        "| " + " | ".join(floats.format(v) if isinstance(v, float) else str(v) for v in row) + " |"
        for row in df.itertuples(index=False)
    )
    return head + body + "\n"


def _plots(result: BiasResult, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(result.systems))
    for ax, name in zip(axes, HEADLINE):
        for k, g in enumerate(GTS):
            vals = [result.scores[(result.scores["system"] == s) & (result.scores["gt"] == g)][name].iloc[0] for s in result.systems]
            ax.bar(x + (k - 0.5) * 0.4, vals, 0.4, label=f"{g} captions")
        ax.set_xticks(x, result.systems, rotation=30, ha="right")
        ax.set_title(name)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=120)
    plt.close(fig)
    names.append("scores.png")

    if len(result.pairwise):
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.25 * len(result.pairwise) + 2.5), sharey=True)
        for ax, name in zip(axes, HEADLINE):
            part = result.pairwise[result.pairwise["field"] == name].reset_index(drop=True)
            for k, (g, color) in enumerate(zip(GTS, ("tab:blue", "tab:orange"))):
                sub = part[part["gt"] == g]
                y = np.arange(len(sub)) + (k - 0.5) * 0.3
                # The percentile interval need not contain the point estimate: draw it as is.
                ax.hlines(y, sub.ci_low, sub.ci_high, color=color)
                ax.plot(sub["diff"], y, "o", color=color, label=f"{g} captions")
            labels = [f"{a} - {b}" for a, b in part[part["gt"] == GTS[0]][["system_a", "system_b"]].itertuples(index=False)]
            ax.set_yticks(np.arange(len(labels)), labels)
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_title(f"{name} difference ({result.settings['confidence']:.0%} CI)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "pairwise.png", dpi=120)
        plt.close(fig)
        names.append("pairwise.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for g in GTS:
        lengths = result.caption_stats[g]["lengths"]
        if lengths:
            ax.hist(lengths, bins=range(0, max(lengths) + 2), alpha=0.5, label=f"{g} ({np.mean(lengths):.1f} words)")
    ax.set_xlabel("caption length (words)")
    ax.set_ylabel("captioned tracks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "caption_lengths.png", dpi=120)
    plt.close(fig)
    names.append("caption_lengths.png")
    return names


def write_report(result: BiasResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``bias.md`` (with plots), ``bias.json`` and ``bias.csv`` (scores) to ``out_dir``."""
    from benchmark.datasets.common import write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(result, out)
    write_json_atomic(result.to_dict(), out / "bias.json")
    result.scores.to_csv(out / "bias.csv", index=False)

    s = result.settings
    wide = result.scores[["system", "gt", "CapA", "DetA", "AssA", "CHOTA"]]
    headline = result.changes[result.changes["field"].isin(HEADLINE)][
        ["system", "field", "automatic", "manual", "delta", "ci_low", "ci_high"]]
    ranks = pd.DataFrame([{"field": k, "kendall_tau": v["kendall_tau"], "p_value": v["p_value"]}
                          for k, v in result.rank_agreement.items()])
    stats = pd.DataFrame([{"gt": g, **{k: v for k, v in st.items() if k != "lengths"}}
                          for g, st in result.caption_stats.items()])
    text = [
        "# Automatic vs manual captions: evaluation bias",
        "",
        f"{s['videos']} videos, {len(result.systems)} systems; caption metrics {', '.join(s['caption_metrics'])}; "
        f"{s['iou']} IoU, alpha {s['alpha']}, score > {s['score_threshold']}; "
        f"{s['num_bootstrap']} paired bootstrap resamples of videos, {s['confidence']:.0%} intervals (seed {s['seed']}).",
        "",
        "## Scores under both ground truths (MaskCaptioner Table 6 layout)", "", _table(wide),
        "## Change from automatic to manual captions (manual - automatic)", "", _table(headline),
        "## Agreement of the rankings (Kendall tau across systems)", "", _table(ranks),
        "## Differences between systems (a - b) under each ground truth", "",
        _table(result.pairwise[["gt", "field", "system_a", "system_b", "diff", "ci_low", "ci_high", "p_boot"]]),
        "## Caption statistics", "", _table(stats, "{:.3f}"),
        "category_named = share of captioned tracks whose caption contains the category name.", "",
        *[f"![{p}]({p})\n" for p in plots],
    ]
    if result.warnings:
        text += ["## Warnings", "", *[f"- {w}" for w in result.warnings], ""]
    (out / "bias.md").write_text("\n".join(text), encoding="utf-8")
    return {"markdown": out / "bias.md", "json": out / "bias.json", "csv": out / "bias.csv",
            **{p: out / p for p in plots}}
