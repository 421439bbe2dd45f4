"""Why a model scores what it scores: what happened to every object and track at one alpha,
and how much of CHOTA each of its parts costs.

``analyze`` runs the scorer once (``benchmark.Chota``, keeping each video's matcher input),
then replays each video's matching (:func:`benchmark.matching.assign_sequence`, the very
assignment the scorer made) and reports, at ``alpha`` (default 0.5, as published):

- ``per_object``: per ground-truth track, its frames, the frames matched by a prediction (true
  positives) and missed (false negatives), the predicted tracks that matched it, ID switches
  (a matched frame whose predicted track differs from the previous matched frame's) and
  fragments (runs of matched frames after the first, separated by missed frames), its caption
  and the predicted caption it got most often, and its mean caption score;
- ``per_track``: per predicted track kept (score above the threshold), its frames, true and
  false positives, the ground-truth tracks it matched, whether it is a false-positive track
  (no true positive at all);
- ``pairs``: per (ground-truth track, predicted track) pair with captioned true positives,
  both captions side by side, how many frames, and each caption metric's score (CIDEr with
  the reference protocol's per-video document frequencies, as CapA uses it);
- ``per_video`` and ``overall``: DetA, AssA, CapA, CHOTA and what CHOTA would be with each
  part perfect, the others unchanged: DetA or AssA at 1, or every matched caption equal to its
  ground truth (CapA then recomputed by the scorer's formula from each metric's score of the
  ground-truth caption against itself: 1 for METEOR and SPICE, CIDEr's depends on the video's
  captions), worst CHOTA first.

The counts add up to the scorer's: the objects' matched frames are its true positives, their
missed frames its false negatives, the tracks' false positives its false positives, and the
pairs' scores times frames its caption sums (tested on the golden cases).

Example:
    >>> report = analyze("gt.json", "pred.json", caption_metrics=("cider",))   # doctest: +SKIP
    >>> report.per_object.sort_values("missed_frames").tail()                 # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import InputError
from benchmark.matching import EPS, assign_sequence
from benchmark.scoring import Chota, ChotaResult, final_fields

PARTS = ("DetA", "AssA", "CapA")


@dataclass
class Analysis:
    """The tables of :func:`analyze` and the scorer's result they come from."""

    alpha: float
    result: ChotaResult
    per_object: pd.DataFrame
    per_track: pd.DataFrame
    pairs: pd.DataFrame
    per_video: pd.DataFrame
    overall: dict[str, float]


def chota_if_perfect(values: dict[str, float], perfect: dict[str, float]) -> dict[str, float]:
    """CHOTA, and CHOTA with each of DetA, AssA, CapA at its ``perfect`` value (the others as
    they are).

    Example:
        >>> out = chota_if_perfect({"DetA": 0.5, "AssA": 0.8, "CapA": 0.4},
        ...                        {"DetA": 1.0, "AssA": 1.0, "CapA": 1.0})
        >>> [round(out[k], 4) for k in ("CHOTA", "CHOTA if DetA perfect", "CHOTA if CapA perfect")]
        [0.5429, 0.684, 0.7368]
    """
    out = {"CHOTA": float(np.cbrt(np.prod([values[p] for p in PARTS])))}
    for part in PARTS:
        out[f"CHOTA if {part} perfect"] = float(np.cbrt(np.prod(
            [perfect[p] if p == part else values[p] for p in PARTS])))
    return out


def _runs(flags: np.ndarray) -> int:
    """Number of runs of True in a boolean sequence."""
    return int(np.count_nonzero(flags & ~np.r_[False, flags[:-1]]))


def analyze(gt: Any, pred: Any, *, alpha: float = 0.5, iou: str = "box",
            caption_metrics: Sequence[str] = ("cider", "meteor", "spice"), score_threshold: float = 0.5,
            **scorer_options: Any) -> Analysis:
    """Score ``pred`` against ``gt`` at ``alpha`` and explain it (see the module docstring).
    ``scorer_options`` go to :class:`benchmark.Chota` (e.g. ``cache``, ``meteor_engine``)."""
    if scorer_options.get("protocol", "reference") != "reference":
        raise InputError("analyze explains the reference protocol only", field="protocol")
    scorer = Chota(gt, iou=iou, alphas=(alpha,), caption_metrics=caption_metrics,
                   score_threshold=score_threshold, **scorer_options)
    scorer.update(pred, keep_inputs=True)
    result = scorer.compute()
    text = scorer.caption_text()
    objects, tracks, pair_rows = [], [], []
    # Per metric and video: the caption sum if every captioned true positive's caption were
    # its ground truth's.
    perfect_sums = {m: np.zeros_like(result.video_stats[f"sum-{m}"]) for m in scorer.caption_metrics}
    names = scorer.gt.video_names
    for v in range(scorer.gt.num_videos):
        kept = scorer.inputs.get(v)
        # The video's ground truth, in the order of the matcher's input (detections are sorted
        # by video, then frame).
        g = scorer.gt.detections.take(scorer.gt.detections.video == v)
        gt_ids, gt_frames, gt_texts = g.track, g.frame, g.captions.tolist()
        tp_gt = np.zeros(len(g), dtype=bool)
        matched_pred_of_gt = np.full(len(g), -1, dtype=np.int64)
        if kept is not None:
            x, pred_ids = kept.input, kept.pred_track_ids
            tp_pred = np.zeros(len(x.pred_frame), dtype=bool)
            tp_gt_ids = tp_pred_ids = np.zeros(0, dtype=np.int64)
            if len(x.pred_frame) and len(g):
                matching = assign_sequence(x.sequence(iou))
                tp = matching.similarity >= alpha - EPS
                tp_gt[matching.gt[tp]] = True
                matched_pred_of_gt[matching.gt[tp]] = matching.pred[tp]
                tp_pred[matching.pred[tp]] = True
                tp_gt_ids, tp_pred_ids = gt_ids[matching.gt[tp]], pred_ids[matching.pred[tp]]
                # Caption pairs of the captioned true positives, scored as the scorer scores them.
                captioned = tp & (x.gt_caption[matching.gt] >= 0)
                keys = Counter(zip(gt_ids[matching.gt[captioned]].tolist(),
                                   pred_ids[matching.pred[captioned]].tolist(),
                                   x.gt_caption[matching.gt[captioned]].tolist(),
                                   x.pred_caption[matching.pred[captioned]].tolist()))
                if keys:
                    rows_v, perfect_v = _score_pairs(scorer, names[v], keys, text)
                    pair_rows += rows_v
                    for m, value in perfect_v.items():
                        perfect_sums[m][v] = value
            for track in np.unique(pred_ids).tolist():
                rows = np.flatnonzero(pred_ids == track)
                caption = Counter(text[c] for c in x.pred_caption[rows].tolist()).most_common(1)[0][0]
                tracks.append({"video": names[v], "pred_track": int(track), "frames": len(rows),
                               "true_positives": int(tp_pred[rows].sum()),
                               "false_positives": int((~tp_pred[rows]).sum()),
                               "gt_tracks": sorted(set(tp_gt_ids[tp_pred_ids == track].tolist())),
                               "false_positive_track": not tp_pred[rows].any(), "caption": caption})
        for track in np.unique(gt_ids).tolist():
            rows = np.flatnonzero(gt_ids == track)
            rows = rows[np.argsort(gt_frames[rows], kind="stable")]
            hit = tp_gt[rows]
            preds = (kept.pred_track_ids[matched_pred_of_gt[rows[hit]]] if kept is not None and hit.any()
                     else np.zeros(0, dtype=np.int64))
            caps = [gt_texts[r] for r in rows.tolist() if gt_texts[r]]
            objects.append({"video": names[v], "gt_track": int(track), "frames": len(rows),
                            "matched_frames": int(hit.sum()), "missed_frames": int((~hit).sum()),
                            "pred_tracks": sorted(set(preds.tolist())),
                            "id_switches": int(np.count_nonzero(preds[1:] != preds[:-1])),
                            "fragments": max(0, _runs(hit) - 1),
                            "caption": Counter(caps).most_common(1)[0][0] if caps else ""})
    per_object = pd.DataFrame(objects, columns=["video", "gt_track", "frames", "matched_frames", "missed_frames",
                                                "pred_tracks", "id_switches", "fragments", "caption"])
    per_track = pd.DataFrame(tracks, columns=["video", "pred_track", "frames", "true_positives", "false_positives",
                                              "gt_tracks", "false_positive_track", "caption"])
    metric_columns = [m.upper() for m in scorer.caption_metrics]
    pairs = pd.DataFrame(pair_rows, columns=["video", "gt_track", "pred_track", "frames", "gt_caption",
                                             "pred_caption", *metric_columns, "caption_score"])
    if len(pairs):
        pairs = pairs.sort_values("caption_score", kind="stable").reset_index(drop=True)
        # Each object's mean caption score over its captioned true positives.
        weighted = pairs.assign(w=pairs["caption_score"] * pairs["frames"]).groupby(["video", "gt_track"])
        means = (weighted["w"].sum() / weighted["frames"].sum()).rename("caption_score")
        per_object = per_object.merge(means.reset_index(), on=["video", "gt_track"], how="left")
    else:
        per_object["caption_score"] = math.nan
    perfect_stats = {**result.video_stats, **{f"sum-{m}": perfect_sums[m] for m in perfect_sums}}
    perfect_capa_video = final_fields(perfect_stats, scorer.caption_metrics)["CapA"].mean(axis=1) \
        if scorer.caption_metrics else np.ones(scorer.gt.num_videos)
    perfect_capa = float(final_fields({k: v.sum(axis=0) for k, v in perfect_stats.items()},
                                      scorer.caption_metrics)["CapA"].mean()) if scorer.caption_metrics else 1.0
    per_video = result.per_video[["video", *PARTS, "CHOTA"]].copy()
    what_if = [chota_if_perfect(r, {"DetA": 1.0, "AssA": 1.0, "CapA": c})
               for r, c in zip(per_video[list(PARTS)].to_dict("records"), perfect_capa_video.tolist())]
    for part in PARTS:
        per_video[f"CHOTA if {part} perfect"] = [w[f"CHOTA if {part} perfect"] for w in what_if]
    per_video = per_video.sort_values("CHOTA", kind="stable").reset_index(drop=True)
    overall = {**{p: float(result[p]) for p in PARTS}, "CapA if captions perfect": perfect_capa,
               **chota_if_perfect({p: float(result[p]) for p in PARTS},
                                  {"DetA": 1.0, "AssA": 1.0, "CapA": perfect_capa}),
               "true_positives": int(per_object["matched_frames"].sum()),
               "false_negatives": int(per_object["missed_frames"].sum()),
               "false_positives": int(per_track["false_positives"].sum()),
               "id_switches": int(per_object["id_switches"].sum()),
               "fragments": int(per_object["fragments"].sum()),
               "false_positive_tracks": int(per_track["false_positive_track"].sum()),
               "missed_objects": int((per_object["matched_frames"] == 0).sum())}
    return Analysis(alpha=float(alpha), result=result, per_object=per_object, per_track=per_track, pairs=pairs,
                    per_video=per_video, overall=overall)


def _score_pairs(scorer: Chota, video: str, keys: Counter, text: list[str]
                 ) -> tuple[list[dict], dict[str, float]]:
    """Rows of one video's caption pairs with every metric's score (CIDEr over this video's
    true-positive pairs, one document per frame, as the reference protocol), and per metric
    the video's caption sum had every candidate been its reference."""
    from benchmark.captions import cider_d

    distinct = list(keys)
    caption_pairs = list(dict.fromkeys((g, p) for _, _, g, p in distinct))
    counts = Counter()
    for (_, _, g, p), n in keys.items():
        counts[(g, p)] += n
    scores: dict[str, dict[tuple[int, int], float]] = {}
    refs, cands = [text[g] for g, _ in caption_pairs], [text[p] for _, p in caption_pairs]
    for metric in scorer.caption_metrics:
        if metric == "cider":
            values = cider_d(refs, cands, [counts[k] for k in caption_pairs])
        else:
            values = scorer.caption_engine().score(metric, refs, cands)
        scores[metric] = dict(zip(caption_pairs, np.asarray(values, dtype=np.float64).tolist()))
    perfect = {}
    by_reference = Counter()
    for (g, _), n in counts.items():
        by_reference[g] += n
    references = list(by_reference)
    same = [text[g] for g in references]
    for metric in scorer.caption_metrics:
        if metric == "cider":
            values = cider_d(same, same, [by_reference[g] for g in references])
        else:
            values = scorer.caption_engine().score(metric, same, same)
        perfect[metric] = float(np.dot(np.asarray(values, dtype=np.float64), [by_reference[g] for g in references]))
    rows = []
    for (gt_track, pred_track, g, p), n in keys.items():
        per_metric = {m.upper(): scores[m][(g, p)] for m in scorer.caption_metrics}
        rows.append({"video": video, "gt_track": int(gt_track), "pred_track": int(pred_track), "frames": n,
                     "gt_caption": text[g], "pred_caption": text[p], **per_metric,
                     "caption_score": float(np.mean(list(per_metric.values())))})
    return rows, perfect


# ------------------------------------------------------------------ report

def _plots(analysis: Analysis, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark.atomic import atomic_save_figure

    names = []
    worst = analysis.per_video.head(20)
    fig, ax = plt.subplots(figsize=(10, max(3, 0.3 * len(worst) + 1)))
    y = np.arange(len(worst))
    ax.barh(y, worst["CHOTA"], color="#1d4ed8", label="CHOTA")
    for part, color in (("DetA", "#b45309"), ("AssA", "#15803d"), ("CapA", "#9333ea")):
        ax.scatter(worst[f"CHOTA if {part} perfect"], y, marker="|", s=120, color=color,
                   label=f"CHOTA if {part} perfect")
    ax.set_yticks(y, worst["video"])
    ax.invert_yaxis()
    ax.set_xlabel(f"value at alpha {analysis.alpha:g}")
    ax.set_title("Worst videos: CHOTA and what each perfect part would give")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    atomic_save_figure(out / "worst_videos.png", fig)
    plt.close(fig)
    names.append("worst_videos.png")
    if len(analysis.pairs):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(np.repeat(analysis.pairs["caption_score"], analysis.pairs["frames"]), bins=30, color="#9333ea")
        ax.set_xlabel("caption score of a matched frame (mean of the caption metrics)")
        ax.set_ylabel("true positives")
        fig.tight_layout()
        atomic_save_figure(out / "caption_scores.png", fig)
        plt.close(fig)
        names.append("caption_scores.png")
    return names


def write_report(analysis: Analysis, out_dir: str | os.PathLike[str], *, top: int = 20) -> dict[str, Path]:
    """Write ``analysis.json``, the CSV tables, the plots and ``analysis.html`` (worst videos
    and captions first) to ``out_dir``; returns the files by name."""
    import html
    import json

    from benchmark.atomic import atomic_write_text, write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"per_object": analysis.per_object, "per_track": analysis.per_track, "pairs": analysis.pairs,
              "per_video": analysis.per_video}
    files = {}
    for name, table in tables.items():
        files[f"{name}.csv"] = atomic_write_text(out / f"{name}.csv", table.to_csv(index=False))
    doc = {"alpha": analysis.alpha, "settings": analysis.result.settings(), "scores": analysis.result.to_dict(),
           "overall": analysis.overall, "warnings": analysis.result.warnings,
           **{name: json.loads(table.to_json(orient="records")) for name, table in tables.items()}}
    files["analysis.json"] = write_json_atomic(doc, out / "analysis.json", indent=1)
    plots = _plots(analysis, out)
    files.update({p: out / p for p in plots})
    worst_objects = analysis.per_object.sort_values(["missed_frames", "id_switches"], ascending=False,
                                                    kind="stable").head(top)
    sections = [
        ("Overall", pd.DataFrame([analysis.overall]).T.rename(columns={0: "value"})),
        ("Worst videos (lowest CHOTA first)", analysis.per_video.head(top)),
        ("Worst captions (lowest caption score first)", analysis.pairs.head(top)),
        ("Objects with the most missed frames", worst_objects),
        ("False-positive tracks", analysis.per_track[analysis.per_track["false_positive_track"]].head(top)),
    ]
    body = [f"<h1>Error analysis at alpha {analysis.alpha:g}</h1>",
            f"<p>CHOTA {analysis.result['CHOTA']:.4f}; every table in full: the CSV files and analysis.json "
            "next to this page.</p>"]
    body += [f'<img src="{html.escape(p)}" alt="{html.escape(p)}">' for p in plots]
    for title, table in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(table.to_html(float_format=lambda v: f"{v:.4f}", border=0, na_rep="-"))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>DVOC error analysis</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px}"
            "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd}"
            "img{max-width:48%;margin:4px}</style></head><body>" + "\n".join(body) + "</body></html>")
    files["analysis.html"] = atomic_write_text(out / "analysis.html", page)
    return files
