"""METEOR 1.5 in Python, per-pair scores as pycocoevalcap's ``Meteor`` gets them from
``meteor-1.5.jar - - -stdio -l en -norm``, without Java.

A pair goes through what pycocoevalcap and the jar do to it: the candidate loses ``|||`` and
one pass of double spaces, the line is split on ``|||`` (a reference holding ``|||`` is
several references, the best one wins), each side is normalised and tokenised
(:mod:`.normalize`), aligned (:mod:`.align`) and scored (:mod:`.score`).

Example:
    >>> scorer = PythonMeteor()
    >>> scorer.score(["a man rides a horse", "a dog"], ["a man is riding a horse", "a dog"]).round(6).tolist()
    [0.439873, 1.0]
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
from collections.abc import Sequence

import numpy as np

from benchmark.captions.meteor import replace_line_breaks
from benchmark.captions.meteor15.align import Synonyms, Words, align
from benchmark.captions.meteor15.normalize import java_trim, tokens
from benchmark.captions.meteor15.paraphrase import ParaphraseTable, cached_table
from benchmark.captions.meteor15.resources import english_prefixes, function_words
from benchmark.captions.meteor15.score import Stats, segment_score
from benchmark.gc_pause import gc_paused

__all__ = ["PythonMeteor", "pair_stats", "python_meteor_metric_id"]

# Bumped when a change could move a score (the cached scores of older versions then miss).
ENGINE_VERSION = 1


def python_meteor_metric_id() -> str:
    """The cache key prefix of this engine's scores: engine version and the jar it reads.

    Example:
        >>> python_meteor_metric_id().startswith("meteor-1.5-python-v1:")
        True
    """
    from benchmark.captions._java import jar_fingerprint
    from benchmark.captions.meteor import default_meteor_jar

    return f"meteor-1.5-python-v{ENGINE_VERSION}:{jar_fingerprint(default_meteor_jar())}:-l en -norm"

_FIELDS = re.compile(r"\|\|\|")

# Below this many pairs a batch is scored in this process: forking costs more than it saves.
_PARALLEL_MIN_PAIRS = 400
# Set in the parent just before forking, read by the children (nothing is pickled to them).
_FORKED: tuple[PythonMeteor, Sequence, Sequence] | None = None


def _score_range(bounds: tuple[int, int]) -> np.ndarray:
    scorer, refs, cands = _FORKED
    start, stop = bounds
    with gc_paused():
        return np.array([scorer.pair_score(refs[i], cands[i]) for i in range(start, stop)], dtype=np.float64)


def pair_stats(test: Words, ref: Words, *, paraphrases: ParaphraseTable | None,
               functions: frozenset[str]) -> Stats:
    """The SCORE statistics of a candidate's words ``test`` against a reference's ``ref``."""
    alignment = align(test, ref, paraphrases=paraphrases)
    function1 = [w.lower() in functions for w in test.tokens]
    function2 = [w.lower() in functions for w in ref.tokens]
    tc, rc, tf, rf = [0.0] * 4, [0.0] * 4, [0.0] * 4, [0.0] * 4
    for m in alignment.matches:
        for k in range(m.match_start, m.match_start + m.match_length):
            if function1[k]:
                tf[m.module] += 1
            else:
                tc[m.module] += 1
        for k in range(m.start, m.start + m.length):
            if function2[k]:
                rf[m.module] += 1
            else:
                rc[m.module] += 1
    return Stats(test_length=float(len(test.tokens)), ref_length=float(len(ref.tokens)),
                 test_function=float(sum(function1)), ref_function=float(sum(function2)),
                 test_content=tuple(tc), ref_content=tuple(rc), test_function_matched=tuple(tf),
                 ref_function_matched=tuple(rf), chunks=float(alignment.chunks),
                 test_word_matches=sum(tc) + sum(tf), ref_word_matches=sum(rc) + sum(rf))


class PythonMeteor:
    """METEOR 1.5 per-pair scores in this process; the same interface as the jar's
    :class:`benchmark.captions.meteor.MeteorScorer`.

    The English data comes from pycocoevalcap's jar and paraphrase table; the table is
    converted once into a memory-mapped cache (about 40 s and 1.2 GB of memory, 300 MB on
    disk under ``$BENCHMARK_METEOR_CACHE``, default ``~/.cache/dvoc-benchmark/meteor-1.5``),
    then opens at once.

    ``num_workers``: processes that score a large batch (default: one per CPU); each pair's
    score is independent, so the batch is split into contiguous ranges (pairs of one video
    share their captions' preparation) scored in forked children.
    """

    def __init__(self, *, paraphrases: ParaphraseTable | None | str = "default",
                 num_workers: int | None = None) -> None:
        self.num_workers = num_workers
        self.paraphrases = cached_table() if paraphrases == "default" else paraphrases
        self.synonyms = Synonyms.english()
        self.functions = function_words()
        self.prefixes = english_prefixes()
        self.metric_id = python_meteor_metric_id()
        # Each distinct caption is prepared once per run, however many pairs it is in.
        self._words: dict[str, Words] = {}

    def words(self, text: str) -> Words:
        """A caption's :class:`Words` (cached)."""
        found = self._words.get(text)
        if found is None:
            if len(self._words) >= 200_000:
                self._words.clear()
            found = self._words[text] = Words(tokens(text, self.prefixes), synonyms=self.synonyms,
                                              paraphrases=self.paraphrases)
        return found

    def pair_score(self, ref: str | Sequence[str], cand: str) -> float:
        """pycocoevalcap's score of a candidate against one reference (or several, the best
        of which counts)."""
        refs = [ref] if isinstance(ref, str) else list(ref)
        hyp = replace_line_breaks(cand).replace("|||", "").replace("  ", " ")
        line = "SCORE ||| " + " ||| ".join(replace_line_breaks(r) for r in refs) + " ||| " + hyp
        fields = _FIELDS.split(line)
        while fields and fields[-1] == "":  # Java's split drops trailing empty fields
            fields.pop()
        fields = [java_trim(f) for f in fields]
        test = self.words(fields[-1])
        best = -1.0
        for reference in fields[1:-1]:
            stats = pair_stats(test, self.words(reference), paraphrases=self.paraphrases, functions=self.functions)
            score = segment_score(stats)
            if score > best:
                best = score
        return best

    def score(self, refs: Sequence[str | Sequence[str]], cands: Sequence[str]) -> np.ndarray:
        """Per-pair scores of (refs[i], cands[i]); refs[i] may be a list of references."""
        if len(refs) != len(cands):
            raise ValueError(f"{len(refs)} references but {len(cands)} candidates")
        workers = min(self.num_workers if self.num_workers is not None else (os.cpu_count() or 1),
                      len(cands) // (_PARALLEL_MIN_PAIRS // 2))
        if workers <= 1 or len(cands) < _PARALLEL_MIN_PAIRS or sys.platform != "linux":
            # Words and alignments are many small containers and no cycles: no collections.
            with gc_paused():
                return np.array([self.pair_score(r, c) for r, c in zip(refs, cands)], dtype=np.float64)
        global _FORKED
        # Eight ranges per worker: one that drew short captions (or warmed its caches sooner)
        # takes more, so that the workers end together.
        edges = np.linspace(0, len(cands), 8 * workers + 1).astype(int).tolist()
        _FORKED = (self, refs, cands)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_score_range, list(zip(edges[:-1], edges[1:])), chunksize=1)
        finally:
            _FORKED = None
        return np.concatenate(parts)

    def close(self) -> None:
        """Nothing to stop (the jar's scorer has a JVM); here for the same interface."""

    def __enter__(self) -> PythonMeteor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
