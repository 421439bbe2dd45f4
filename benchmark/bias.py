"""Does evaluating on synthetic captions change the verdict? (MaskCaptioner Table 6, generalised)

Given videos captioned twice, automatically (a VLM) and manually, and two or more systems'
predictions, ``compare_ground_truths`` restricts everything to the manual subset (the videos
and objects of the manual ground truth: the automatic ground truth and the predictions may be
the full split; what is dropped is reported, see :func:`restrict_to_manual`), scores every
system under both ground truths with ``benchmark.chota`` and reports:

- CapA / CHOTA (and DetA, AssA, each CapA-metric) of every system under both GTs, and the
  change manual - automatic per system, with a bootstrap confidence interval;
- agreement of the two rankings (Kendall tau, scipy);
- paired bootstrap confidence intervals over videos for the difference between every two
  systems under each GT: every resample applies the same video weights to every result
  through :meth:`benchmark.scoring.ChotaResult.resample`, which recomputes the fields exactly
  from the scorer's per-video sufficient statistics at every alpha. The scorer runs once per
  (system, GT), never per resample. Any alphas (default 0.5, as published; ``"hota"`` for
  TrackEval's 19);
- caption statistics of both GTs (length, vocabulary, how often the category is named).

Example:
    >>> result = compare_ground_truths("auto_gt.json", "manual_gt.json",
    ...     {"A": "a.json", "B": "b.json"}, caption_metrics=("cider",))   # doctest: +SKIP
    >>> write_report(result, "bias_report/")                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmark.atomic import atomic_save_figure, atomic_write_text, write_json_atomic
from benchmark.datacard import WORD
from benchmark.errors import InputError
from benchmark.fields import OFFICIAL_CAPTION_METRICS
from benchmark.io import read_json

GTS = ("automatic", "manual")
HEADLINE = ("CapA", "CHOTA")


@dataclass
class Subset:
    """What the manual subset kept and what :func:`restrict_to_manual` dropped."""

    videos: int
    objects: int
    dropped_videos: int
    dropped_objects: int
    dropped_predictions: dict[str, int]

    def notes(self) -> list[str]:
        """One line per kind of thing dropped (nothing when the inputs were the subset)."""
        out = []
        if self.dropped_videos or self.dropped_objects:
            out.append(f"automatic ground truth: {self.dropped_videos} videos and {self.dropped_objects} objects "
                       f"outside the manual subset dropped")
        out += [f"{name}: {n} prediction records outside the manual subset's videos dropped"
                for name, n in self.dropped_predictions.items() if n]
        return out


def _layout(data: Any, source: str) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError("ground truth must be a JSON object with an 'annotations' list", source=source,
                         field="annotations")
    return "coco-video" if "images" in data else "per-track"


def _objects(data: dict, source: str) -> tuple[set[int], list[tuple[int, int]]]:
    """(video ids, the (video id, track id) of every annotation, in order) of a ground truth."""
    layout = _layout(data, source)
    if layout == "coco-video":
        video_of = {}
        for i, image in enumerate(data["images"]):
            if not isinstance(image, dict) or "id" not in image or "video_id" not in image:
                raise InputError("an image needs 'id' and 'video_id'", source=source, record=f"images[{i}]")
            video_of[image["id"]] = image["video_id"]
        videos = {v["id"] for v in data.get("videos", []) if isinstance(v, dict)} or set(video_of.values())
        keys = []
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict) or "track_id" not in ann or ann.get("image_id") not in video_of:
                raise InputError("an annotation needs a 'track_id' and the 'image_id' of an image", source=source,
                                 record=f"annotations[{i}]", field="track_id" if isinstance(ann, dict) else None)
            keys.append((video_of[ann["image_id"]], ann["track_id"]))
        return videos, keys
    videos = {v["id"] for v in data.get("videos", []) if isinstance(v, dict)}
    keys = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "video_id" not in ann or "id" not in ann:
            raise InputError("a per-track annotation needs 'video_id' and 'id'", source=source,
                             record=f"annotations[{i}]")
        keys.append((ann["video_id"], ann["id"]))
    return videos, keys


def restrict_to_manual(automatic: Any, manual: Any, predictions: Mapping[str, Any]
                       ) -> tuple[dict, dict, dict[str, list], Subset]:
    """The automatic ground truth and every system's predictions restricted to the manual
    subset: its videos, and in them the objects (tracks) the manual ground truth holds.

    The manual subset must be part of the automatic ground truth (same video and track ids):
    a manual video or object the automatic one lacks cannot be compared and is an error.
    Prediction records are kept by video (per-frame records through their ``image_id``, or
    their ``video_id``); a record whose image the automatic ground truth does not know is
    kept, for the scorer to report.

    Example:
        >>> auto = {"videos": [{"id": 1}, {"id": 2}], "annotations": [
        ...     {"id": 5, "video_id": 1, "bboxes": [[0, 0, 1, 1]]}, {"id": 6, "video_id": 2, "bboxes": [None]}]}
        >>> manual = {"videos": [{"id": 1}], "annotations": [{"id": 5, "video_id": 1, "bboxes": [[0, 0, 1, 1]]}]}
        >>> _, _, preds, subset = restrict_to_manual(auto, manual, {"A": [{"video_id": 2, "bboxes": [None]}]})
        >>> subset.videos, subset.objects, subset.dropped_videos, subset.dropped_predictions
        (1, 1, 1, {'A': 1})
    """
    auto_data, auto_name = read_json(automatic, what="automatic ground truth")
    manual_data, manual_name = read_json(manual, what="manual ground truth")
    auto_videos, auto_keys = _objects(auto_data, auto_name)
    manual_videos, manual_keys = _objects(manual_data, manual_name)
    missing = sorted(manual_videos - auto_videos, key=str)
    if missing:
        raise InputError(f"the manual ground truth has {len(missing)} videos the automatic one lacks "
                         f"(first: {missing[0]!r}); both must come from the same split", source=manual_name,
                         field="videos")
    known, wanted = set(auto_keys), set(manual_keys)
    lacking = [k for k in manual_keys if k not in known]
    if lacking:
        raise InputError(f"the manual ground truth has objects the automatic one lacks (first: track "
                         f"{lacking[0][1]!r} of video {lacking[0][0]!r}); both must use the same track ids",
                         source=manual_name, field="track_id")
    keep_ann = [k in wanted for k in auto_keys]
    restricted = dict(auto_data)
    restricted["annotations"] = [a for a, keep in zip(auto_data["annotations"], keep_ann) if keep]
    if "videos" in auto_data:
        restricted["videos"] = [v for v in auto_data["videos"] if isinstance(v, dict) and v.get("id") in manual_videos]
    video_of_image = {}
    if "images" in auto_data:
        restricted["images"] = [im for im in auto_data["images"] if im["video_id"] in manual_videos]
        video_of_image = {im["id"]: im["video_id"] for im in auto_data["images"]}
    kept_objects = {k for k, keep in zip(auto_keys, keep_ann) if keep}
    dropped_objects = len({k for k in auto_keys if k[0] in manual_videos} - kept_objects)
    systems, dropped = {}, {}
    for name, source in predictions.items():
        records, pred_name = read_json(source, what=f"predictions of {name}")
        if isinstance(records, dict) and isinstance(records.get("annotations"), list):
            records = records["annotations"]
        if not isinstance(records, list):
            raise InputError("predictions must be a JSON list", source=pred_name)

        def video(record: Any) -> Any:
            if not isinstance(record, dict):
                return None
            return video_of_image.get(record.get("image_id"), record.get("video_id"))

        kept = [r for r in records if video(r) is None or video(r) in manual_videos]
        systems[name] = kept
        dropped[name] = len(records) - len(kept)
    subset = Subset(videos=len(manual_videos), objects=len(wanted),
                    dropped_videos=len(auto_videos - manual_videos), dropped_objects=dropped_objects,
                    dropped_predictions=dropped)
    return restricted, manual_data, systems, subset


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
    subset: Subset | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes null)."""
        def records(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records"))

        return {
            "settings": self.settings, "systems": self.systems, "scores": records(self.scores),
            "changes": records(self.changes), "pairwise": records(self.pairwise),
            "rank_agreement": _nan_to_none(self.rank_agreement),
            "caption_stats": _nan_to_none(self.caption_stats), "warnings": self.warnings,
            "subset": None if self.subset is None else dataclasses.asdict(self.subset),
        }


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ------------------------------------------------------------------ bootstrap

def bootstrap_weights(num_videos: int, num_samples: int, seed: int) -> np.ndarray:
    """``(num_samples, num_videos)`` counts of each video in each resample (with replacement).

    Example:
        >>> bootstrap_weights(3, 2, seed=0).sum(axis=1).tolist()
        [3.0, 3.0]
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_videos, np.full(num_videos, 1.0 / num_videos), size=num_samples).astype(float)


def paired_resample(results: Mapping[Any, Any], weights: np.ndarray,
                    video_ids: Sequence[int]) -> dict[Any, dict[str, np.ndarray]]:
    """Apply the same video weights to several scorer results (a paired bootstrap).

    ``weights`` has shape ``(..., len(video_ids))``, columns in the order of ``video_ids``;
    each result's ``per_video`` rows may come in any order and are aligned by ``video_id``.
    Returns, per key of ``results``, :meth:`ChotaResult.resample`'s fields.

    Example:
        >>> boot = paired_resample({"A": res_a, "B": res_b}, bootstrap_weights(n, 1000, seed=0),
        ...                        ids)                                          # doctest: +SKIP
        >>> np.quantile(boot["A"]["CHOTA"] - boot["B"]["CHOTA"], [0.025, 0.975])  # doctest: +SKIP
    """
    weights = np.asarray(weights, dtype=np.float64)
    wanted = pd.Index(video_ids)
    out = {}
    for key, result in results.items():
        rows = result.per_video["video_id"].to_numpy()
        columns = wanted.get_indexer(rows)
        if len(rows) != len(wanted) or (columns < 0).any():
            raise InputError(f"{key}: the scored videos differ from the ones being resampled",
                             field="videos")
        out[key] = result.resample(weights[..., columns])
    return out


# ------------------------------------------------------------------ caption statistics

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
    data, source = read_json(gt, what="ground truth") if not isinstance(gt, dict) else (gt, "ground truth (in memory)")
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
        words = WORD.findall(caption.lower())
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
    caption_metrics: Sequence[str] = OFFICIAL_CAPTION_METRICS,
    iou: str = "box",
    alphas: float | Sequence[float] | str = (0.5,),
    score_threshold: float = 0.5,
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    scorer_options: Mapping[str, Any] | None = None,
) -> BiasResult:
    """Score every system under both GTs and compare; see the module docstring.

    ``automatic``/``manual``: GT paths or dicts; the automatic one may be the whole split, the
    manual one defines the subset scored (:func:`restrict_to_manual`). ``predictions``: system
    name -> prediction path/list (the whole split is fine too). ``alphas``: as for ``benchmark.chota`` (a number, numbers or
    ``"hota"``); fields and intervals are averaged over them. ``scorer_options``: extra keyword
    arguments for ``benchmark.chota`` (e.g. ``cache``, ``num_workers``, ``protocol``).
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
    automatic, manual, predictions, subset = restrict_to_manual(automatic, manual, predictions)
    gts = {"automatic": automatic, "manual": manual}
    if isinstance(alphas, (int, float)):
        alphas = (float(alphas),)
    results = {}
    rows, warnings = [], subset.notes()
    jobs = [(g, s) for g in GTS for s in systems]
    for g, s in tqdm(jobs, desc="scoring", disable=not progress):
        res = chota(gts[g], predictions[s], iou=iou, alphas=alphas, caption_metrics=metrics,
                    score_threshold=score_threshold, **dict(scorer_options or {}))
        results[g, s] = res
        rows.append({"system": s, "gt": g, **{k: v for k, v in res.to_dict().items()
                                              if k in ("DetA", "AssA", "CapA", "CHOTA") or k.startswith("CapA-")}})
        warnings += [f"{s} / {g}: {w}" for w in res.warnings]
    scores = pd.DataFrame(rows)

    videos = results["automatic", systems[0]].per_video["video_id"].tolist()
    if set(results["manual", systems[0]].per_video["video_id"]) != set(videos):
        raise InputError("the automatic and manual ground truths do not cover the same videos", field="videos")
    fields = ["DetA", "AssA", *[f"CapA-{m}" for m in metrics], "CapA", "CHOTA"]
    boot = paired_resample(results, bootstrap_weights(len(videos), num_bootstrap, seed), videos)
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
    used_alphas = [float(a) for a in results["automatic", systems[0]].alphas]
    settings = {"caption_metrics": list(metrics), "iou": iou, "alphas": used_alphas, "score_threshold": score_threshold,
                "num_bootstrap": num_bootstrap, "confidence": confidence, "seed": seed, "videos": len(videos),
                "objects": subset.objects}
    return BiasResult(
        systems=systems, caption_metrics=metrics, scores=scores, changes=changes, pairwise=pairwise,
        rank_agreement=rank_agreement,
        caption_stats={g: caption_statistics(gts[g]) for g in GTS}, settings=settings, warnings=warnings,
        subset=subset,
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
    atomic_save_figure(out / "scores.png", fig, dpi=120)
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
        atomic_save_figure(out / "pairwise.png", fig, dpi=120)
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
    atomic_save_figure(out / "caption_lengths.png", fig, dpi=120)
    plt.close(fig)
    names.append("caption_lengths.png")
    return names


def write_report(result: BiasResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``bias.md`` (with plots), ``bias.json`` and ``bias.csv`` (scores) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(result, out)
    write_json_atomic(result.to_dict(), out / "bias.json")
    atomic_write_text(out / "bias.csv", result.scores.to_csv(index=False))

    s = result.settings
    # MaskCaptioner Table 6: annotation type, then system; CapA, DetA, AssA, CHOTA.
    wide = result.scores[["gt", "system", "CapA", "DetA", "AssA", "CHOTA"]].rename(
        columns={"gt": "annotation type"}).sort_values("annotation type", kind="stable")
    headline = result.changes[result.changes["field"].isin(HEADLINE)][
        ["system", "field", "automatic", "manual", "delta", "ci_low", "ci_high"]]
    ranks = pd.DataFrame([{"field": k, "kendall_tau": v["kendall_tau"], "p_value": v["p_value"]}
                          for k, v in result.rank_agreement.items()])
    stats = pd.DataFrame([{"gt": g, **{k: v for k, v in st.items() if k != "lengths"}}
                          for g, st in result.caption_stats.items()])
    text = [
        "# Automatic vs manual captions: evaluation bias",
        "",
        f"{s['videos']} videos / {s['objects']} object trajectories (the manual subset), {len(result.systems)} "
        f"systems; caption metrics {', '.join(s['caption_metrics'])}; "
        f"{s['iou']} IoU, alpha {', '.join(f'{a:g}' for a in s['alphas'])}, score > {s['score_threshold']}; "
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
    atomic_write_text(out / "bias.md", "\n".join(text))
    return {"markdown": out / "bias.md", "json": out / "bias.json", "csv": out / "bias.csv",
            **{p: out / p for p in plots}}
