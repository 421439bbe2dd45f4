"""METEOR 1.5 statistics of one (reference, candidate) alignment and the score computed from
them, as the jar's ``MeteorScorer.computeMetrics`` evaluates them for English ranking
(``-l en``: alpha 0.85, beta 0.2, gamma 0.6, delta 0.75; module weights exact 1.0, stem
0.6, synonym 0.8, paraphrase 0.6), in the jar's order of floating-point operations and with
Java's division (x / 0 is infinite, 0 / 0 is NaN; a NaN score is 0).

Example:
    >>> stats = Stats(test_length=2, ref_length=2, test_function=0, ref_function=0,  # "x y" vs "x z"
    ...               test_content=(1, 0, 0, 0), ref_content=(1, 0, 0, 0),
    ...               test_function_matched=(0, 0, 0, 0), ref_function_matched=(0, 0, 0, 0),
    ...               chunks=1, test_word_matches=1, ref_word_matches=1)
    >>> segment_score(stats)  # the jar's EVAL of "2 2 0 0 1 1 0 0 ... 1 1 1"
    0.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)  # exact, stem, synonym, paraphrase


@dataclass(frozen=True)
class Stats:
    """The 23 numbers of a SCORE answer: lengths in tokens, function words, per module
    (exact, stem, synonym, paraphrase) the matched content and function words of each side,
    the alignment's chunks and the matched words of each side."""

    test_length: float
    ref_length: float
    test_function: float
    ref_function: float
    test_content: tuple[float, float, float, float]
    ref_content: tuple[float, float, float, float]
    test_function_matched: tuple[float, float, float, float]
    ref_function_matched: tuple[float, float, float, float]
    chunks: float
    test_word_matches: float
    ref_word_matches: float


def _div(a: float, b: float) -> float:
    """Java's double division."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def segment_score(stats: Stats) -> float:
    """The segment score ``computeMetrics`` gives, operation by operation."""
    s = stats
    twl = (DELTA * (s.test_length - s.test_function)) + ((1.0 - DELTA) * s.test_function)
    rwl = (DELTA * (s.ref_length - s.ref_function)) + ((1.0 - DELTA) * s.ref_function)
    twm = rwm = 0.0
    for i in range(4):
        twm += s.test_content[i] * MODULE_WEIGHTS[i] * DELTA
    for i in range(4):
        rwm += s.ref_content[i] * MODULE_WEIGHTS[i] * DELTA
    for i in range(4):
        twm += s.test_function_matched[i] * MODULE_WEIGHTS[i] * (1.0 - DELTA)
    for i in range(4):
        rwm += s.ref_function_matched[i] * MODULE_WEIGHTS[i] * (1.0 - DELTA)
    precision, recall = _div(twm, twl), _div(rwm, rwl)
    f_mean = _div(1.0, _div(1.0 - ALPHA, precision) + _div(ALPHA, recall))
    test_total = sum(s.test_content[i] + s.test_function_matched[i] for i in range(4))
    ref_total = sum(s.ref_content[i] + s.ref_function_matched[i] for i in range(4))
    if test_total == s.test_length and ref_total == s.ref_length and s.chunks == 1:
        frag = 0.0
    else:
        frag = _div(s.chunks, (s.test_word_matches + s.ref_word_matches) / 2)
    penalty = GAMMA * (math.nan if math.isnan(frag) else math.pow(frag, BETA))
    score = f_mean * (1.0 - penalty)
    return 0.0 if math.isnan(score) else max(score, 0.0)
