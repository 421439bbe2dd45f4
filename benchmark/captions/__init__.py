"""Caption metrics of CapA, reference-exact and fast: CIDEr-D (pure numpy), METEOR 1.5 (in
Python, :mod:`benchmark.captions.meteor15`, or the jar shipped in pycocoevalcap) and SPICE 1.0
(its jar), with a persistent per-pair score cache.

:class:`CaptionMetrics` is what the CHOTA scorer uses: :meth:`CaptionMetrics.prepare` early
(prepares METEOR, starting the jar's JVM with ``meteor_engine="java"``, and scores SPICE in
the background, only for pairs that are not cached, so that slow starts overlap with
matching), then :meth:`CaptionMetrics.score` once per metric with every distinct pair of the
run, and :meth:`CaptionMetrics.cider` per video and alpha (CIDEr depends on the batch, so it
is never cached).

Example:
    >>> with CaptionMetrics(("cider",), cache=":memory:") as metrics:
    ...     scores = metrics.cider(["a man runs", "a dog sits"], ["a man runs", "a cat"], [2, 1])
    >>> scores.round(6).tolist()
    [7.5, 0.0]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from benchmark.errors import CaptionScorerError
from benchmark.captions.cache import PairScoreCache
from benchmark.captions.cider import CiderD, cider_d
from benchmark.captions.meteor import (
    MeteorScorer,
    default_meteor_jar,
    has_line_break,
    meteor_metric_id,
    replace_line_breaks,
)
from benchmark.captions.meteor15 import PythonMeteor, python_meteor_metric_id
from benchmark.captions.spice import SpiceScorer, fetch_spice
from benchmark.errors import InputError

__all__ = [
    "METRICS",
    "CaptionMetrics",
    "CaptionScorerError",
    "CiderD",
    "METEOR_ENGINES",
    "MeteorScorer",
    "PythonMeteor",
    "PairScoreCache",
    "SpiceScorer",
    "cider_d",
    "fetch_spice",
    "has_line_break",
    "replace_line_breaks",
]

METRICS: tuple[str, ...] = ("cider", "meteor", "spice")
# METEOR engines: "python" (benchmark.captions.meteor15, equal to the jar's scores, no Java)
# or "java" (the jar itself).
METEOR_ENGINES: tuple[str, ...] = ("python", "java")
_JVM_METRICS = ("meteor", "spice")


class CaptionMetrics:
    """The caption metrics of one scoring run, sharing one JVM per metric and one cache.

    ``cache``: a :class:`PairScoreCache`, a path to one, None for the default persistent
    cache, or ``":memory:"`` for none. Thread-safe; close it (or use ``with``) to stop JVMs.
    ``num_workers``: processes for a large METEOR batch in Python (default: one per CPU).
    """

    def __init__(
        self,
        metrics: Sequence[str] = METRICS,
        *,
        cache: PairScoreCache | str | os.PathLike[str] | None = None,
        corenlp_dir: str | os.PathLike[str] | None = None,
        java: str = "java",
        meteor_engine: str = "python",
        num_workers: int | None = None,
    ) -> None:
        if meteor_engine not in METEOR_ENGINES:
            raise InputError(f"meteor_engine must be one of {', '.join(METEOR_ENGINES)}, not {meteor_engine!r}",
                             field="meteor_engine")
        self.meteor_engine = meteor_engine
        self.num_workers = num_workers
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise InputError(
                f"unknown caption metric(s) {', '.join(map(repr, unknown))}; valid: {', '.join(METRICS)}",
                field="caption_metrics",
            )
        self.metrics = tuple(dict.fromkeys(metrics))
        self._java = java
        self._corenlp_dir = corenlp_dir
        self._own_cache = not isinstance(cache, PairScoreCache)
        self.cache = PairScoreCache(cache) if self._own_cache else cache
        self._cider = CiderD()
        self._meteor: MeteorScorer | PythonMeteor | None = None
        self._spice: SpiceScorer | None = None
        self._spice_job: threading.Thread | None = None
        self._spice_error: BaseException | None = None
        self._lock = threading.Lock()

    def cider(
        self, refs: Sequence[str], cands: Sequence[str], counts: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """CIDEr-D of distinct pairs within one batch (see :func:`benchmark.captions.cider_d`)."""
        return self._cider(refs, cands, counts)

    def metric_id(self, metric: str) -> str:
        """The cache key prefix of a JVM metric (its jar hash and flags)."""
        if metric == "meteor":
            if self._meteor is not None:
                return self._meteor.metric_id
            if self.meteor_engine == "python":
                return python_meteor_metric_id()
            return meteor_metric_id(default_meteor_jar())
        return self._spice_scorer().metric_id

    @property
    def jvm_metrics(self) -> tuple[str, ...]:
        """This run's metrics that a JVM scores: SPICE, and METEOR with the jar."""
        return tuple(m for m in self.metrics
                     if m == "spice" or (m == "meteor" and self.meteor_engine == "java"))

    def prestart(self, references: Iterable[str] | None = None) -> None:
        """Start the METEOR JVM now if the cache cannot hold this run's pairs: it has no METEOR
        score at all or, with ``references``, none for these references. Its ~6 s start then
        overlaps with loading and matching. (METEOR in Python starts when it scores.)"""
        if "meteor" in self.jvm_metrics and not self.cache.knows_any_reference(
                self.metric_id("meteor"), references):
            self._meteor_scorer()

    def prepare(self, candidate_pairs: Iterable[tuple[str, str]]) -> None:
        """Check the tools and start the JVM work whose result the run will wait for.

        ``candidate_pairs``: a superset of the (reference, candidate) pairs :meth:`score` will
        be asked for (e.g. every GT caption with every predicted caption of the same video).
        Only when NONE of them is cached (new predictions: the JVM will surely be needed) does
        the work start now: METEOR's JVM, and SPICE scoring of the candidates in a background
        thread (its CoreNLP start alone takes tens of seconds; results land in the cache and
        :meth:`score` waits for it). A superset always holds pairs that never match, so "some
        uncached" says nothing about a re-run; then :meth:`score` decides on the exact pairs
        and a re-run of known predictions starts no JVM. Raises ToolMissingError at once
        (Java, jars) instead of after the matching.
        """
        pairs = list(dict.fromkeys(candidate_pairs))
        if "meteor" in self.jvm_metrics and pairs and \
                len(self._misses("meteor", pairs)[1]) == len(pairs):
            self._meteor_scorer()
        if "spice" in self.metrics:
            misses = self._misses("spice", pairs)[1]  # also resolves java and the CoreNLP jars
            if pairs and len(misses) == len(pairs) and self._spice_job is None:
                self._spice_job = threading.Thread(
                    target=self._prefetch_spice, args=(misses,), name="spice-prefetch", daemon=True
                )
                self._spice_job.start()

    def score(self, metric: str, refs: Sequence[str], cands: Sequence[str]) -> np.ndarray:
        """Per-pair METEOR or SPICE scores: cached ones, then one JVM call for the rest.

        Call it once with every distinct pair of the run: SPICE starts a JVM per call.
        """
        if metric not in _JVM_METRICS:
            raise ValueError(f"score() serves {' and '.join(_JVM_METRICS)}; use cider() for CIDEr")
        if metric not in self.metrics:
            raise ValueError(f"{metric} is not one of this run's metrics {self.metrics}")
        if metric == "spice":
            self._wait_for_prefetch()
        pairs = list(zip(refs, cands, strict=True))
        known, misses = self._misses(metric, pairs)
        if misses:
            known.update(zip(misses, self._score_and_store(metric, misses).tolist()))
        return np.array([known[p] for p in pairs], dtype=np.float64)

    def _misses(
        self, metric: str, pairs: Sequence[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], float], list[tuple[str, str]]]:
        """Cached scores among ``pairs`` and the distinct pairs that are not cached."""
        distinct = list(dict.fromkeys(pairs))
        known = self.cache.get_many(self.metric_id(metric), distinct)
        return known, [p for p in distinct if p not in known]

    def _score_and_store(self, metric: str, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        scorer = self._meteor_scorer() if metric == "meteor" else self._spice_scorer()
        scores = scorer.score([r for r, _ in pairs], [c for _, c in pairs])
        self.cache.put_many(scorer.metric_id, pairs, scores)
        return scores

    def _prefetch_spice(self, pairs: list[tuple[str, str]]) -> None:
        try:
            self._score_and_store("spice", pairs)
        except BaseException as exc:  # handed to the score() call that waits for it
            self._spice_error = exc

    def _wait_for_prefetch(self) -> None:
        job = self._spice_job
        if job is not None:
            job.join()
            self._spice_job = None
            error, self._spice_error = self._spice_error, None
            if error is not None:
                raise error

    def _meteor_scorer(self) -> MeteorScorer | PythonMeteor:
        with self._lock:
            if self._meteor is None:
                self._meteor = (PythonMeteor(num_workers=self.num_workers) if self.meteor_engine == "python"
                               else MeteorScorer(java=self._java))
            return self._meteor

    def _spice_scorer(self) -> SpiceScorer:
        with self._lock:
            if self._spice is None:
                self._spice = SpiceScorer(corenlp_dir=self._corenlp_dir, java=self._java)
            return self._spice

    def close(self) -> None:
        """Stop the METEOR JVM and close the cache if this object opened it.

        A SPICE run that :meth:`prepare` started and no :meth:`score` waited for (the run was
        abandoned) is stopped.
        """
        if self._spice_job is not None:
            self._spice.cancel()
            self._spice_job.join()
            self._spice_job = self._spice_error = None
        with self._lock:
            if self._meteor is not None:
                self._meteor.close()
                self._meteor = None
            if self._own_cache:
                self.cache.close()

    def __enter__(self) -> CaptionMetrics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
