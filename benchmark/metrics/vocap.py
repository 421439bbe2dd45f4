"""VoCap / SAV-Caption video object captioning: several references per object.

Each GT object (a track) carries its references in ``captions`` (a list; SAV-Caption val has 3
per object) or a single ``caption``; each prediction names the object it answers with the same
``(video_id, track_id)`` (per-track predictions may use ``track_id`` or ``id``) and carries one
``caption`` and, optionally, its masklet. Scores:

- CIDEr-D over the whole set, pycocoevalcap semantics with several references per item: the
  document frequency counts an n-gram once per *object* when any of its references holds it,
  log(N) uses the number of objects, an object's score is the mean over its references of the
  per-order similarity, averaged over n = 1..4, times 10. ``benchmark.captions.cider_d`` scores
  one reference per item (CHOTA's case), which cannot express this document frequency, hence
  this variant.
- METEOR / SPICE on request, through pycocoevalcap's own multi-reference scorers (Java; SPICE
  also needs Stanford CoreNLP).
- J&F of the masklets (``benchmark.metrics.jf``) when the predictions carry segmentations.

Captions are scored as given (split on whitespace), as CHOTA does; pass ``tokenize=True`` to
run pycocoevalcap's PTB tokenizer (Java) first, as COCO-caption pipelines usually do.

Example:
    >>> refs = {1: ["a red car drives", "a car drives away"], 2: ["a dog sleeps"]}
    >>> round(float(multi_reference_cider(refs, {1: "a red car drives", 2: "a cat"})[1]), 4)
    6.25
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Hashable

import pandas as pd

from benchmark.captions.cider import cider_d
from benchmark.errors import InputError, ToolMissingError
from benchmark.metrics.jf import j_and_f
from benchmark.metrics.tracks import TrackSet, load_tracks

CAPTION_METRICS = ("cider", "meteor", "spice")


def multi_reference_cider(refs: Mapping[Hashable, Sequence[str]], cands: Mapping[Hashable, str],
                          *, n: int = 4, sigma: float = 6.0) -> dict[Hashable, float]:
    """CIDEr-D per item with several references each (pycocoevalcap ``Cider`` numbers), from
    :func:`benchmark.captions.cider.cider_d`; every item needs at least one reference.

    ``refs`` and ``cands`` share their keys; the corpus statistics come from all items.

    Example:
        >>> multi_reference_cider({1: ["a b"]}, {1: "a b"})   # one item: log(N) = 0
        {1: 0.0}
    """
    if set(refs) != set(cands):
        raise ValueError("refs and cands must have the same keys")
    keys = list(refs)
    scores = cider_d([refs[k] for k in keys], [cands[k] for k in keys], n=n, sigma=sigma)
    return {k: float(v) for k, v in zip(keys, scores)}


def _pycocoevalcap_scores(metric: str, refs: dict, cands: dict) -> dict[Hashable, float]:
    """METEOR or SPICE per item through pycocoevalcap (several references each)."""
    keys = list(refs)
    gts = {i: list(refs[k]) for i, k in enumerate(keys)}
    res = {i: [cands[k]] for i, k in enumerate(keys)}
    try:
        if metric == "meteor":
            from pycocoevalcap.meteor.meteor import Meteor
            _, per_item = Meteor().compute_score(gts, res)
        else:
            from pycocoevalcap.spice.spice import Spice
            _, per_item = Spice().compute_score(gts, res)
            per_item = [item["All"]["f"] for item in per_item]
    except (OSError, FileNotFoundError, RuntimeError, ValueError) as exc:
        raise ToolMissingError(f"{metric.upper()} could not run (Java and, for SPICE, Stanford "
                               f"CoreNLP are needed): {exc}") from exc
    return {k: float(s) for k, s in zip(keys, per_item)}


def _ptb_tokenize(captions: dict[Hashable, list[str]]) -> dict[Hashable, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    keys = list(captions)
    try:
        out = PTBTokenizer().tokenize({i: [{"caption": c} for c in captions[k]]
                                       for i, k in enumerate(keys)})
    except (OSError, RuntimeError) as exc:
        raise ToolMissingError(f"the PTB tokenizer needs Java: {exc}") from exc
    return {k: out[i] for i, k in enumerate(keys)}


@dataclass
class VocapResult:
    """``summary`` (CIDEr, optional METEOR / SPICE, J / F / J&F) and ``per_object`` rows."""

    summary: dict[str, float]
    per_object: pd.DataFrame

    def to_dict(self) -> dict[str, float]:
        """The summary as a flat dict (JSON-ready)."""
        return dict(self.summary)


def vocap(gt: Any, pred: Any, *, caption_metrics: Sequence[str] = ("cider",),
          masks: bool = True, tokenize: bool = False, skip_first_and_last: bool = True,
          progress: bool = False, meteor_engine: str = "python") -> VocapResult:
    """Object captioning (multi-reference) and, with ``masks``, masklet J&F.

    A GT object without a prediction scores 0 on every caption metric (its caption is "").
    Objects without references are left out of the caption scores. METEOR is computed by
    ``meteor_engine``: "python" (:mod:`benchmark.captions.meteor15`, no Java) or "java"
    (pycocoevalcap's jar); their scores are the same.

    Example:
        >>> vocap("sav_val.json", "vocap_preds.json").summary["CIDEr"]   # doctest: +SKIP
    """
    unknown = set(caption_metrics) - set(CAPTION_METRICS)
    if unknown:
        raise ValueError(f"unknown caption metrics {sorted(unknown)}; use {CAPTION_METRICS}")
    if meteor_engine not in ("python", "java"):
        raise ValueError(f"meteor_engine must be 'python' or 'java', not {meteor_engine!r}")
    gts = gt if isinstance(gt, TrackSet) else load_tracks(gt, role="gt")
    preds = pred if isinstance(pred, TrackSet) else load_tracks(pred, role="pred", gt=gts)
    answers: dict[tuple[int, Any], str] = {}
    for track in preds.tracks:
        key = (track.video_id, track.track_id)
        if key in answers:
            raise InputError(f"two predictions for object {track.track_id} of video "
                             f"{track.video_id}", source=preds.source, record=track.record,
                             field="track_id")
        if len(track.captions) > 1:
            raise InputError("a prediction carries one caption", source=preds.source,
                             record=track.record, field="caption")
        answers[key] = track.captions[0] if track.captions else ""
    refs = {(t.video_id, t.track_id): t.captions for t in gts.tracks if t.captions}
    cands = {k: answers.get(k, "") for k in refs}
    if tokenize and refs:
        refs = _ptb_tokenize(refs)
        cands = {k: v[0] for k, v in _ptb_tokenize({k: [c] for k, c in cands.items()}).items()}
    per_metric: dict[str, dict] = {}
    for metric in caption_metrics:
        if not refs:
            per_metric[metric] = {}
        elif metric == "cider":
            per_metric[metric] = multi_reference_cider(refs, cands)
        elif metric == "meteor" and meteor_engine == "python":
            from benchmark.captions.meteor15 import PythonMeteor

            keys = list(refs)
            scores = PythonMeteor().score([list(refs[k]) for k in keys], [cands[k] for k in keys])
            per_metric[metric] = {k: float(v) for k, v in zip(keys, scores)}
        else:
            per_metric[metric] = _pycocoevalcap_scores(metric, refs, cands)
    rows = [{"video_id": k[0], "track_id": k[1], "references": len(refs[k]),
             "predicted": k in answers, **{m.upper(): per_metric[m][k] for m in caption_metrics}}
            for k in refs]
    per_object = pd.DataFrame(rows, columns=["video_id", "track_id", "references", "predicted",
                                             *(m.upper() for m in caption_metrics)])
    summary = {m.upper(): float(per_object[m.upper()].mean()) if len(per_object) else math.nan
               for m in caption_metrics}
    summary["objects_with_references"] = float(len(refs))
    summary["objects_predicted"] = float(sum(k in answers for k in refs))
    has_masks = any(m is not None for t in preds.tracks for m in t.masks)
    if masks and has_masks:
        jf = j_and_f(gts, preds, skip_first_and_last=skip_first_and_last, progress=progress)
        summary.update({k: jf.summary[k] for k in ("J", "F", "J&F")})
        per_object = per_object.merge(jf.per_object[["video_id", "track_id", "J", "F"]],
                                      on=["video_id", "track_id"], how="outer")
    return VocapResult(summary, per_object)
