"""CHOTA: DetA, AssA and CapA of dense video object captioning, reference-exact and fast.

Two APIs share one implementation (as in torchmetrics):

* functional: ``chota(gt, pred, ...)`` scores a whole prediction file;
* stateful: ``Chota(gt, ...)``, then ``update(predictions)`` as videos come in, then
  ``compute()``.

What the reference protocol does, and where our defaults are the reference's, is written in
``docs/protocol.md``. In short: HOTA matching per video (TrackEval), a caption pair for each
true positive whose ground truth has a caption, CIDEr-D / METEOR / SPICE per pair, per-video
CIDEr document frequencies, micro-averaging over captioned true positives, and every field
averaged over the alphas.

Example:
    >>> from benchmark import chota
    >>> result = chota("gt.json", "pred.json", iou="box", caption_metrics=("cider",))  # doctest: +SKIP
    >>> round(result["DetA"], 3)                                                        # doctest: +SKIP
    0.412
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from benchmark.background import PendingGroundTruth
from benchmark.errors import InputError
from benchmark.fields import OFFICIAL_CAPTION_METRICS, result_fields
from benchmark.io import (Detections, GroundTruth, Source, iter_newline_captions,
                          load_ground_truth, place_predictions, read_predictions)
from benchmark.matching import (HOTA_ALPHAS, SequenceCounts, SequenceInput, match_sequence,
                                pair_similarity_boxes, pair_similarity_masks)
from benchmark.structures.masks import mask_to_box, to_rle

PROTOCOLS: dict[str, str] = {
    "reference": "as the published scorer: CIDEr document frequencies from each video's "
                 "matched pairs (one CIDEr call per video and alpha)",
    "dataset-cider": "corrected: CIDEr document frequencies from all matched pairs of the "
                     "dataset at each alpha (not comparable with published CapA-cider)",
}

# Below this many same-frame pairs, starting worker processes costs more than it saves.
_PARALLEL_MIN_DETECTIONS = 50_000


def resolve_alphas(alphas: str | float | Sequence[float]) -> np.ndarray:
    """``"hota"`` -> TrackEval's 19 alphas; a number or a sequence -> that array.

    Example:
        >>> resolve_alphas("hota")[:3].round(2).tolist(), resolve_alphas(0.5).tolist()
        ([0.05, 0.1, 0.15], [0.5])
    """
    if isinstance(alphas, str):
        if alphas.lower() != "hota":
            raise InputError(f"alphas must be 'hota', a number or a list of numbers, got {alphas!r}")
        return HOTA_ALPHAS.copy()
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if values.ndim != 1 or len(values) == 0 or not np.all((values > 0) & (values <= 1)):
        raise InputError(f"alphas must be numbers in (0, 1], got {alphas!r}")
    return values


# --------------------------------------------------------------------------- result

@dataclass
class ChotaResult:
    """Scores of one evaluation.

    Attributes:
        alphas: the IoU thresholds used.
        per_alpha: each field's value at each alpha (arrays aligned with ``alphas``).
        per_video: one row per ground-truth video (fields averaged over alphas).
        video_stats: sufficient statistics per video and alpha, ``(videos, alphas)`` arrays
            keyed as :func:`final_fields` reads them; rows follow ``per_video``.
        caption_metrics: the caption metrics used, in order.
        official: True when CapA/CHOTA use exactly the official CIDEr + METEOR + SPICE.
        protocol, iou, score_threshold: the settings that produced these numbers.
        warnings: what was noticed about the input (e.g. captions with line breaks).
        meteor_engine: which METEOR computed CapA-meteor ("python" or "java"; None without
            METEOR). Both give the same scores.
    """

    alphas: np.ndarray
    per_alpha: dict[str, np.ndarray]
    per_video: pd.DataFrame
    video_stats: dict[str, np.ndarray]
    caption_metrics: tuple[str, ...]
    official: bool
    protocol: str
    iou: str
    score_threshold: float
    warnings: list[str] = field(default_factory=list)
    meteor_engine: str | None = None

    def to_dict(self) -> dict[str, float]:
        """Flat dict of every field, averaged over the alphas (the reference's keys)."""
        return {f.name: float(np.mean(self.per_alpha[f.name])) for f in self.fields}

    @property
    def fields(self):
        return result_fields(self.caption_metrics)

    def __getitem__(self, name: str) -> float:
        return self.to_dict()[name]

    def resample(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Fields (averaged over alphas) for videos weighted by ``weights``.

        ``weights`` has shape ``(..., videos)``: a 0/1 row scores a subset of videos, a row of
        bootstrap counts one resample; all-ones gives :meth:`to_dict`'s values.

        Example:
            >>> boot = result.resample(rng.multinomial(n, [1 / n] * n, size=1000))  # doctest: +SKIP
            >>> np.percentile(boot["CHOTA"], [2.5, 97.5])                          # doctest: +SKIP
        """
        return resample_fields(self.video_stats, self.caption_metrics, weights)

    def undefined_fields(self) -> dict[str, int]:
        """Fields that average over true positives (AssA, AssRe, AssPr, LocA over all of them,
        CapA and CapA-<metric> over the captioned ones) at alphas with none: field name ->
        number of such alphas. The reference still reports a value there (1.0 for LocA and
        CapA, 0 for AssA), kept in :meth:`to_dict`; the console table marks them.

        Example:
            >>> result.undefined_fields()          # no prediction kept   # doctest: +SKIP
            {'CapA': 1, 'AssA': 1, 'AssRe': 1, 'AssPr': 1, 'LocA': 1, 'CapA-cider': 1}
        """
        tp = np.asarray(self.per_alpha["HOTA_TP"])
        captioned = np.asarray(self.per_alpha["TP_with_caps"])
        out = {}
        for f in self.fields:
            if f.name in ("AssA", "AssRe", "AssPr", "LocA"):
                missing = int(np.sum(tp == 0))
            elif f.name == "CapA" or f.name.startswith("CapA-"):
                missing = int(np.sum(captioned == 0))
            else:
                continue
            if missing:
                out[f.name] = missing
        return out

    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (stored next to the scores)."""
        return {"iou": self.iou, "alphas": [float(a) for a in self.alphas],
                "caption_metrics": list(self.caption_metrics), "official_capa": self.official,
                "protocol": self.protocol, "score_threshold": self.score_threshold,
                "meteor_engine": self.meteor_engine}

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.4f}" for k, v in list(self.to_dict().items())[:6])
        return f"ChotaResult({values}, ...)"


def resample_fields(video_stats: dict[str, np.ndarray], metrics: Sequence[str],
                    weights: np.ndarray) -> dict[str, np.ndarray]:
    """Fields (averaged over alphas) of videos weighted by ``weights`` (shape ``(...,
    videos)``), from per-video statistics ``(videos, alphas)`` as :attr:`ChotaResult.video_stats`
    holds them (or as the leaderboard stores them).

    Example:
        >>> stats = {"HOTA_TP": np.array([[2.0], [0.0]]), "HOTA_FN": np.array([[0.0], [2.0]]),
        ...          "HOTA_FP": np.array([[0.0], [0.0]]), "AssA*TP": np.array([[2.0], [0.0]])}
        >>> resample_fields(stats, [], np.array([[1.0, 1.0], [2.0, 0.0]]))["DetA"].tolist()
        [0.5, 1.0]
    """
    weights = np.asarray(weights, dtype=np.float64)
    summed = {k: np.tensordot(weights, np.asarray(v, dtype=np.float64), axes=([-1], [0]))
              for k, v in video_stats.items()}
    return {k: v.mean(axis=-1) for k, v in final_fields(summed, metrics).items()}


def final_fields(stats: dict[str, np.ndarray], metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Every field from sufficient statistics summed over a set of videos.

    ``stats`` holds arrays (any shape, typically ``(alphas,)`` or ``(resamples, alphas)``)
    keyed as in :attr:`ChotaResult.video_stats`: the counts ``HOTA_TP``, ``HOTA_FN``,
    ``HOTA_FP``, ``TP_with_caps``; the per-video ratios times the video's TP ``AssA*TP``,
    ``AssRe*TP``, ``AssPr*TP``, ``LocA*TP`` (the reference's TP-weighted averaging); and
    ``sum-<metric>``, the metric summed over captioned true-positive pairs (a micro-average).
    Fields whose statistics are absent are left out. One video or many, a full set or a
    bootstrap resample: all go through this one formula.

    Example:
        >>> out = final_fields({"HOTA_TP": np.array([4.0]), "HOTA_FN": np.array([1.0]),
        ...     "HOTA_FP": np.array([0.0]), "AssA*TP": np.array([2.0]),
        ...     "TP_with_caps": np.array([2.0]), "sum-cider": np.array([0.6])}, ["cider"])
        >>> [round(float(out[k][0]), 4) for k in ("DetA", "AssA", "CapA", "CHOTA")]
        [0.8, 0.5, 0.3, 0.4932]
    """
    tp, fn, fp = stats["HOTA_TP"], stats["HOTA_FN"], stats["HOTA_FP"]
    out = {k: stats[k] for k in ("HOTA_TP", "HOTA_FN", "HOTA_FP", "TP_with_caps") if k in stats}
    for name in ("AssA", "AssRe", "AssPr"):
        if f"{name}*TP" in stats:
            out[name] = stats[f"{name}*TP"] / np.maximum(1.0, tp)
    if "LocA*TP" in stats:
        out["LocA"] = np.maximum(1e-10, stats["LocA*TP"]) / np.maximum(1e-10, tp)
    out["DetRe"] = tp / np.maximum(1.0, tp + fn)
    out["DetPr"] = tp / np.maximum(1.0, tp + fp)
    out["DetA"] = tp / np.maximum(1.0, tp + fn + fp)
    out["HOTA"] = np.sqrt(out["DetA"] * out["AssA"])
    out["OWTA"] = np.sqrt(out["DetRe"] * out["AssA"])
    if metrics:
        # No captioned TP anywhere gives 1e-10 / 1e-10 = 1, the reference's convention.
        for m in metrics:
            out[f"CapA-{m}"] = (np.maximum(1e-10, stats[f"sum-{m}"])
                                / np.maximum(1e-10, stats["TP_with_caps"]))
        out["CapA"] = np.mean([out[f"CapA-{m}"] for m in metrics], axis=0)
        out["CHOTA"] = np.cbrt(out["DetA"] * out["AssA"] * out["CapA"])
    return out


# --------------------------------------------------------------------------- matching workers

@dataclass
class VideoInput:
    """What the matcher needs of one video, geometry still raw (the IoU is computed where the
    video is matched: in a worker, or by :mod:`benchmark.analyze` and :mod:`benchmark.show`)."""

    num_frames: int
    gt_frame: np.ndarray
    gt_track: np.ndarray
    gt_caption: np.ndarray
    gt_geometry: Any
    pred_frame: np.ndarray
    pred_track: np.ndarray
    pred_caption: np.ndarray
    pred_geometry: Any

    def sequence(self, iou: str) -> SequenceInput:
        """The matcher's input: these arrays and the IoU of every same-frame pair."""
        similarity_of = pair_similarity_masks if iou == "mask" else pair_similarity_boxes
        _, similarity = similarity_of(self.gt_frame, self.pred_frame, self.num_frames,
                                      self.gt_geometry, self.pred_geometry)
        return SequenceInput(num_frames=self.num_frames, gt_frame=self.gt_frame, gt_track=self.gt_track,
                             gt_caption=self.gt_caption, pred_frame=self.pred_frame, pred_track=self.pred_track,
                             pred_caption=self.pred_caption, similarity=similarity)


def video_cider_sums(counts: SequenceCounts, text: Sequence[str]) -> np.ndarray:
    """Per alpha, the CIDEr-D sum over one video's captioned true positives, with the
    reference's document frequencies: one batch per video and alpha, one document per pair.

    Identical consecutive batches (alphas with the same true positives) are scored once.
    """
    from benchmark.captions import cider_d

    out = np.zeros(len(counts.caption_counts))
    refs = [text[g] for g in counts.caption_pairs[:, 0].tolist()]
    cands = [text[p] for p in counts.caption_pairs[:, 1].tolist()]
    previous = None
    for a, row in enumerate(counts.caption_counts):
        if previous is not None and np.array_equal(row, previous):
            out[a] = out[a - 1]
            continue
        used = np.flatnonzero(row).tolist()
        if used:
            scores = cider_d([refs[k] for k in used], [cands[k] for k in used], row[used])
            out[a] = float(row[used] @ scores)
        previous = row
    return out


def _match_video(video: VideoInput, alphas: np.ndarray, iou: str,
                 cider_text: Sequence[str] | None) -> tuple[SequenceCounts, np.ndarray | None]:
    """Match one video; with ``cider_text``, also its per-video CIDEr sums (reference
    protocol), so that CIDEr runs in the parallel workers too."""
    counts = match_sequence(video.sequence(iou), alphas)
    return counts, None if cider_text is None else video_cider_sums(counts, cider_text)


# Set in the parent just before forking, read by the children: inputs (and the caption
# table) are inherited through fork instead of being pickled to each worker.
_FORK_INPUTS: list[VideoInput] = []
_FORK_TEXT: list[str] | None = None


def _match_chunk(args: tuple[list[int], np.ndarray, str]):
    indices, alphas, iou = args
    return [_match_video(_FORK_INPUTS[i], alphas, iou, _FORK_TEXT) for i in indices]


@dataclass
class KeptInput:
    """A video's matcher input with the original ids of its predicted tracks."""

    input: VideoInput
    pred_track_ids: np.ndarray


def _contiguous(ids: np.ndarray) -> np.ndarray:
    return np.unique(ids, return_inverse=True)[1].reshape(-1) if len(ids) else ids


# --------------------------------------------------------------------------- the metric

class Chota:
    """Stateful CHOTA: give the ground truth once, ``update`` with predictions, ``compute``.

    Videos that never receive predictions count as missed (all their boxes are FN). Each
    video may be updated once.

    ``gt`` is a path, parsed JSON, a loaded :class:`~benchmark.io.GroundTruth`, or a
    :class:`~benchmark.background.PendingGroundTruth` still loading in a child process: that
    one is waited for at the first :meth:`update`, once the predictions' file has been read
    (what :func:`chota` does with two files).

    Example:
        >>> metric = Chota("gt.json", iou="box", caption_metrics=("cider", "meteor"))  # doctest: +SKIP
        >>> for batch in model_outputs:                                                # doctest: +SKIP
        ...     metric.update(batch)          # per-frame or per-track records
        >>> result = metric.compute()                                                  # doctest: +SKIP
    """

    def __init__(
        self,
        gt: Source | GroundTruth | PendingGroundTruth,
        *,
        iou: str = "box",
        alphas: str | float | Sequence[float] = (0.5,),
        caption_metrics: Sequence[str] = OFFICIAL_CAPTION_METRICS,
        score_threshold: float = 0.5,
        protocol: str = "reference",
        num_workers: int | None = None,
        progress: bool = False,
        cache: Any = "default",
        corenlp_dir: str | os.PathLike | None = None,
        java: str = "java",
        meteor_engine: str = "python",
    ) -> None:
        if iou not in ("box", "mask"):
            raise InputError(f"iou must be 'box' or 'mask', got {iou!r}")
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
        if isinstance(caption_metrics, str):
            caption_metrics = (caption_metrics,)
        self.caption_metrics = tuple(m.lower() for m in caption_metrics)
        unknown = sorted(set(self.caption_metrics) - set(OFFICIAL_CAPTION_METRICS))
        if unknown or len(set(self.caption_metrics)) != len(self.caption_metrics):
            raise InputError(f"caption_metrics must be distinct names among "
                             f"{list(OFFICIAL_CAPTION_METRICS)}, got {list(caption_metrics)}")
        self.iou = iou
        self.alphas = resolve_alphas(alphas)
        self.score_threshold = float(score_threshold)
        self.protocol = protocol
        self.num_workers = num_workers
        self.progress = progress
        self.warnings: list[str] = []
        self._caption_metrics_engine = None
        self._engine_options = {"cache": cache, "corenlp_dir": corenlp_dir, "java": java,
                                "meteor_engine": meteor_engine, "num_workers": num_workers}
        if "meteor" in self.caption_metrics:
            self.caption_engine().prestart()  # a first run: the JVM starts before anything loads
        self._captions: dict[str, int] = {}
        self._counts: dict[int, SequenceCounts] = {}
        self.inputs: dict[int, KeptInput] = {}  # filled by update(keep_inputs=True)
        # Prediction records seen and kept (score > threshold), for the degenerate-input warning.
        self._num_predictions = 0
        self._num_kept = 0
        self._video_cider: dict[int, np.ndarray] = {}  # reference protocol, from the workers
        self._gt: GroundTruth | None = None
        self._pending = gt if isinstance(gt, PendingGroundTruth) else None
        if self._pending is not None:
            if self._pending.require_captions != bool(self.caption_metrics):
                raise ValueError("the pending ground truth's require_captions must be "
                                 f"{bool(self.caption_metrics)} for caption_metrics="
                                 f"{self.caption_metrics}")
        else:
            self._use_ground_truth(gt if isinstance(gt, GroundTruth) else load_ground_truth(
                gt, require_captions=bool(self.caption_metrics)))

    @property
    def gt(self) -> GroundTruth:
        """The ground truth; a :class:`~benchmark.background.PendingGroundTruth` given to
        the constructor is waited for at its first use (the first :meth:`update`, after the
        predictions' file has been read)."""
        if self._gt is None:
            self._use_ground_truth(self._pending.result())
            self._pending = None
        return self._gt

    def _use_ground_truth(self, gt: GroundTruth) -> None:
        self._gt = gt
        gt_det = gt.detections
        # The ground truth's captions take the first caption ids, whichever loads first.
        self._gt_caption_ids = self._caption_ids(gt_det.captions, empty_is_none=True)
        self._gt_geometry = detection_geometry(gt_det, gt, iou=self.iou)
        self._gt_bounds = gt_det.video_slices(gt.num_videos)
        self._warn_line_breaks(gt_det, "ground truth")
        if "meteor" in self.caption_metrics:
            self.caption_engine().prestart(set(gt_det.captions.tolist()) - {""})

    # ---- inputs

    def _caption_ids(self, captions: np.ndarray, *, empty_is_none: bool) -> np.ndarray:
        table = self._captions
        texts = captions.tolist()
        # New captions get the next ids in order of first appearance; the per-record lookup
        # then runs at C speed (a Python loop over 600,000 records costs 0.2 s).
        for text in dict.fromkeys(texts):
            table.setdefault(text, len(table))
        ids = np.fromiter(map(table.__getitem__, texts), dtype=np.int64, count=len(texts))
        if empty_is_none and len(ids):
            # An empty ground-truth caption keeps its box in DetA/AssA but out of CapA.
            ids[captions == ""] = -1
        return ids

    def _warn_line_breaks(self, det: Detections, what: str) -> None:
        found = list(iter_newline_captions(det))
        if found:
            message = (f"{det.source}: {len(found)} {what} caption(s) contain a line break, "
                       f"first at {found[0][0]}, field 'caption'; METEOR and SPICE score them "
                       f"with the line break replaced by a space")
            self.warnings.append(message)
            warnings.warn(message, stacklevel=3)

    # ---- update / compute

    def update(self, predictions: Source | Detections, *, keep_inputs: bool = False) -> None:
        """Match the predictions of one or more videos (all of each video's records at once).

        ``keep_inputs``: keep each video's matcher input and its original track ids in
        :attr:`inputs` (for an error analysis, :mod:`benchmark.analyze`)."""
        det = predictions if isinstance(predictions, Detections) else self._load(predictions)
        gt = self.gt
        self._num_predictions += _distinct_records(det)
        det = det.take(det.scores > self.score_threshold)  # strictly greater, as the reference
        self._num_kept += _distinct_records(det)
        self._warn_line_breaks(det, "predicted")
        pred_caption_ids = self._caption_ids(det.captions, empty_is_none=False)
        pred_geometry = detection_geometry(det, gt, iou=self.iou)
        bounds = det.video_slices(gt.num_videos)
        videos = np.unique(det.video).tolist()
        repeated = [gt.video_names[v] for v in videos if v in self._counts]
        if repeated:
            raise InputError(f"video {repeated[0]} was already updated: give all of a video's "
                             f"predictions in one update", source=det.source)
        self._prepare_caption_engine(videos, bounds, pred_caption_ids)
        inputs = []
        for v in videos:
            g0, g1 = self._gt_bounds[v], self._gt_bounds[v + 1]
            p0, p1 = bounds[v], bounds[v + 1]
            inputs.append(VideoInput(
                num_frames=int(gt.num_frames[v]),
                gt_frame=gt.detections.frame[g0:g1],
                gt_track=_contiguous(gt.detections.track[g0:g1]),
                gt_caption=self._gt_caption_ids[g0:g1], gt_geometry=self._gt_geometry[g0:g1],
                pred_frame=det.frame[p0:p1], pred_track=_contiguous(det.track[p0:p1]),
                pred_caption=pred_caption_ids[p0:p1], pred_geometry=pred_geometry[p0:p1]))
        if keep_inputs:
            for v, video_input in zip(videos, inputs):
                self.inputs[v] = KeptInput(video_input, det.track[bounds[v]:bounds[v + 1]])
        cider_text = self.caption_text() if (
            "cider" in self.caption_metrics and self.protocol == "reference") else None
        for v, (counts, cider) in zip(videos, self._match_all(inputs, cider_text)):
            self._counts[v] = counts
            if cider is not None:
                self._video_cider[v] = cider

    def _load(self, source: Source) -> Detections:
        """Read the predictions (while a pending ground truth loads), then place them."""
        try:
            records = read_predictions(source, require_captions=bool(self.caption_metrics))
        except InputError:
            self.gt  # noqa: B018 - a ground-truth error comes first, as when loaded in turn
            raise
        return place_predictions(records, self.gt, score_threshold=self.score_threshold)

    def _match_all(self, inputs: list[VideoInput], cider_text: list[str] | None):
        workers = self.num_workers if self.num_workers is not None else (os.cpu_count() or 1)
        total = sum(len(x.gt_frame) + len(x.pred_frame) for x in inputs)
        progress = _progress(len(inputs), "matching", self.progress)
        if workers <= 1 or total < _PARALLEL_MIN_DETECTIONS or len(inputs) < 2 \
                or sys.platform != "linux":
            out = []
            for video in inputs:
                out.append(_match_video(video, self.alphas, self.iou, cider_text))
                progress.update(1)
            progress.close()
            return out
        global _FORK_INPUTS, _FORK_TEXT
        _FORK_INPUTS, _FORK_TEXT = inputs, cider_text
        chunk_size = max(1, len(inputs) // (workers * 8))
        chunks = [list(range(i, min(i + chunk_size, len(inputs))))
                  for i in range(0, len(inputs), chunk_size)]
        out = []
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for result in pool.imap(_match_chunk, [(c, self.alphas, self.iou) for c in chunks]):
                    out.extend(result)
                    progress.update(len(result))
        finally:
            _FORK_INPUTS, _FORK_TEXT = [], None
            progress.close()
        return out

    def _prepare_caption_engine(self, videos: list[int], bounds: np.ndarray,
                                pred_caption_ids: np.ndarray) -> None:
        """Start the Java scorers now, while matching runs, unless every pair they could be
        asked about is already cached."""
        if not self.caption_metrics or not self.caption_engine().jvm_metrics:
            return
        text = self.caption_text()
        candidates = set()
        for v in videos:
            gt_ids = np.unique(self._gt_caption_ids[self._gt_bounds[v]:self._gt_bounds[v + 1]])
            pred_ids = np.unique(pred_caption_ids[bounds[v]:bounds[v + 1]])
            candidates.update((text[g], text[p]) for g in gt_ids.tolist() if g >= 0
                              for p in pred_ids.tolist())
        self.caption_engine().prepare(sorted(candidates))

    def caption_engine(self):
        """The run's :class:`benchmark.captions.CaptionMetrics` (created on first use)."""
        if self._caption_metrics_engine is None:
            from benchmark.captions import CaptionMetrics

            java_metrics = tuple(m for m in self.caption_metrics if m != "cider")
            options = dict(self._engine_options)
            # Ours: "default" = the user cache, None = no persistence (the engine's spelling
            # is None and ":memory:").
            options["cache"] = {"default": None, None: ":memory:"}.get(options["cache"],
                                                                        options["cache"])
            self._caption_metrics_engine = CaptionMetrics(java_metrics, **options)
        return self._caption_metrics_engine

    def caption_text(self) -> list[str]:
        """Every caption seen so far, indexed by the caption ids of the matcher inputs."""
        text = [""] * len(self._captions)
        for caption, i in self._captions.items():
            text[i] = caption
        return text

    def compute(self) -> ChotaResult:
        """Score the captions of every matched video and combine everything into a result."""
        try:
            return self._compute()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the caption scorers' JVMs and a ground-truth loader still running (done by
        :meth:`compute`; call it if you give up)."""
        if self._pending is not None:
            self._pending.close()
        if self._caption_metrics_engine is not None:
            self._caption_metrics_engine.close()
            self._caption_metrics_engine = None

    def _compute(self) -> ChotaResult:
        n_alpha, n_video = len(self.alphas), self.gt.num_videos
        counts = [self._counts.get(v) or self._unmatched(v) for v in range(n_video)]
        stack = {name: np.stack([getattr(c, name) for c in counts]) if counts
                 else np.zeros((0, n_alpha))
                 for name in ("tp", "fn", "fp", "loc_a", "ass_a", "ass_re", "ass_pr")}
        tp_caps = np.stack([c.caption_counts.sum(axis=1) for c in counts]).astype(np.float64) \
            if counts else np.zeros((0, n_alpha))
        cap_sums = self._caption_sums(counts)  # metric -> (videos, alphas) summed pair scores

        tp = stack["tp"]
        video_stats = {"HOTA_TP": tp, "HOTA_FN": stack["fn"], "HOTA_FP": stack["fp"],
                       "TP_with_caps": tp_caps, "AssA*TP": stack["ass_a"] * tp,
                       "AssRe*TP": stack["ass_re"] * tp, "AssPr*TP": stack["ass_pr"] * tp,
                       "LocA*TP": stack["loc_a"] * tp,
                       **{f"sum-{m}": cap_sums[m] for m in self.caption_metrics}}
        per_alpha = final_fields({k: v.sum(axis=0) for k, v in video_stats.items()},
                                 self.caption_metrics)
        names = [f.name for f in result_fields(self.caption_metrics)]
        per_video_fields = final_fields(video_stats, self.caption_metrics)
        per_video = pd.DataFrame({
            "video_id": self.gt.video_ids.astype(int), "video": self.gt.video_names,
            **{n: per_video_fields[n].mean(axis=1) for n in names}})
        result = ChotaResult(
            alphas=self.alphas, per_alpha=per_alpha, per_video=per_video,
            video_stats=video_stats, caption_metrics=self.caption_metrics,
            official=self.caption_metrics == OFFICIAL_CAPTION_METRICS,
            protocol=self.protocol, iou=self.iou, score_threshold=self.score_threshold,
            warnings=list(self.warnings),
            meteor_engine=self._engine_options["meteor_engine"] if "meteor" in self.caption_metrics else None)
        message = self._degenerate_warning(result)
        if message:
            result.warnings.append(message)
            warnings.warn(message, stacklevel=3)
        return result

    def _degenerate_warning(self, result: "ChotaResult") -> str | None:
        """A warning when nothing (or nothing useful) was scored: no prediction kept, or no
        true positive at some alpha, so that fields averaging over true positives are
        undefined (the values stay the reference's: e.g. LocA and CapA 1.0, AssA 0)."""
        undefined = result.undefined_fields()
        kept = (f"{self._num_kept} of {self._num_predictions} predictions kept "
                f"(score > {self.score_threshold:g})")
        if self._num_predictions == 0:
            head = "no prediction scored: the predictions are empty"
        elif self._num_kept == 0:
            head = f"no prediction scored: {kept}"
        elif undefined:
            head = f"{kept}, but no true positive at some alpha"
        else:
            return None
        if not undefined:
            return head
        n_alpha = len(result.alphas)
        where = ", ".join(f"{name}" + ("" if n == n_alpha else f" ({n} of {n_alpha} alphas)")
                          for name, n in undefined.items())
        return (f"{head}; undefined for lack of true positives: {where}; their values are the "
                f"reference scorer's conventions, not measurements")

    def _unmatched(self, v: int) -> SequenceCounts:
        """A video without predictions: every ground-truth box is a miss."""
        n_alpha = len(self.alphas)
        n_gt = float(self._gt_bounds[v + 1] - self._gt_bounds[v])
        zeros = np.zeros(n_alpha)
        return SequenceCounts(tp=zeros, fn=np.full(n_alpha, n_gt), fp=zeros,
                              loc_a=np.ones(n_alpha), ass_a=zeros, ass_re=zeros, ass_pr=zeros,
                              caption_pairs=np.zeros((0, 2), np.int64),
                              caption_counts=np.zeros((n_alpha, 0), np.int64))

    def _caption_sums(self, counts: list[SequenceCounts]) -> dict[str, np.ndarray]:
        """Per video and alpha, the sum of each metric's scores over captioned TP pairs."""
        if not self.caption_metrics:
            return {}
        n_alpha = len(self.alphas)
        text = self.caption_text()
        all_pairs = np.concatenate([c.caption_pairs for c in counts]) if counts else \
            np.zeros((0, 2), np.int64)
        distinct, inverse = np.unique(all_pairs, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        refs = [text[g] for g in distinct[:, 0].tolist()]
        cands = [text[p] for p in distinct[:, 1].tolist()]
        offsets = np.cumsum([0] + [len(c.caption_pairs) for c in counts])
        sums: dict[str, np.ndarray] = {}
        java_metrics = [m for m in self.caption_metrics if m != "cider"]
        for m in java_metrics:
            # Per-pair METEOR/SPICE scores do not depend on the batch: each distinct pair once.
            scores = self.caption_engine().score(m, refs, cands) if len(distinct) else np.zeros(0)
            sums[m] = np.stack([c.caption_counts @ scores[inverse[offsets[i]:offsets[i + 1]]]
                                for i, c in enumerate(counts)]) if counts else np.zeros((0, n_alpha))
        if "cider" in self.caption_metrics and self.protocol == "reference":
            zeros = np.zeros(n_alpha)
            sums["cider"] = np.stack([self._video_cider.get(v, zeros) for v in range(len(counts))]) \
                if counts else np.zeros((0, n_alpha))
        elif "cider" in self.caption_metrics:
            sums["cider"] = self._dataset_cider_sums(counts, distinct, inverse, offsets, refs,
                                                     cands)
        return sums

    def _dataset_cider_sums(self, counts, distinct, inverse, offsets, refs, cands) -> np.ndarray:
        """The corrected variant: one CIDEr batch per alpha over the whole dataset."""
        from benchmark.captions import cider_d

        n_alpha = len(self.alphas)
        out = np.zeros((len(counts), n_alpha))
        totals = np.zeros((n_alpha, len(distinct)))
        for i, c in enumerate(counts):
            np.add.at(totals, (slice(None), inverse[offsets[i]:offsets[i + 1]]),
                      c.caption_counts)
        for a in range(n_alpha):
            used = np.flatnonzero(totals[a])
            if len(used) == 0:
                continue
            scores = np.zeros(len(distinct))
            scores[used] = cider_d([refs[k] for k in used], [cands[k] for k in used],
                                   totals[a, used])
            for i, c in enumerate(counts):
                out[i, a] = c.caption_counts[a] @ scores[inverse[offsets[i]:offsets[i + 1]]]
        return out


def _distinct_records(det: Detections) -> int:
    """How many prediction records ``det`` comes from (a per-track record spans frames)."""
    return int(np.count_nonzero(np.bincount(det.record_index))) if len(det) else 0


def detection_geometry(det: Detections, gt: GroundTruth, *, iou: str) -> np.ndarray | list[dict]:
    """What the IoUs of ``det`` are computed from: float32 xywh boxes for ``iou="box"`` (a
    mask's tight box where only a mask is given), compressed RLEs for ``iou="mask"``. Every
    segmentation is checked here, with an ``InputError`` naming the record.

    Example:
        >>> gt = load_ground_truth({"images": [{"id": 7, "video_id": 1}], "annotations": []})
        >>> det = load_predictions([{"image_id": 7, "track_id": 3, "score": 0.9, "caption": "",
        ...     "segmentation": {"size": [2, 2], "counts": "04"}}], gt)
        >>> detection_geometry(det, gt, iou="box").tolist()
        [[0.0, 0.0, 2.0, 2.0]]
    """
    if iou == "box":
        boxes = det.boxes.copy()
        missing = np.flatnonzero(np.isnan(boxes).any(axis=1))
        for k in missing.tolist():  # only a segmentation given: its tight box
            boxes[k] = mask_to_box(_rle(det, k, gt))
        return boxes
    if det.segmentations is None:
        if len(det) == 0:
            return []
        raise InputError("mask IoU needs a 'segmentation' for every detection; this file "
                         "has none (use iou='box')", source=det.source)
    video_sizes = np.stack([gt.heights, gt.widths], axis=1).tolist()
    rles = []
    for k, (segmentation, v) in enumerate(zip(det.segmentations, det.video.tolist())):
        # Fast path: a compressed RLE string of the frame's size (its counts were decoded
        # and checked by the loader) is what pycocotools takes as is; anything else goes
        # through the full validation and conversion.
        if type(segmentation) is dict and type(segmentation.get("counts")) is str \
                and segmentation.get("size") == video_sizes[v]:
            rles.append(segmentation)
        else:
            rles.append(_rle(det, k, gt))
    return rles


def _rle(det: Detections, k: int, gt: GroundTruth) -> dict:
    segmentation = det.segmentations[k] if det.segmentations is not None else None
    if segmentation is None:
        raise InputError("mask IoU needs a segmentation here", source=det.source,
                         record=det.describe(k), field="segmentation")
    v = int(det.video[k])
    height, width = int(gt.heights[v]) or None, int(gt.widths[v]) or None
    try:
        rle = to_rle(segmentation, height, width)
    except ValueError as exc:
        raise InputError(str(exc), source=det.source, record=det.describe(k),
                         field="segmentation") from exc
    if height and width and list(rle["size"]) != [height, width]:
        raise InputError(f"mask size {list(rle['size'])} differs from the video's "
                         f"[{height}, {width}]", source=det.source, record=det.describe(k),
                         field="segmentation")
    return rle


def chota(gt: Source | GroundTruth, pred: Source | Detections, **options: Any) -> ChotaResult:
    """Score predictions against ground truth with CHOTA (see :class:`Chota` for options).

    Options (keyword-only): ``iou`` ("box" | "mask"), ``alphas`` ((0.5,) | "hota" | a
    sequence), ``caption_metrics`` (default the official ("cider", "meteor", "spice"); ``()``
    for DetA/AssA/HOTA only), ``score_threshold`` (0.5; kept when score > threshold),
    ``protocol`` ("reference" | "dataset-cider"), ``num_workers``, ``progress``, ``cache``
    (a path, ``None`` to disable, default the user cache), ``corenlp_dir``, ``java``,
    ``meteor_engine`` ("python", the default, or "java": the same scores, see
    :mod:`benchmark.captions.meteor15`).

    Example:
        >>> result = chota("gt.json", "pred.json", iou="mask", alphas="hota")  # doctest: +SKIP
        >>> result.to_dict()["HOTA"], result.per_video.head()                  # doctest: +SKIP
    """
    if not isinstance(gt, GroundTruth) and not isinstance(pred, Detections):
        # The ground truth loads in a child process while this one reads the predictions.
        gt = PendingGroundTruth(
            gt, require_captions=bool(options.get("caption_metrics", OFFICIAL_CAPTION_METRICS)),
            background=options.get("num_workers") != 1)
    try:
        metric = Chota(gt, **options)
    except BaseException:
        if isinstance(gt, PendingGroundTruth):
            gt.close()
        raise
    try:
        metric.update(pred)
    except BaseException:
        metric.close()  # a JVM started early must not outlive a failed run
        raise
    return metric.compute()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="video", leave=False, disable=not enabled)


